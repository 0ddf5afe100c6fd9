/**
 * What the soak runs against: a fresh PostgreSQL database, a private redis-server it may stop
 * and start, and `gatehouse serve` replicas as real processes.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import pg from 'pg'

export const BIN = fileURLToPath(new URL('../src/bin.js', import.meta.url))

export { freePort } from '../test/helpers/ports.js'

/** VmHWM (peak resident set) and VmRSS of a live process, in KiB; null when unreadable. */
export function memoryOf(pid: number | undefined): { peakKib: number; rssKib: number } | null {
  if (pid === undefined) return null
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
    const peakKib = field('VmHWM')
    const rssKib = field('VmRSS')
    return Number.isFinite(peakKib) ? { peakKib, rssKib } : null
  } catch {
    return null
  }
}

/** Keeps the last `max` characters of a stream's text. */
class Tail {
  #text = ''
  constructor(readonly max = 20_000) {}
  push(chunk: string): void {
    this.#text = (this.#text + chunk).slice(-this.max)
  }
  get text(): string {
    return this.#text
  }
}

// ---- PostgreSQL -------------------------------------------------------------------------------

export interface SoakDatabase {
  name: string
  url: string
  drop(): Promise<void>
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/** A new database `gatehouse_soak_<random>` on the server of `adminUrl`, dropped by `drop()`. */
export async function createDatabase(adminUrl: string): Promise<SoakDatabase> {
  const name = `gatehouse_soak_${randomBytes(5).toString('hex')}`
  await withClient(adminUrl, (client) => client.query(`CREATE DATABASE ${name}`))
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return {
    name,
    url: url.href,
    drop: async () => {
      await withClient(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
    },
  }
}

export { withClient }

// ---- Redis ------------------------------------------------------------------------------------

/** A private redis-server without persistence on a port of its own: never the shared one. */
export class PrivateRedis {
  #child: ChildProcess | undefined
  readonly output = new Tail()
  /** Highest VmHWM seen across the server's lives, KiB. */
  peakKib = 0

  constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null
  }

  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    this.#child = child
    let seen = ''
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start within 10 s: ${seen}`)), 10_000)
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        this.output.push(chunk)
        seen += chunk
        if (seen.includes('Ready to accept connections')) {
          clearTimeout(timer)
          resolve()
        }
      })
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.output.push(chunk))
      child.once('error', (error) => {
        clearTimeout(timer)
        reject(error)
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`redis-server exited with ${code}: ${seen}`))
      })
    })
  }

  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child
    if (child === undefined || !this.running) return
    this.peakKib = Math.max(this.peakKib, memoryOf(child.pid)?.peakKib ?? 0)
    const exited = once(child, 'exit')
    child.kill(signal)
    await exited
  }

  /** Last resort, synchronous (for an exit handler). */
  kill(): void {
    if (this.running) this.#child?.kill('SIGKILL')
  }

  sampleMemory(): void {
    if (this.running) this.peakKib = Math.max(this.peakKib, memoryOf(this.#child?.pid)?.peakKib ?? 0)
  }
}

// ---- Replicas ---------------------------------------------------------------------------------

export interface ReplicaExit {
  code: number | null
  signal: NodeJS.Signals | null
  /** Milliseconds since the soak started. */
  at: number
}

/** One `gatehouse serve` process. */
export class Replica {
  readonly output = new Tail()
  /** Set when the process exits, whoever caused it. */
  exit: ReplicaExit | undefined
  /** True once the soak asked it to stop: an exit before that is a crash. */
  stopping = false
  url = ''
  readonly exited: Promise<ReplicaExit>

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    clock: () => number,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal, at: clock() }
        resolve(this.exit)
      })
    })
  }

  get pid(): number | undefined {
    return this.child.pid
  }

  get crashed(): boolean {
    return this.exit !== undefined && !this.stopping
  }

  /** Starts `gatehouse serve --config <configPath>` and resolves once it says it listens. */
  static async start(name: string, configPath: string, cwd: string, clock: () => number, timeoutMs = 60_000): Promise<Replica> {
    const env: NodeJS.ProcessEnv = { ...process.env }
    delete env.GATEHOUSE_CONFIG
    const child = spawn(process.execPath, [BIN, 'serve', '--config', configPath], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    const replica = new Replica(name, child, clock)
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => replica.output.push(chunk))
    let stderr = ''
    try {
      replica.url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`replica ${name} did not start within ${timeoutMs / 1000} s`)), timeoutMs)
        // The banner is on stderr (stdout carries the JSON log only).
        child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
          replica.output.push(chunk)
          stderr += chunk
          const found = /listening on https?:\/\/[^\s:/]+:(\d+)/i.exec(stderr)
          if (found?.[1]) {
            clearTimeout(timer)
            resolve(`https://127.0.0.1:${found[1]}`)
          }
        })
        void replica.exited.then((exit) => {
          clearTimeout(timer)
          reject(new Error(`replica ${name} exited with ${exit.code ?? exit.signal} before listening`))
        })
      })
    } catch (error) {
      if (replica.exit === undefined) child.kill('SIGKILL')
      throw Object.assign(error as Error, { output: replica.output.text })
    }
    return replica
  }

  memory(): { peakKib: number; rssKib: number } | null {
    return this.exit === undefined ? memoryOf(this.pid) : null
  }

  /** SIGTERM, then the exit; SIGKILL after `timeoutMs` (reported as a signal exit). */
  async terminate(timeoutMs: number): Promise<ReplicaExit & { tookMs: number; killed: boolean }> {
    this.stopping = true
    const started = performance.now()
    if (this.exit !== undefined) return { ...this.exit, tookMs: 0, killed: false }
    this.child.kill('SIGTERM')
    let killed = false
    const timer = setTimeout(() => {
      killed = true
      this.child.kill('SIGKILL')
    }, timeoutMs)
    const exit = await this.exited
    clearTimeout(timer)
    return { ...exit, tookMs: Math.round(performance.now() - started), killed }
  }

  /** Last resort at the end of a failed run. */
  kill(): void {
    this.stopping = true
    if (this.exit === undefined) this.child.kill('SIGKILL')
  }
}
