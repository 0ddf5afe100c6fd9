/**
 * Start-up failures that say which setting is at fault (SPEC §8): a dependency that cannot be
 * reached, a port that cannot be bound, a file that cannot be used, each as one line
 * starting with its key path, like a config problem:
 *
 *   storage.database: cannot connect to PostgreSQL at 127.0.0.1:5499 (ECONNREFUSED)
 *   metrics.port: cannot listen on 127.0.0.1:9464 (EADDRINUSE)
 *
 * A URL is shown as host:port only, and any password it holds is removed from the driver's
 * message, so that the line is safe to paste into a ticket.
 */
import { ConfigError } from './config/error.js'

/** A start-up failure: a ConfigError of one line, so that the CLI prints it as such (no prefix, exit 1). */
export class StartupError extends ConfigError {
  /** The key path at fault: `storage.database`, `server.port`, … */
  readonly key: string

  constructor(key: string, message: string, options: { cause?: unknown } = {}) {
    super([`${key}: ${message}`])
    this.name = 'StartupError'
    this.key = key
    if (options.cause !== undefined) Object.defineProperty(this, 'cause', { value: options.cause, enumerable: false })
  }
}

/** Runs one start-up step and turns its failure into a StartupError for `key` (StartupErrors pass through). */
export async function startupStep<T>(key: string, step: () => Promise<T>, describe: (err: unknown) => string): Promise<T> {
  try {
    return await step()
  } catch (err) {
    if (err instanceof StartupError) throw err
    throw new StartupError(key, describe(err), { cause: err })
  }
}

/** `host:port` of a URL (its default port when it names none), never its user name or password. */
export function addressOf(url: string, defaultPort: number): string {
  try {
    const parsed = new URL(url)
    return `${parsed.hostname}:${parsed.port === '' ? defaultPort : parsed.port}`
  } catch {
    return '(an unparsable URL)'
  }
}

/** The system error code of a failure (`ECONNREFUSED`), looking into aggregated attempts and causes; null when there is none. */
export function errorCode(err: unknown): string | null {
  for (let current: unknown = err, depth = 0; current instanceof Error && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string' && /^E[A-Z0-9_]+$/.test(code)) return code
    const first: unknown = current instanceof AggregateError ? current.errors[0] : undefined
    current = first ?? current.cause
  }
  return null
}

/** The first line of an error's message with the URL's password (plain and percent-encoded) taken out. */
export function safeMessage(err: unknown, url?: string): string {
  let text = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? ''
  const password = url === undefined ? '' : passwordOf(url)
  if (password !== '') {
    for (const form of new Set([password, decodeURIComponentSafe(password)])) text = text.split(form).join('***')
  }
  return text
}

export function databaseFailure(url: string, err: unknown): string {
  if (url.startsWith('embedded:')) {
    const code = errorCode(err)
    return code === null ? safeMessage(err) : `cannot open the embedded database at ${url.slice('embedded:'.length)} (${code})`
  }
  const address = addressOf(url, 5432)
  const code = errorCode(err)
  if (code !== null) return `cannot connect to PostgreSQL at ${address} (${code})`
  if (/timeout/i.test(safeMessage(err))) return `cannot connect to PostgreSQL at ${address} (timed out)`
  return `PostgreSQL at ${address} refused: ${safeMessage(err, url)}`
}

export function sessionStoreFailure(url: string, err: unknown): string {
  const address = addressOf(url, 6379)
  const code = errorCode(err)
  if (code !== null) return `cannot connect to Redis at ${address} (${code})`
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err
  return `cannot connect to Redis at ${address} (${safeMessage(cause, url)})`
}

export function listenFailure(host: string, port: number, err: unknown): string {
  const shown = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
  return `cannot listen on ${shown} (${errorCode(err) ?? safeMessage(err)})`
}

function passwordOf(url: string): string {
  try {
    return new URL(url).password
  } catch {
    return /^[a-z][a-z0-9+.-]*:\/\/[^:/@]*:([^@/]*)@/i.exec(url)?.[1] ?? ''
  }
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}
