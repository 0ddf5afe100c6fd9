import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { translateOutage } from '../dependency-error.js'
import { deliver, parseInvalidationMessage, type InvalidationBus, type InvalidationMessage } from './invalidation.js'
import { connectTimeoutError, createRedisClient, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_KEY_PREFIX, lastErrorOf, quitRedis } from './redis-client.js'
import { isRedisUnavailable } from './redis-outage.js'

const outage = translateOutage('invalidation bus', isRedisUnavailable)

/** How often the subscriber connection is pinged, so that a silently dead one is noticed. */
export const DEFAULT_HEARTBEAT_MS = 1_000
/** Longest message accepted from the channel; real ones are under 200 bytes. */
const MAX_MESSAGE_LENGTH = 1_024

export interface RedisInvalidationBusOptions {
  /** redis://, rediss:// (TLS) or redis-sentinel://, as for the session store. */
  url: string
  /**
   * The channel is `<keyPrefix>invalidate`. Pub/sub channels are shared by every database
   * number of a Redis, so gateways (or tests) sharing one Redis need distinct prefixes.
   */
  keyPrefix?: string
  /** How long `open` keeps trying to reach Redis and subscribe before it gives up. */
  connectTimeoutMs?: number
  /** PUBLISH unanswered for this long rejects. */
  commandTimeoutMs?: number
  /**
   * The subscriber is pinged this often, and reconnected when a ping goes unanswered for as
   * long: a connection that died without closing (a network cut, a frozen server) is noticed
   * within two heartbeats, and reported as a reset.
   */
  heartbeatMs?: number
}

interface Envelope extends Record<string, unknown> {
  /** The publishing bus, so that it ignores its own echo (it delivered locally already). */
  origin: string
}

/**
 * The invalidation bus shared by replicas: Redis pub/sub on one channel, over a publishing
 * connection and a dedicated subscriber connection.
 *
 * Pub/sub is fire-and-forget: a message published while a subscriber is disconnected is lost
 * to it. So `connected` is false from the moment the subscriber connection drops until it
 * has subscribed again, and the reset handlers run at both moments; a consumer that drops
 * its caches then, and does not cache while disconnected, never serves an entry that a lost
 * message should have removed.
 */
export class RedisInvalidationBus implements InvalidationBus {
  readonly kind = 'redis'
  readonly channel: string
  readonly #publisher: Redis
  readonly #subscriber: Redis
  readonly #origin = randomUUID()
  readonly #handlers = new Set<(message: InvalidationMessage) => void>()
  readonly #resetHandlers = new Set<() => void>()
  readonly #heartbeat: NodeJS.Timeout
  #subscribed = false
  #pinging = false
  #closing: Promise<void> | undefined

  private constructor(publisher: Redis, subscriber: Redis, channel: string, heartbeatMs: number) {
    this.#publisher = publisher
    this.#subscriber = subscriber
    this.channel = channel
    subscriber.on('message', (from: string, text: string) => {
      if (from === channel) this.#receive(text)
    })
    subscriber.on('ready', () => {
      void this.#subscribe()
    })
    subscriber.on('close', () => this.#lost())
    this.#heartbeat = setInterval(() => void this.#ping(), heartbeatMs)
    this.#heartbeat.unref()
  }

  /**
   * Connects both connections and subscribes, retrying until `connectTimeoutMs` has passed,
   * then rejects with the last connection error. Once open, both reconnect by themselves.
   */
  static async open(options: RedisInvalidationBusOptions): Promise<RedisInvalidationBus> {
    const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
    const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS
    if (!(heartbeatMs > 0) || !Number.isFinite(heartbeatMs)) throw new RangeError(`heartbeatMs must be positive, got ${heartbeatMs}`)
    const publisher = createRedisClient(options.url, { connectTimeoutMs, commandTimeoutMs: options.commandTimeoutMs })
    // Resubscribing is done by the bus on every 'ready', so that it knows when it is done.
    // A connection dropped for a missed heartbeat is destroyed after disconnectTimeout if it
    // does not close by itself (a frozen peer never answers the FIN).
    const subscriber = publisher.duplicate({ autoResubscribe: false, commandTimeout: heartbeatMs, disconnectTimeout: heartbeatMs })
    // Connection errors surface as failed publishes and resets.
    const lastError = lastErrorOf(publisher, subscriber)
    const channel = `${options.keyPrefix ?? DEFAULT_KEY_PREFIX}invalidate`
    const bus = new RedisInvalidationBus(publisher, subscriber, channel, heartbeatMs)
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          bus.#resetHandlers.delete(onSubscribed)
          publisher.off('ready', onSubscribed)
          reject(connectTimeoutError(options.url, connectTimeoutMs, lastError()))
        }, connectTimeoutMs)
        const onSubscribed = (): void => {
          if (!bus.#subscribed || publisher.status !== 'ready') return
          clearTimeout(timer)
          bus.#resetHandlers.delete(onSubscribed)
          publisher.off('ready', onSubscribed)
          resolve()
        }
        // Whichever comes last of the publisher's 'ready' and the first subscription resolves.
        bus.#resetHandlers.add(onSubscribed)
        publisher.on('ready', onSubscribed)
        // A failed first attempt rejects here, but the retry strategy keeps trying.
        publisher.connect().catch(() => {})
        subscriber.connect().catch(() => {})
      })
    } catch (error) {
      await bus.close()
      throw error
    }
    return bus
  }

  get connected(): boolean {
    return this.#subscribed
  }

  async publish(message: InvalidationMessage): Promise<void> {
    if (this.#closing) throw new Error('the invalidation bus is closed')
    deliver(this.#handlers, message)
    const envelope: Envelope = { ...message, origin: this.#origin }
    await this.#publisher.publish(this.channel, JSON.stringify(envelope)).catch(outage)
  }

  subscribe(handler: (message: InvalidationMessage) => void): () => void {
    const entry = (message: InvalidationMessage): void => handler(message)
    this.#handlers.add(entry)
    return () => {
      this.#handlers.delete(entry)
    }
  }

  onReset(handler: () => void): () => void {
    const entry = (): void => handler()
    this.#resetHandlers.add(entry)
    return () => {
      this.#resetHandlers.delete(entry)
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#quit()
    return this.#closing
  }

  async #quit(): Promise<void> {
    clearInterval(this.#heartbeat)
    this.#subscribed = false
    this.#handlers.clear()
    this.#resetHandlers.clear()
    await Promise.all([this.#publisher, this.#subscriber].map(quitRedis))
  }

  #receive(text: string): void {
    if (text.length > MAX_MESSAGE_LENGTH) return
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      return
    }
    // Our own messages were delivered locally when published.
    if ((parsed as Partial<Envelope> | null)?.origin === this.#origin) return
    const message = parseInvalidationMessage(parsed)
    if (message !== null) deliver(this.#handlers, message)
  }

  async #subscribe(): Promise<void> {
    if (this.#closing) return
    try {
      await this.#subscriber.subscribe(this.channel)
    } catch {
      // Dropped again meanwhile (the next 'ready' retries), or refused on a live connection:
      // reconnect, so that the bus never stays unsubscribed on a connection that looks fine.
      if (!this.#closing && this.#subscriber.status === 'ready') this.#subscriber.disconnect(true)
      return
    }
    if (this.#closing || this.#subscriber.status !== 'ready') return
    this.#subscribed = true
    deliver(this.#resetHandlers)
  }

  #lost(): void {
    if (!this.#subscribed) return
    this.#subscribed = false
    deliver(this.#resetHandlers)
  }

  async #ping(): Promise<void> {
    if (this.#pinging || !this.#subscribed || this.#closing) return
    this.#pinging = true
    try {
      await this.#subscriber.ping()
    } catch {
      if (this.#closing) return
      // Lost from now on, not from whenever the dead connection finally closes.
      this.#lost()
      this.#subscriber.disconnect(true)
    } finally {
      this.#pinging = false
    }
  }
}
