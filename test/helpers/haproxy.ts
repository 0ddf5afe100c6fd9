/**
 * A real haproxy (Debian's) for tests of the gateway behind an L4 balancer: started in the
 * foreground with a configuration the test writes, on ports of its own, stopped at teardown.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type { Test } from 'tap'
import { requireBackends } from './backends.js'

/** True when haproxy is on PATH; throws when it is missing and GATEHOUSE_REQUIRE_BACKENDS=1. */
export function haveHaproxy(): boolean {
  const found = spawnSync('haproxy', ['-v']).status === 0
  if (!found && requireBackends()) throw new Error('GATEHOUSE_REQUIRE_BACKENDS=1 but haproxy is not on PATH (.ci/run installs it)')
  return found
}

/** Starts haproxy with `config` and resolves once every port in `ports` accepts connections. */
export async function startHaproxy(t: Test, config: string, ports: readonly number[]): Promise<ChildProcess> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-haproxy-'))
  const file = path.join(dir, 'haproxy.cfg')
  await writeFile(file, config)
  // -db: foreground, no daemon; -W would add a master process for no gain here.
  const child = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] })
  let errors = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    errors += chunk.toString()
  })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit')
      child.kill('SIGKILL')
      await exited
    }
    await rm(dir, { recursive: true, force: true })
  })
  const deadline = Date.now() + 10_000
  for (const port of ports) {
    while (!(await accepts(port))) {
      if (child.exitCode !== null) throw new Error(`haproxy exited with ${child.exitCode}: ${errors}`)
      if (Date.now() > deadline) throw new Error(`haproxy did not listen on ${port}: ${errors}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  return child
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}
