/**
 * The built `gatehouse` command as a real process, for the CLI tests: run one command to its
 * end, or start `serve` and wait until it listens.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

export const BIN = fileURLToPath(new URL('../../src/bin.js', import.meta.url))
export const PAT_LINE = /^pat_[0-9A-Za-z]{49}\n$/

export interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface RunOptions {
  cwd: string
  env?: Record<string, string>
  /** Written to stdin, which is then closed; without it stdin is empty and closed. */
  input?: string
}

/** Runs the CLI to completion (at most 180 s: a loaded machine starts node slowly). GATEHOUSE_CONFIG is unset unless `env` sets it. */
export async function run(args: string[], options: RunOptions): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env }
  if (options.env?.GATEHOUSE_CONFIG === undefined) delete env.GATEHOUSE_CONFIG
  const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] })
  const timer = setTimeout(() => child.kill('SIGKILL'), 180_000)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  child.stdin.end(options.input ?? '')
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null]
  clearTimeout(timer)
  return { code, signal, stdout, stderr }
}

export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '')
}

/**
 * Starts `serve` in `cwd` (on `configPath` when given, else the directory's gateway.yml) and
 * resolves its URL once it says it listens (rejects if it exits first).
 */
export async function serve(t: Test, cwd: string, configPath?: string): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const args = configPath === undefined ? ['serve'] : ['serve', '--config', configPath]
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, GATEHOUSE_CONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let output = ''
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start within 120 s: ${output}`)), 120_000)
    // The banner is on stderr (stdout carries the JSON log only); both are kept for the test.
    const read = (chunk: string) => {
      output += chunk
      const found = /listening on (https?:\/\/\S+)/i.exec(output)
      if (found?.[1]) {
        clearTimeout(timer)
        resolve(found[1])
      }
    }
    child.stdout.setEncoding('utf8').on('data', read)
    child.stderr.setEncoding('utf8').on('data', read)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`serve exited with ${code} before listening: ${output}`))
    })
  })
  return { child, url, output: () => output }
}

