/**
 * The invalidation bus: how one replica tells every replica (itself included) to drop what
 * it caches about a user or a token. Implementations: `memory-invalidation.ts` (one process)
 * and `redis-invalidation.ts` (Redis pub/sub, shared by replicas).
 */

export type InvalidationMessage =
  | { kind: 'user'; userId: string }
  | { kind: 'token'; patId: string }
  /** A session ended (logout, revocation, expiry); `sessionId` null: every session of the user. */
  | { kind: 'session'; userId: string; sessionId: string | null }

export interface InvalidationBus {
  readonly kind: 'memory' | 'redis'
  /**
   * True while every message published by any replica reaches this bus's subscribers. False
   * while messages may be missed (the Redis subscriber connection is down or not yet
   * subscribed again): a consumer must then neither trust nor fill its caches.
   */
  readonly connected: boolean
  /**
   * Delivers `message` to this process's subscribers synchronously, before this returns its
   * promise (so the caller's own cache is clean at once), then to the other replicas. Rejects
   * when the other replicas could not be told (the local delivery has happened anyway).
   */
  publish(message: InvalidationMessage): Promise<void>
  /** Calls `handler` for every message, local or remote; returns the unsubscribe function. */
  subscribe(handler: (message: InvalidationMessage) => void): () => void
  /**
   * Calls `handler` whenever messages may have been lost: when the connection to the other
   * replicas drops and again when it is back. A consumer then drops everything it caches.
   * Absent on buses that cannot lose messages.
   */
  onReset?(handler: () => void): () => void
  close(): Promise<void>
}

/** `value` if it is a well-formed message (as received from another replica), else null. */
export function parseInvalidationMessage(value: unknown): InvalidationMessage | null {
  if (typeof value !== 'object' || value === null) return null
  const { kind, userId, patId, sessionId } = value as { kind?: unknown; userId?: unknown; patId?: unknown; sessionId?: unknown }
  if (kind === 'user' && isId(userId)) return { kind, userId }
  if (kind === 'token' && isId(patId)) return { kind, patId }
  if (kind === 'session' && isId(userId) && (sessionId === null || isId(sessionId))) return { kind, userId, sessionId }
  return null
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 100
}

/**
 * Runs every handler even when one throws: a consumer's bug must not keep the others'
 * caches stale, nor take down the connection that delivered the message. The error is
 * reported as a process warning, so it still gets noticed.
 */
export function deliver<T extends unknown[]>(handlers: Iterable<(...args: T) => void>, ...args: T): void {
  for (const handler of [...handlers]) {
    try {
      handler(...args)
    } catch (error) {
      process.emitWarning(error instanceof Error ? error : String(error), 'InvalidationHandlerWarning')
    }
  }
}
