/**
 * The gateway's log (SPEC §2 `logging`): one JSON object per line on stdout, with an ISO 8601
 * `time` and the level by name (`"level":"info"`), so that `jq` and log shippers read it
 * as it is; or, with `logging.format: pretty`, human-readable lines through pino-pretty for
 * a terminal. Nothing else is written to stdout while the gateway runs: the start-up banner
 * goes to stderr.
 */
import pino, { type DestinationStream, type LoggerOptions } from 'pino'
import pretty from 'pino-pretty'
import type { GatewayConfig } from './config/types.js'

/** Headers, cookies and secrets that must never reach a log line. */
export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.password',
  '*.current_password',
  '*.new_password',
  '*.token',
  'password',
  'current_password',
  'new_password',
  'token',
]

/** One pretty stream on stdout per process, whatever the number of reloads. */
let prettyStdout: DestinationStream | undefined
/** The JSON stream on stdout, one per process (bufferedStdout). */
let jsonStdout: DestinationStream | undefined

/** Longest a log line waits in the stdout buffer. */
export const LOG_FLUSH_INTERVAL_MS = 200

/**
 * stdout through a 32 KiB buffer: a busy gateway makes one write per ~150 lines instead of one
 * per request (with 4 KiB, sonic-boom's writes were still 3% of a proxied request's CPU), and
 * a quiet one still writes within LOG_FLUSH_INTERVAL_MS. pino flushes the buffer synchronously
 * when the process exits, so an orderly stop loses nothing.
 */
function bufferedStdout(): DestinationStream {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 32_768, maxWrite: 65_536 })
  const write = destination.write.bind(destination)
  let pending = false
  destination.write = (line: string) => {
    pending = true
    return write(line)
  }
  setInterval(() => {
    if (!pending) return
    pending = false
    try {
      destination.flush()
    } catch {
      // stdout is gone (closed pipe): there is nowhere left to write.
    }
  }, LOG_FLUSH_INTERVAL_MS).unref()
  return destination
}

let timeMs = -1
let timeField = ''

/** pino's `isoTime`, formatted once per millisecond: a busy gateway writes several lines in each. */
export function isoTime(): string {
  const now = Date.now()
  if (now !== timeMs) {
    timeMs = now
    timeField = `,"time":"${new Date(now).toISOString()}"`
  }
  return timeField
}

/** pino options (with fastify's `stream`) for `logging`; `stream` replaces stdout (tests capture it). */
export function loggerOptions(logging: GatewayConfig['logging'], stream?: DestinationStream): LoggerOptions & { stream?: DestinationStream } {
  const common: LoggerOptions = {
    level: logging.level,
    redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
  }
  if (logging.format === 'pretty') {
    // pino-pretty reads pino's own numeric levels and epoch times and prints both for people.
    const options = { colorize: false, translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l o', ignore: 'pid,hostname', sync: true }
    const target = stream === undefined ? (prettyStdout ??= pretty({ ...options, destination: 1 })) : pretty({ ...options, destination: stream })
    return { ...common, stream: target }
  }
  return {
    ...common,
    timestamp: isoTime,
    formatters: { level: (label) => ({ level: label }) },
    stream: stream ?? (jsonStdout ??= bufferedStdout()),
  }
}
