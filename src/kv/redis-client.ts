/**
 * Every Redis connection of the gateway is made here: the key-value store's and the
 * invalidation bus's publisher (its subscriber is a duplicate of the publisher). One place
 * reads the three URL schemes (redis://, rediss:// for TLS, redis-sentinel://), sets the
 * connection options (lazy, fail fast during an outage, bounded reconnection), keeps the
 * last connection error for the open-time message, and closes a connection.
 */
import { Redis, type RedisOptions } from 'ioredis'
import { describeRedisUrl, isSentinelUrl, parseSentinelUrl } from './redis-url.js'

export const DEFAULT_KEY_PREFIX = 'gh:'
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000
/** A command unanswered for this long rejects: a stalled Redis must turn into a 503, not a hang. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 2_000

const REDIS_URL = /^(rediss?|redis-sentinel):\/\//i

/** True for the URLs this module connects to: redis://, rediss:// and redis-sentinel://. */
export function isRedisUrl(url: string): boolean {
  return REDIS_URL.test(url)
}

/** The error for a `storage.sessions` value that is neither `memory` nor a Redis URL; echoes only the scheme (the rest may hold a password). */
export function unsupportedStoreUrl(url: string): Error {
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0] ?? url.slice(0, 12)
  return new Error(`unsupported session store "${scheme}…": expected memory, redis://host:6379/0 (rediss:// for TLS) or redis-sentinel://h1:26379,h2:26379/mymaster/0`)
}

export interface RedisClientOptions {
  /** How long one connection attempt may take (`open` of the store or bus bounds all attempts). */
  connectTimeoutMs?: number
  /** A command unanswered for this long rejects. */
  commandTimeoutMs?: number
  /** Prepended by ioredis to every key (not to pub/sub channels). */
  keyPrefix?: string
}

/**
 * A client of the Redis that `url` names, not yet connected (call `connect()`): redis:// or
 * rediss:// as ioredis reads it, or redis-sentinel://, where ioredis asks the sentinels for
 * the master, and asks again whenever the connection drops or a sentinel announces a new
 * master (failoverDetector). A call made during an outage fails at once (and answers 503)
 * instead of waiting in a queue until Redis returns; reconnection backs off up to 2 s.
 */
export function createRedisClient(url: string, options: RedisClientOptions = {}): Redis {
  const base: RedisOptions = {
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
    ...(options.keyPrefix === undefined ? {} : { keyPrefix: options.keyPrefix }),
  }
  if (!isSentinelUrl(url)) {
    if (!isRedisUrl(url)) throw unsupportedStoreUrl(url)
    return new Redis(url, base)
  }
  const target = parseSentinelUrl(url)
  // Config validation has already refused a bad URL; this is a caller's mistake.
  if (typeof target === 'string') throw new TypeError(`storage.sessions: ${target}`)
  return new Redis({
    ...base,
    sentinels: target.sentinels,
    name: target.name,
    db: target.db,
    username: target.username,
    password: target.password,
    failoverDetector: true,
    // A master demoted while we stayed connected (a partition, a manual failover) answers
    // writes with READONLY: reconnect, which asks the sentinels for the new master.
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
  })
}

/**
 * Listens for connection errors on `clients` and returns the latest one. Connection errors
 * also reach the callers whose commands fail; without a listener ioredis would print each.
 */
export function lastErrorOf(...clients: Redis[]): () => Error | undefined {
  let last: Error | undefined
  for (const client of clients) {
    client.on('error', (error: Error) => {
      last = error
    })
  }
  return () => last
}

/** The error `open` rejects with when Redis did not answer within the connect timeout. */
export function connectTimeoutError(url: string, connectTimeoutMs: number, lastError: Error | undefined): Error {
  const reason = lastError ? `: ${lastError.message}` : ''
  return new Error(`could not connect to Redis at ${describeRedisUrl(url)} within ${connectTimeoutMs} ms${reason}`, { cause: lastError })
}

/** Closes `client`: QUIT when connected, so that Redis answers what is in flight, then disconnect. */
export async function quitRedis(client: Redis): Promise<void> {
  try {
    if (client.status === 'ready') await client.quit()
  } catch {
    // Already gone: disconnecting below is all that is left to do.
  } finally {
    client.disconnect()
  }
}
