/** The bench's server processes (bench/servers.ts), as `npm run bench` and `npm run bench:profile` start them. */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { ProcessStats, ReadyMessage } from './servers.js'

export const SERVERS = fileURLToPath(new URL('./servers.js', import.meta.url))

/** The container image's environment (Dockerfile) that changes what is measured: every process gets it. */
const IMAGE_ENV = { MALLOC_MMAP_THRESHOLD_: '1048576' }

export interface Server {
  child: ChildProcess
  ready: ReadyMessage
  url: string
  /** The process's CPU time and memory so far. */
  stats(): Promise<ProcessStats>
}

export interface StartOptions {
  /** Another build's servers.js (BENCH_BASELINE). */
  serversModule?: string
  /** Node flags for the process (`--cpu-prof`). */
  execArgv?: string[]
}

/** Forks `servers.js <kind> [args…]` and resolves once it listens; rejects if it exits first. */
export async function startServer(kind: string, args: readonly string[], options: StartOptions = {}): Promise<Server> {
  const child = fork(options.serversModule ?? SERVERS, [kind, ...args], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    execArgv: options.execArgv ?? [],
    env: { ...process.env, ...IMAGE_ENV },
  })
  const [ready] = (await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => Promise.reject(new Error(`${kind} ${args.join(' ')} exited with ${String(code)} before it was ready`))),
  ])) as [ReadyMessage]
  const stats = async () => {
    child.send('stats')
    for (;;) {
      const [message] = (await once(child, 'message')) as [{ stats?: ProcessStats }]
      if (message.stats) return message.stats
    }
  }
  return { child, ready, url: `http://127.0.0.1:${ready.port}`, stats }
}

/** SIGTERM, so that `--cpu-prof` writes its profile; resolves once the process is gone. */
export async function stopServer(server: Server): Promise<void> {
  const exited = once(server.child, 'exit')
  server.child.kill('SIGTERM')
  await exited
}
