/**
 * The soak's clients: virtual users that register, log in, create PATs and then loop over
 * session, PAT and public requests, with 10% bad credentials, spread round-robin over the
 * replicas. Now and then one re-logs in, logs out, changes its password, revokes a PAT or
 * deletes itself, and checks that what it ended is refused on the other replica (at once for
 * sessions, after 1.1 s for PATs: SPEC §3). Every request is recorded (time, replica,
 * operation, status) for the report, which classifies it afterwards against the fault windows.
 */
import { randomBytes, randomInt } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import { generatePat } from '../src/core/pat-format.js'

export const COOKIE = '__Host-gh_session'

/** Why a request's credential is (not) valid; the upstream sees it as `x-soak-intent`. */
export type Intent = 'good' | 'bad' | 'revoked' | 'logged-out' | 'deleted'

export type Op =
  | 'register'
  | 'login'
  | 'pat-create'
  | 'pat-revoke'
  | 'session-get'
  | 'pat-get'
  | 'public-get'
  | 'me-get'
  | 'logout'
  | 'logged-out-use'
  | 'revoked-pat-use'
  | 'password-change'
  | 'ended-session-use'
  | 'user-delete'
  | 'deleted-user-pat-use'
  | 'deleted-user-session-use'
  | 'bad-login-password'
  | 'bad-login-email'
  | 'bad-pat-malformed'
  | 'bad-pat-unknown'
  | 'bad-session-token'
  | 'bad-session-cookie'
  | 'no-credential'

/** Operations that authenticate with a session (a 401 is expected once Redis lost it). */
export const SESSION_OPS: ReadonlySet<Op> = new Set(['session-get', 'me-get', 'logout', 'pat-create', 'pat-revoke', 'password-change', 'user-delete'])

export interface RequestRecord {
  /** Milliseconds since the soak started. */
  start: number
  end: number
  replica: number
  op: Op
  intent: Intent
  /** HTTP status; 0 when no answer came (then `error` says why). */
  status: number
  error?: string
  /** The session used was created before a Redis restart, so it may be gone. */
  stale?: boolean
  /** The virtual user that sent it. */
  vu?: number
}

export interface AcknowledgedUser {
  id: string
  email: string
  password: string
  at: number
  /** A password change got a 5xx or no answer: this one may be in force instead. */
  altPassword?: string
  /** When the soak's deletion of the user was acknowledged (204). */
  deletedAt?: number
  /** When a deletion got a 5xx or no answer. */
  deleteUncertainAt?: number
}

export interface AcknowledgedPat {
  id: string
  userId: string
  token: string
  at: number
  /** When the soak's revocation was acknowledged (204). */
  revokedAt?: number
  /** When a revocation got a 5xx or no answer: it may or may not have taken effect. */
  revokeUncertainAt?: number
  /** The soak deleted its owner (or tried to, without an answer). */
  ownerGone?: boolean
}

/** Something the client itself saw that must never happen. */
export interface ClientViolation {
  at: number
  op: Op
  replica: number
  status: number
  detail: string
}

export interface Answer {
  status: number
  body: string
  error?: string
}

export class Recorder {
  readonly records: RequestRecord[] = []
  readonly users = new Map<string, AcknowledgedUser>()
  readonly pats = new Map<string, AcknowledgedPat>()
  readonly violations: ClientViolation[] = []
  /** When the soak stopped Redis, milliseconds since the start. */
  readonly redisStops: number[] = []
  /** When it had started again. */
  readonly redisStarts: number[] = []
  /** Error answers of the gateway's that break SPEC §5-§7's contract for them. */
  readonly offContract: ClientViolation[] = []
  /** Text no 5xx body may hold (SPEC §5: never name an upstream address). */
  readonly secrets: string[] = []
}

/** Routes proxied to the upstream, whose breaker's 503 carries Retry-After (SPEC §7). */
const PROXIED = /^\/(s|p|pub)(\/|$)/

/**
 * The contract for the gateway's own error answers: a JSON body `{ statusCode, code, error,
 * message }` (SPEC §5) whose 5xx never names the upstream, Retry-After on 429 and on the 503
 * of a proxied route.
 */
function contractProblems(path: string, status: number, headers: Record<string, string | string[] | undefined>, body: string, secrets: readonly string[]): string[] {
  if (status < 400 || headers['x-soak-upstream'] !== undefined) return []
  const problems: string[] = []
  let parsed: Record<string, unknown> | undefined
  try {
    parsed = JSON.parse(body) as Record<string, unknown>
  } catch {
    problems.push(`body is not JSON: ${body.slice(0, 80)}`)
  }
  if (parsed) {
    if (parsed.statusCode !== status) problems.push(`statusCode ${String(parsed.statusCode)} in a ${status} answer`)
    if (typeof parsed.code !== 'string' || !/^GH_[A-Z_]+$/.test(parsed.code)) problems.push(`code ${JSON.stringify(parsed.code)}`)
    if (typeof parsed.error !== 'string' || typeof parsed.message !== 'string') problems.push('error or message missing')
  }
  if (status >= 500) {
    for (const secret of secrets) if (body.includes(secret)) problems.push(`the body names ${secret}`)
  }
  if ((status === 429 || (status === 503 && PROXIED.test(path))) && headers['retry-after'] === undefined) problems.push('no Retry-After')
  return problems
}

export interface CallOptions {
  headers?: Record<string, string>
  json?: unknown
  stale?: boolean
  vu?: number
}

export class Client {
  readonly agent = new Agent({ connect: { rejectUnauthorized: false }, connections: 64, keepAliveTimeout: 10_000 })
  #next = 0
  /** Requests sent so far. */
  sent = 0

  constructor(
    readonly targets: readonly string[],
    readonly clock: () => number,
    readonly recorder: Recorder | null,
  ) {}

  /** Replicas in turn. */
  pick(): number {
    const index = this.#next
    this.#next = (this.#next + 1) % this.targets.length
    return index
  }

  other(replica: number): number {
    return (replica + 1) % this.targets.length
  }

  async call(
    replica: number,
    op: Op,
    intent: Intent,
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    options: CallOptions = {},
  ): Promise<Answer> {
    const headers: Record<string, string> = { 'x-soak-intent': intent, ...options.headers }
    let body: string | undefined
    if (options.json !== undefined) {
      body = JSON.stringify(options.json)
      headers['content-type'] = 'application/json'
    }
    const start = this.clock()
    this.sent++
    let answer: Answer
    try {
      const response = await request(`${this.targets[replica]}${path}`, {
        method,
        headers,
        body,
        dispatcher: this.agent,
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      })
      answer = { status: response.statusCode, body: await response.body.text() }
      if (this.recorder) {
        for (const problem of contractProblems(path, response.statusCode, response.headers, answer.body, this.recorder.secrets)) {
          this.recorder.offContract.push({ at: this.clock(), op, replica, status: response.statusCode, detail: `${method} ${path}: ${problem}` })
        }
      }
    } catch (error) {
      const code = (error as { code?: string }).code ?? (error as Error).name
      answer = { status: 0, body: '', error: code }
    }
    const record: RequestRecord = { start, end: this.clock(), replica, op, intent, status: answer.status }
    if (answer.error !== undefined) record.error = answer.error
    if (options.stale) record.stale = true
    if (options.vu !== undefined) record.vu = options.vu
    this.recorder?.records.push(record)
    return answer
  }

  close(): Promise<void> {
    return this.agent.close()
  }
}

export function parse<T>(answer: Answer): T | undefined {
  try {
    return JSON.parse(answer.body) as T
  } catch {
    return undefined
  }
}

const randomText = (bytes: number) => randomBytes(bytes).toString('base64url')

/** Cumulative weights, in percent: 90 good, 10 bad. */
const MIX: Array<[Op | 'revoke-check' | 'new-user', number]> = [
  ['session-get', 37],
  ['pat-get', 36],
  ['public-get', 5],
  ['me-get', 3],
  ['login', 3],
  ['logout', 1.5],
  ['pat-create', 1.5],
  ['revoke-check', 1],
  ['new-user', 1],
  ['password-change', 0.5],
  ['user-delete', 0.5],
  ['bad-login-password', 1.5],
  ['bad-login-email', 1.5],
  ['bad-pat-malformed', 1.5],
  ['bad-pat-unknown', 1.5],
  ['bad-session-token', 1.5],
  ['bad-session-cookie', 1.5],
  ['no-credential', 1],
]
const MIX_TOTAL = MIX.reduce((sum, [, weight]) => sum + weight, 0)
const DESTRUCTIVE: ReadonlySet<string> = new Set(['user-delete', 'password-change', 'revoke-check'])

function pickOp(): (typeof MIX)[number][0] {
  let roll = Math.random() * MIX_TOTAL
  for (const [op, weight] of MIX) {
    roll -= weight
    if (roll < 0) return op
  }
  return 'session-get'
}

interface Identity {
  id: string
  email: string
  password: string
  /** After a password change without an answer: the new password, which may be in force. */
  altPassword?: string
}

interface Session {
  token: string
  /** When the login that made it was sent. */
  createdAt: number
  /** When its answer came. */
  ackAt: number
}

/** Stops traffic and setup retries. */
export interface Control {
  running(): boolean
  thinkMs: number
}

const MAX_PATS_PER_IDENTITY = 80

export class VirtualUser {
  #identity: Identity | undefined
  #session: Session | undefined
  #pats: Array<{ id: string; token: string }> = []
  #sequence = 0
  #lastFailureAt = -Infinity

  constructor(
    readonly index: number,
    readonly client: Client,
    readonly recorder: Recorder,
    readonly control: Control,
  ) {}

  get #clock(): () => number {
    return this.client.clock
  }

  async #call(...[replica, op, intent, method, path, options]: Parameters<Client['call']>): Promise<Answer> {
    const answer = await this.client.call(replica, op, intent, method, path, { ...options, vu: this.index })
    if (answer.status === 0 || answer.status >= 500) this.#lastFailureAt = this.#clock()
    return answer
  }

  async run(): Promise<void> {
    while (this.control.running()) {
      // Without a user (at the start, after deleting it) the first thing is to register one.
      if (this.#identity === undefined) {
        if (!(await this.#newIdentity())) await sleep(250)
        continue
      }
      await this.#step()
      if (this.control.thinkMs > 0) await sleep(Math.random() * 2 * this.control.thinkMs)
    }
  }

  #path(prefix: string): string {
    return `${prefix}/${this.index}/${++this.#sequence}`
  }

  /** The session may have been lost: Redis was stopped since its login was sent. */
  #stale(session: Session): boolean {
    return this.recorder.redisStops.some((stop) => stop >= session.createdAt)
  }

  /**
   * A session that was surely lost (acknowledged before Redis was killed, and Redis has been
   * started again, empty, since) must not be accepted after the restart.
   */
  #checkLost(op: Op, replica: number, session: Session, sentAt: number, answer: Answer): void {
    if (answer.status < 200 || answer.status >= 300) return
    const { redisStops, redisStarts } = this.recorder
    const lost = redisStops.some((stop, i) => session.ackAt < stop && (redisStarts[i] ?? Infinity) < sentAt)
    if (lost) this.#violation(op, replica, answer.status, 'a session lost with the Redis restart was accepted after it')
  }

  #userHeader(): Record<string, string> {
    return this.#identity ? { 'x-soak-user': this.#identity.id } : {}
  }

  /**
   * Registers a new user and, when that works, switches to it: logs in and creates a first PAT
   * (each tried once: later steps make up for a failure). False when the registration failed.
   */
  async #newIdentity(): Promise<boolean> {
    const email = `soak-${this.index}-${randomText(6).toLowerCase().replace(/[^a-z0-9]/g, 'x')}@soak.example`
    const password = `soak password ${randomText(12)}`
    const replica = this.client.pick()
    const answer = await this.#call(replica, 'register', 'good', 'POST', '/auth/register', { json: { email, password } })
    if (answer.status !== 201) return false
    const user = parse<{ id: string }>(answer)
    if (typeof user?.id !== 'string') return false
    this.recorder.users.set(user.id, { id: user.id, email, password, at: this.#clock() })
    this.#identity = { id: user.id, email, password }
    this.#session = undefined
    this.#pats = []
    if (await this.#login()) await this.#createPat()
    return true
  }

  /** Logs in and makes the new session the current one. */
  async #login(replica = this.client.pick()): Promise<Session | undefined> {
    const session = await this.#newSession(replica)
    if (session) this.#session = session
    return session
  }

  /** Logs in (with the alternative password too, when a password change went unanswered). */
  async #newSession(replica: number): Promise<Session | undefined> {
    const identity = this.#identity
    if (identity === undefined) return undefined
    const createdAt = this.#clock()
    let answer = await this.#call(replica, 'login', 'good', 'POST', '/auth/login', {
      json: { email: identity.email, password: identity.password },
    })
    if (answer.status === 401 && identity.altPassword !== undefined) {
      answer = await this.#call(replica, 'login', 'good', 'POST', '/auth/login', {
        json: { email: identity.email, password: identity.altPassword },
      })
      if (answer.status === 200) this.#passwordIs(identity, identity.altPassword)
    }
    if (answer.status !== 200) return undefined
    const token = parse<{ token?: string; user?: { id?: string } }>(answer)
    if (typeof token?.token !== 'string') return undefined
    if (token.user?.id !== identity.id) this.#violation('login', replica, answer.status, `login answered for user ${token.user?.id}`)
    return { token: token.token, createdAt, ackAt: this.#clock() }
  }

  #passwordIs(identity: Identity, password: string): void {
    identity.password = password
    delete identity.altPassword
    const acknowledged = this.recorder.users.get(identity.id)
    if (acknowledged) {
      acknowledged.password = password
      delete acknowledged.altPassword
    }
  }

  async #ensureSession(): Promise<Session | undefined> {
    return this.#session ?? (await this.#login())
  }

  /** Forgets the session when the gateway no longer knows it. */
  #sessionAnswer(session: Session, answer: Answer): void {
    if (answer.status === 401 && this.#session === session) this.#session = undefined
  }

  async #createPat(replica = this.client.pick()): Promise<{ id: string; token: string } | undefined> {
    const session = await this.#ensureSession()
    if (session === undefined || this.#identity === undefined) return undefined
    const answer = await this.#call(replica, 'pat-create', 'good', 'POST', '/auth/tokens', {
      headers: { authorization: `Bearer ${session.token}` },
      json: { name: `soak ${this.#sequence}` },
      stale: this.#stale(session),
    })
    this.#sessionAnswer(session, answer)
    if (answer.status !== 201) return undefined
    const created = parse<{ id?: string; token?: string }>(answer)
    if (typeof created?.id !== 'string' || typeof created.token !== 'string') return undefined
    const pat = { id: created.id, token: created.token }
    this.recorder.pats.set(pat.id, { ...pat, userId: this.#identity.id, at: this.#clock() })
    this.#pats.push(pat)
    return pat
  }

  #violation(op: Op, replica: number, status: number, detail: string): void {
    this.recorder.violations.push({ at: this.#clock(), op, replica, status, detail })
  }

  /** A request with an invalid credential must never succeed. */
  #mustRefuse(op: Op, replica: number, answer: Answer): void {
    if (answer.status >= 200 && answer.status < 300) this.#violation(op, replica, answer.status, 'an invalid credential was accepted')
  }

  async #sessionGet(replica: number, session: Session, viaCookie: boolean): Promise<Answer> {
    const credential: Record<string, string> = viaCookie
      ? { cookie: `${COOKIE}=${session.token}` }
      : { authorization: `Bearer ${session.token}` }
    const sentAt = this.#clock()
    const answer = await this.#call(replica, 'session-get', 'good', 'GET', this.#path('/s'), {
      headers: { ...credential, ...this.#userHeader() },
      stale: this.#stale(session),
    })
    this.#sessionAnswer(session, answer)
    this.#checkLost('session-get', replica, session, sentAt, answer)
    return answer
  }

  async #patGet(replica: number, pat: { token: string }, op: Op = 'pat-get', intent: Intent = 'good'): Promise<Answer> {
    return this.#call(replica, op, intent, 'GET', this.#path('/p'), {
      headers: { authorization: `Bearer ${pat.token}`, ...this.#userHeader() },
    })
  }

  async #step(): Promise<void> {
    let op = pickOp()
    // Like a careful client, no password change, deletion or revocation while the service is
    // failing (their outcome would be unknown): a plain request instead.
    if (DESTRUCTIVE.has(op) && this.#clock() - this.#lastFailureAt < 2_000) op = 'session-get'
    const replica = this.client.pick()
    switch (op) {
      case 'session-get': {
        const session = await this.#ensureSession()
        if (session) await this.#sessionGet(replica, session, Math.random() < 0.5)
        return
      }
      case 'pat-get': {
        const pat = this.#pats[randomInt(this.#pats.length || 1)] ?? (await this.#createPat(replica))
        if (pat) await this.#patGet(replica, pat)
        return
      }
      case 'public-get': {
        // Half of them carry what a client must not be able to pass to an upstream.
        const spoof: Record<string, string> = {}
        const pat = this.#pats[0]
        if (Math.random() < 0.5 && pat && this.#session) {
          spoof['x-auth-user-id'] = 'spoofed'
          spoof['x-auth-assertion'] = 'forged.assertion.value'
          spoof['x_auth_email'] = 'spoofed@example.com'
          spoof.authorization = `Bearer ${pat.token}`
          spoof.cookie = `${COOKIE}=${this.#session.token}; other=kept`
        }
        await this.#call(replica, 'public-get', 'good', 'GET', this.#path('/pub'), { headers: spoof })
        return
      }
      case 'me-get': {
        const session = await this.#ensureSession()
        if (!session) return
        const sentAt = this.#clock()
        const answer = await this.#call(replica, 'me-get', 'good', 'GET', '/auth/me', {
          headers: { authorization: `Bearer ${session.token}` },
          stale: this.#stale(session),
        })
        this.#sessionAnswer(session, answer)
        this.#checkLost('me-get', replica, session, sentAt, answer)
        const me = answer.status === 200 ? parse<{ id?: string }>(answer) : undefined
        if (me && me.id !== this.#identity?.id) this.#violation('me-get', replica, 200, `/auth/me answered for user ${me.id}`)
        return
      }
      case 'login':
        await this.#login(replica)
        return
      case 'logout': {
        const session = this.#session
        if (!session) return
        const answer = await this.#call(replica, 'logout', 'good', 'POST', '/auth/logout', {
          headers: { authorization: `Bearer ${session.token}` },
          stale: this.#stale(session),
        })
        // After a 5xx the client keeps its token: it may still be valid (and, if Redis lost it,
        // its next use gets the 401 that has the client log in again).
        if (answer.status === 204 || answer.status === 401) this.#session = undefined
        if (answer.status !== 204) return
        // The ended session, straight away on the other replica.
        const used = await this.#call(this.client.other(replica), 'logged-out-use', 'logged-out', 'GET', this.#path('/s'), {
          headers: { authorization: `Bearer ${session.token}`, ...this.#userHeader() },
        })
        this.#mustRefuse('logged-out-use', this.client.other(replica), used)
        return
      }
      case 'pat-create':
        if (this.#pats.length < MAX_PATS_PER_IDENTITY) await this.#createPat(replica)
        return
      case 'revoke-check':
        await this.#revokeCheck(replica)
        return
      case 'new-user':
        await this.#newIdentity()
        return
      case 'password-change':
        await this.#passwordChange(replica)
        return
      case 'user-delete':
        await this.#deleteUser(replica)
        return
      case 'bad-login-password':
      case 'bad-login-email': {
        const email = op === 'bad-login-password' && this.#identity ? this.#identity.email : `nobody-${randomText(6)}@soak.example`
        const answer = await this.#call(replica, op, 'bad', 'POST', '/auth/login', {
          json: { email, password: `wrong password ${randomText(8)}` },
        })
        this.#mustRefuse(op, replica, answer)
        return
      }
      case 'bad-pat-malformed':
      case 'bad-pat-unknown': {
        const token = op === 'bad-pat-unknown' ? generatePat() : `pat_${randomText(36)}`
        const answer = await this.#patGet(replica, { token }, op, 'bad')
        this.#mustRefuse(op, replica, answer)
        return
      }
      case 'bad-session-token':
      case 'bad-session-cookie':
      case 'no-credential': {
        const token = randomText(32)
        const headers: Record<string, string> =
          op === 'bad-session-token' ? { authorization: `Bearer ${token}` } : op === 'bad-session-cookie' ? { cookie: `${COOKIE}=${token}` } : {}
        const answer = await this.#call(replica, op, 'bad', 'GET', this.#path('/s'), { headers })
        this.#mustRefuse(op, replica, answer)
        return
      }
      default:
        return
    }
  }

  /**
   * Two sessions, one on each replica; the password changed with the first: the second must
   * be refused at once on the other replica, the first still accepted (SPEC §5).
   */
  async #passwordChange(replica: number): Promise<void> {
    const identity = this.#identity
    const kept = await this.#ensureSession()
    const other = this.client.other(replica)
    const ended = kept && (await this.#newSession(other))
    if (identity === undefined || kept === undefined || ended === undefined) return
    const next = `soak password ${randomText(12)}`
    const answer = await this.#call(replica, 'password-change', 'good', 'POST', '/auth/password', {
      headers: { authorization: `Bearer ${kept.token}` },
      json: { current_password: identity.password, new_password: next },
      stale: this.#stale(kept),
    })
    this.#sessionAnswer(kept, answer)
    if (answer.status === 0 || answer.status >= 500) {
      identity.altPassword = next
      const acknowledged = this.recorder.users.get(identity.id)
      if (acknowledged) acknowledged.altPassword = next
      return
    }
    if (answer.status !== 204) return
    this.#passwordIs(identity, next)
    const used = await this.#call(other, 'ended-session-use', 'logged-out', 'GET', this.#path('/s'), {
      headers: { authorization: `Bearer ${ended.token}`, ...this.#userHeader() },
    })
    this.#mustRefuse('ended-session-use', other, used)
    await this.#sessionGet(other, kept, false)
  }

  /**
   * The user deletes itself (its PAT cached on both replicas first); 1.1 s later its PAT and
   * its session must be refused on both replicas. Then the virtual user starts over.
   */
  async #deleteUser(replica: number): Promise<void> {
    const identity = this.#identity
    const session = await this.#ensureSession()
    const pat = this.#pats[0]
    if (identity === undefined || session === undefined || pat === undefined) return
    const other = this.client.other(replica)
    await this.#patGet(replica, pat)
    await this.#patGet(other, pat)
    const answer = await this.#call(replica, 'user-delete', 'good', 'DELETE', '/auth/me', {
      headers: { authorization: `Bearer ${session.token}` },
      json: { password: identity.password },
      stale: this.#stale(session),
    })
    this.#sessionAnswer(session, answer)
    const uncertain = answer.status === 0 || answer.status >= 500
    if (answer.status !== 204 && !uncertain) return
    const acknowledged = this.recorder.users.get(identity.id)
    if (acknowledged) {
      if (uncertain) acknowledged.deleteUncertainAt = this.#clock()
      else acknowledged.deletedAt = this.#clock()
    }
    for (const owned of this.recorder.pats.values()) if (owned.userId === identity.id) owned.ownerGone = true
    if (answer.status === 204) {
      await sleep(1_100)
      for (const target of [other, replica]) {
        const used = await this.#patGet(target, pat, 'deleted-user-pat-use', 'deleted')
        this.#mustRefuse('deleted-user-pat-use', target, used)
      }
      const used = await this.#call(other, 'deleted-user-session-use', 'deleted', 'GET', this.#path('/s'), {
        headers: { authorization: `Bearer ${session.token}`, ...this.#userHeader() },
      })
      this.#mustRefuse('deleted-user-session-use', other, used)
    }
    // The run loop registers a new one.
    this.#identity = undefined
    this.#session = undefined
    this.#pats = []
  }

  /**
   * A new PAT, used on both replicas (so both cache it), revoked on one; 1.1 s later (SPEC §3:
   * revocation reaches every replica within 1 s) it must be refused on both.
   */
  async #revokeCheck(replica: number): Promise<void> {
    if (this.#pats.length >= MAX_PATS_PER_IDENTITY) return
    const pat = await this.#createPat(replica)
    const session = this.#session
    if (pat === undefined || session === undefined) return
    const other = this.client.other(replica)
    await this.#patGet(replica, pat)
    await this.#patGet(other, pat)
    const answer = await this.#call(replica, 'pat-revoke', 'good', 'DELETE', `/auth/tokens/${pat.id}`, {
      headers: { authorization: `Bearer ${session.token}` },
      stale: this.#stale(session),
    })
    this.#sessionAnswer(session, answer)
    const acknowledged = this.recorder.pats.get(pat.id)
    if (answer.status === 0 || answer.status >= 500) {
      // The revocation may have been committed before the failure: the token is no longer used.
      if (acknowledged) acknowledged.revokeUncertainAt = this.#clock()
      this.#pats = this.#pats.filter((p) => p.id !== pat.id)
    }
    if (answer.status !== 204) return
    if (acknowledged) acknowledged.revokedAt = this.#clock()
    this.#pats = this.#pats.filter((p) => p.id !== pat.id)
    await sleep(1_100)
    for (const target of [other, replica]) {
      const used = await this.#patGet(target, pat, 'revoked-pat-use', 'revoked')
      this.#mustRefuse('revoked-pat-use', target, used)
    }
  }
}
