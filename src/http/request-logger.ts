/**
 * Each request's logger (fastify's `request.log`), made when the request first logs. fastify
 * makes a pino child per request, and with the redaction paths that is a few microseconds of
 * every proxied request, which mostly never logs: its access line has a logger of its own.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Bindings, ChildLoggerOptions } from 'pino'

type LogArguments = [obj: unknown, msg?: string, ...args: unknown[]]

class RequestLogger implements FastifyBaseLogger {
  readonly #parent: FastifyBaseLogger
  readonly #bindings: Bindings
  readonly #options: ChildLoggerOptions
  #logger: FastifyBaseLogger | null = null

  constructor(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions) {
    this.#parent = parent
    this.#bindings = bindings
    this.#options = options
  }

  #made(): FastifyBaseLogger {
    return (this.#logger ??= this.#parent.child(this.#bindings, this.#options))
  }

  get level(): string {
    return this.#logger?.level ?? this.#options.level ?? this.#parent.level
  }

  set level(level: string) {
    this.#made().level = level
  }

  // Methods, not arrow properties: a request that never logs allocates nothing for them.
  fatal(...args: LogArguments): void {
    this.#made().fatal(...args)
  }

  error(...args: LogArguments): void {
    this.#made().error(...args)
  }

  warn(...args: LogArguments): void {
    this.#made().warn(...args)
  }

  info(...args: LogArguments): void {
    this.#made().info(...args)
  }

  debug(...args: LogArguments): void {
    this.#made().debug(...args)
  }

  trace(...args: LogArguments): void {
    this.#made().trace(...args)
  }

  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#made().child(bindings, options)
  }
}

/** fastify's `childLoggerFactory`. */
export function requestLogger(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  return new RequestLogger(parent, bindings, options)
}
