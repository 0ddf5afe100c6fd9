/**
 * The one error a store or driver throws when its dependency cannot be reached or is closed
 * (oauth2-proxy's and Pomerium's sentinel errors at the driver edge). Each driver knows its
 * own failure shapes and translates them here; nobody above the drivers reads their messages.
 * The HTTP layer answers it with 503 GH_UNAVAILABLE, and the breakers count it as a failure.
 */

export type Dependency = 'database' | 'session store' | 'invalidation bus'

export class DependencyUnavailableError extends Error {
  readonly dependency: Dependency

  constructor(dependency: Dependency, cause?: unknown) {
    super(`The ${dependency} is unavailable`, cause === undefined ? undefined : { cause })
    this.name = 'DependencyUnavailableError'
    this.dependency = dependency
  }
}

export function isDependencyUnavailable(err: unknown): err is DependencyUnavailableError {
  return err instanceof DependencyUnavailableError
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN'])

/** A socket-level failure (refused, reset, unreachable, DNS), as node reports it in `code`. */
export function hasNetworkCode(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined
  return typeof code === 'string' && NETWORK_CODES.has(code)
}

/**
 * A rejection handler for a driver's promises: rethrows what `isOutage` recognises as a
 * DependencyUnavailableError (keeping the driver's error as its cause), anything else as it is.
 */
export function translateOutage(dependency: Dependency, isOutage: (err: unknown) => boolean): (err: unknown) => never {
  return (err) => {
    if (err instanceof DependencyUnavailableError || !isOutage(err)) throw err
    throw new DependencyUnavailableError(dependency, err)
  }
}

/** The message of an Error-like value, '' otherwise. */
export function messageOf(err: unknown): string {
  const message = typeof err === 'object' && err !== null ? (err as { message?: unknown }).message : undefined
  return typeof message === 'string' ? message : ''
}
