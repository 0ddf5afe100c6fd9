/**
 * The open WebSockets of one process, indexed by the credential that opened them, so that a
 * credential's end closes them (SPEC §4a). Survives configuration reloads: a reload swaps the
 * checker and re-checks every socket against the new routes instead of closing them.
 *
 * A socket is re-checked (never closed on the message alone, which might be about another
 * session of the same user) when the invalidation bus names its user, session or token, when
 * its credential's known expiry passes, after a reload, and every `sweepMs` while the bus may
 * be missing messages.
 */
import type { InvalidationBus, InvalidationMessage } from '../../kv/invalidation.js'
import type { Clock } from '../clock.js'
import type { SocketChecker, TrackedSocket } from './checker.js'

export type CloseReason = 'client' | 'upstream' | 'revoked' | 'expired' | 'shutdown'
export const CLOSE_REASONS: readonly CloseReason[] = ['client', 'upstream', 'revoked', 'expired', 'shutdown']

/** What the registry needs of a tunnel: its credential, and a way to end it. */
export interface OpenSocket extends TrackedSocket {
  /** Ends the tunnel: a close frame with `code` to the client when possible, and the upstream connection. */
  close(code: number, reason: CloseReason): void
}

export interface OpenSocketsOptions {
  bus: InvalidationBus
  clock: Clock
  /** How often every socket is re-checked while the bus may be missing messages (SPEC: 5 s). */
  sweepMs?: number
  /** Told when a check fails for a reason other than the verdict (a bug, not an outage). */
  onCheckError?: (err: unknown) => void
}

export const SWEEP_MS = 5_000
/** Below this much time left, the next check is at the expiry itself. */
const MIN_HALF_MS = 200
/** setTimeout's ceiling: a later expiry is looked at again when this much has passed. */
const MAX_TIMER_MS = 2 ** 31 - 1

interface Entry {
  socket: OpenSocket
  expiryTimer: ReturnType<typeof setTimeout> | null
  checking: boolean
  /** Asked again while a check was running: run one more after it. */
  again: boolean
}

export class OpenSockets {
  readonly #entries = new Set<Entry>()
  readonly #clock: Clock
  readonly #bus: InvalidationBus
  readonly #onCheckError: (err: unknown) => void
  readonly #unsubscribe: () => void
  readonly #unsubscribeReset: () => void
  readonly #sweep: ReturnType<typeof setInterval>
  #checker: SocketChecker | null = null
  #emptied: (() => void)[] = []

  constructor(options: OpenSocketsOptions) {
    this.#clock = options.clock
    this.#bus = options.bus
    this.#onCheckError = options.onCheckError ?? (() => {})
    this.#unsubscribe = this.#bus.subscribe((message) => this.#recheck((s) => concerns(message, s)))
    this.#unsubscribeReset = this.#bus.onReset?.(() => this.recheckAll()) ?? (() => {})
    this.#sweep = setInterval(() => {
      if (!this.#bus.connected) this.recheckAll()
    }, options.sweepMs ?? SWEEP_MS)
    this.#sweep.unref()
  }

  get size(): number {
    return this.#entries.size
  }

  /** Sets how sockets are judged (the current configuration's routes and credentials) and re-checks them all. */
  useChecker(checker: SocketChecker): void {
    const first = this.#checker === null
    this.#checker = checker
    if (!first) this.recheckAll()
  }

  /** Tracks `socket` until the returned function is called (when its tunnel has ended). */
  add(socket: OpenSocket): () => void {
    const entry: Entry = { socket, expiryTimer: null, checking: false, again: false }
    this.#entries.add(entry)
    this.#armExpiry(entry)
    return () => {
      if (entry.expiryTimer !== null) clearTimeout(entry.expiryTimer)
      this.#entries.delete(entry)
      if (this.#entries.size === 0) for (const resolve of this.#emptied.splice(0)) resolve()
    }
  }

  /** Resolves true once no socket is open, or false after `timeoutMs`. */
  whenEmpty(timeoutMs: number): Promise<boolean> {
    if (this.#entries.size === 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs)
      this.#emptied.push(() => {
        clearTimeout(timer)
        resolve(true)
      })
    })
  }

  recheckAll(): void {
    this.#recheck(() => true)
  }

  /** Closes every socket (shutdown); they untrack themselves as their tunnels end. */
  closeAll(code: number, reason: CloseReason): void {
    for (const entry of [...this.#entries]) entry.socket.close(code, reason)
  }

  /** Stops listening to the bus and the clock; the sockets stay open (their owner closes them). */
  stop(): void {
    this.#unsubscribe()
    this.#unsubscribeReset()
    clearInterval(this.#sweep)
    for (const entry of this.#entries) if (entry.expiryTimer !== null) clearTimeout(entry.expiryTimer)
  }

  #recheck(which: (socket: TrackedSocket) => boolean): void {
    for (const entry of this.#entries) if (which(entry.socket)) void this.#check(entry)
  }

  async #check(entry: Entry): Promise<void> {
    const checker = this.#checker
    if (checker === null || !this.#entries.has(entry)) return
    if (entry.checking) {
      entry.again = true
      return
    }
    entry.checking = true
    try {
      const verdict = await checker.check(entry.socket)
      if (!this.#entries.has(entry)) return
      if (verdict === 'keep') this.#armExpiry(entry)
      else entry.socket.close(1008, verdict)
    } catch (err) {
      this.#onCheckError(err)
    } finally {
      entry.checking = false
    }
    if (entry.again) {
      entry.again = false
      await this.#check(entry)
    }
  }

  /**
   * Checks halfway to the credential's known expiry, and once it has passed. A session's
   * expiry is its idle end until it reaches the absolute one: a check halfway touches the
   * session (an open socket counts as activity) and moves the expiry on; at the absolute end
   * the halves shrink to the end itself, a handful of checks in all.
   */
  #armExpiry(entry: Entry): void {
    if (entry.expiryTimer !== null) clearTimeout(entry.expiryTimer)
    entry.expiryTimer = null
    const { expiresAt } = entry.socket
    if (expiresAt === null) return
    const remaining = Math.max(0, expiresAt - this.#clock.now())
    const delay = Math.min(MAX_TIMER_MS, remaining > MIN_HALF_MS ? remaining / 2 : remaining + 10)
    entry.expiryTimer = setTimeout(() => {
      entry.expiryTimer = null
      void this.#check(entry)
    }, delay)
    entry.expiryTimer.unref()
  }
}

function concerns(message: InvalidationMessage, socket: TrackedSocket): boolean {
  switch (message.kind) {
    case 'user':
      return socket.userId === message.userId
    case 'token':
      return socket.patId === message.patId
    case 'session':
      return socket.userId === message.userId && (message.sessionId === null || socket.sessionId === message.sessionId)
  }
}
