/**
 * A private redis-server for outage tests: started by the test on a free port of its own,
 * stopped, stalled and restarted at will. The shared Redis (TEST_REDIS_URL) must never be
 * stopped, so tests that take Redis down use one of these. Without persistence
 * (`--save "" --appendonly no`): a restarted server starts empty.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import type { Test } from 'tap'
import { requireBackends } from './backends.js'

/** True when redis-server is on PATH; throws when it is missing and GATEHOUSE_REQUIRE_BACKENDS=1. */
export function haveRedisServer(what = 'the Redis outage tests'): boolean {
  const found = spawnSync('redis-server', ['--version']).status === 0
  if (!found && requireBackends()) {
    throw new Error(`GATEHOUSE_REQUIRE_BACKENDS=1 but redis-server is not on PATH: ${what} cannot run`)
  }
  return found
}

import { freePort } from './ports.js'

export { freePort }

/**
 * Starts redis-server on 127.0.0.1:port (with `extra` arguments, after `configFile` when
 * given) and resolves once it accepts connections.
 */
export async function startRedisServer(port: number, extra: readonly string[] = [], configFile?: string): Promise<ChildProcess> {
  const file = configFile === undefined ? [] : [configFile]
  const child = spawn('redis-server', [...file, '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let output = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('Ready to accept connections')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)))
  })
  child.stdout?.resume()
  return child
}

export interface PrivateRedis {
  port: number
  url: string
  /** The running process, or null while stopped. */
  readonly process: ChildProcess | null
  /** SIGSTOP: the server keeps its connections but answers nothing. */
  stall(): void
  /** SIGCONT after stall(). */
  resume(): void
  /** SIGKILL, resolved once the process has exited: connections drop, the port is closed. */
  stop(): Promise<void>
  /** Starts a new (empty) server on the same port. */
  restart(): Promise<void>
}

/** A private redis-server on a free port, killed at t's teardown whatever state it is in. */
export async function startPrivateRedis(t: Test): Promise<PrivateRedis> {
  const port = await freePort()
  let child: ChildProcess | null = await startRedisServer(port)
  t.teardown(async () => {
    const running = child
    child = null
    if (running !== null && running.exitCode === null && running.signalCode === null) {
      const exited = once(running, 'exit')
      running.kill('SIGKILL')
      await exited
    }
  })
  const signal = (name: NodeJS.Signals): void => {
    if (child === null) throw new Error('the private redis-server is not running')
    child.kill(name)
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get process() {
      return child
    },
    stall: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
    async stop() {
      const running = child
      if (running === null) return
      child = null
      if (running.exitCode === null && running.signalCode === null) {
        const exited = once(running, 'exit')
        running.kill('SIGKILL')
        await exited
      }
    },
    async restart() {
      if (child !== null) throw new Error('stop() the private redis-server before restarting it')
      child = await startRedisServer(port)
    },
  }
}
