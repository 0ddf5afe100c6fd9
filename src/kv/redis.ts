import type { Redis, Result } from 'ioredis'
import { translateOutage } from '../dependency-error.js'
import { connectTimeoutError, createRedisClient, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_KEY_PREFIX, lastErrorOf, quitRedis } from './redis-client.js'
import { isRedisUnavailable } from './redis-outage.js'
import type { CounterState, KeyValueStore } from './store.js'

const outage = translateOutage('session store', isRedisUnavailable)

export interface RedisKeyValueStoreOptions {
  /** redis:// or rediss:// (TLS), with optional user, password and database number; or redis-sentinel://. */
  url: string
  /** Prepended to every key, so that several gateways (or tests) can share one Redis. */
  keyPrefix?: string
  /** How long `open` keeps trying to reach Redis before it gives up. */
  connectTimeoutMs?: number
  commandTimeoutMs?: number
}

// Each script is one atomic step on the server, so replicas never interleave inside it.
// ioredis runs them with EVALSHA (EVAL once if the server lacks the script) and prefixes KEYS.

/** INCR, and start the window when the key has none (its first increment): { count, ms left }. */
const INCREMENT = `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return { count, ttl }`

const PEEK = `
local count = redis.call('GET', KEYS[1])
if not count then return { 0, 0 } end
return { tonumber(count), math.max(redis.call('PTTL', KEYS[1]), 0) }`

/** SADD, then extend the set's TTL to at least ARGV[2] ms; never shorten it. */
const SET_ADD = `
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    ghIncrement(key: string, windowMs: number): Result<[number, number], Context>
    ghPeek(key: string): Result<[number, number], Context>
    ghSetAdd(key: string, member: string, ttlMs: number): Result<number, Context>
  }
}

/** The session store shared by replicas: one Redis (or a managed equivalent). */
export class RedisKeyValueStore implements KeyValueStore {
  readonly kind = 'redis'
  readonly #client: Redis
  #closing: Promise<void> | undefined

  private constructor(client: Redis) {
    this.#client = client
  }

  /**
   * Connects, retrying until `connectTimeoutMs` has passed, then rejects with the last
   * connection error. Once open, the client reconnects by itself after an outage; while it
   * is disconnected every call rejects at once instead of queueing.
   */
  static async open(options: RedisKeyValueStoreOptions): Promise<RedisKeyValueStore> {
    const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
    const client = createRedisClient(options.url, {
      keyPrefix: options.keyPrefix ?? DEFAULT_KEY_PREFIX,
      connectTimeoutMs,
      commandTimeoutMs: options.commandTimeoutMs,
    })
    const lastError = lastErrorOf(client)
    client.defineCommand('ghIncrement', { numberOfKeys: 1, lua: INCREMENT })
    client.defineCommand('ghPeek', { numberOfKeys: 1, lua: PEEK, readOnly: true })
    client.defineCommand('ghSetAdd', { numberOfKeys: 1, lua: SET_ADD })

    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          client.off('ready', onReady)
          reject(connectTimeoutError(options.url, connectTimeoutMs, lastError()))
        }, connectTimeoutMs)
        const onReady = (): void => {
          clearTimeout(timer)
          resolve()
        }
        client.once('ready', onReady)
        // A failed first attempt rejects here, but the retry strategy keeps trying until 'ready'.
        client.connect().catch(() => {})
      })
    } catch (error) {
      client.disconnect()
      throw error
    }
    return new RedisKeyValueStore(client)
  }

  get(key: string): Promise<string | null> {
    return this.#client.get(key).catch(outage)
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.#client.set(key, value, 'PX', milliseconds(ttlMs)).catch(outage)
  }

  async delete(key: string): Promise<boolean> {
    return (await this.#client.del(key).catch(outage)) > 0
  }

  async deleteMany(keys: readonly string[]): Promise<number> {
    return keys.length === 0 ? 0 : this.#client.del(...keys).catch(outage)
  }

  async setAdd(key: string, member: string, ttlMs: number): Promise<void> {
    await this.#client.ghSetAdd(key, member, milliseconds(ttlMs)).catch(outage)
  }

  async setRemove(key: string, member: string): Promise<void> {
    await this.#client.srem(key, member).catch(outage)
  }

  setMembers(key: string): Promise<string[]> {
    return this.#client.smembers(key).catch(outage)
  }

  async increment(key: string, windowMs: number): Promise<CounterState> {
    const [count, resetInMs] = await this.#client.ghIncrement(key, milliseconds(windowMs)).catch(outage)
    return { count, resetInMs }
  }

  async peek(key: string): Promise<CounterState> {
    const [count, resetInMs] = await this.#client.ghPeek(key).catch(outage)
    return { count, resetInMs }
  }

  async countKeys(prefix: string): Promise<number> {
    // SCAN does not apply ioredis' keyPrefix to its pattern.
    const match = `${this.#client.options.keyPrefix ?? ''}${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`
    let count = 0
    try {
      for await (const keys of this.#client.scanStream({ match, count: 1000 })) count += (keys as string[]).length
    } catch (err) {
      outage(err)
    }
    return count
  }

  async ping(): Promise<void> {
    await this.#client.ping().catch(outage)
  }

  close(): Promise<void> {
    this.#closing ??= this.#quit()
    return this.#closing
  }

  #quit(): Promise<void> {
    return quitRedis(this.#client)
  }
}

function milliseconds(ttlMs: number): number {
  if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) throw new RangeError(`ttl must be a positive number of milliseconds, got ${ttlMs}`)
  return Math.ceil(ttlMs)
}
