/**
 * The control socket (SPEC §8): a Unix socket next to an embedded database through which the
 * CLI reaches the gateway that holds it. One JSON request per connection, one JSON answer:
 *
 *   → {"v":1,"command":"user.disable","args":{"email":"a@example.com"}}\n
 *   ← {"ok":true,"result":{…}}\n   or   {"ok":false,"error":{"code":"GH_VALIDATION","message":"…","details":{…}}}\n
 *
 * Only the gateway's user may connect: the socket is created mode 0600 (under a umask that
 * leaves no window) inside a directory of its own, mode 0700 and owned by that user. Passwords
 * cross it (user create, reset-password), so nothing of a request is ever logged.
 */
import { once } from 'node:events'
import { chmod, lstat, mkdir, rm } from 'node:fs/promises'
import { rmSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { errorCodes, GatehouseError, type ErrorCode } from '../errors.js'
import { CommandFailure } from './commands.js'

export const PROTOCOL_VERSION = 1
/** A request holds a few short strings; anything longer is not from our CLI. */
const MAX_REQUEST_BYTES = 64 * 1024
/** A client that sends nothing for this long is dropped (a command itself may take longer). */
const IDLE_TIMEOUT_MS = 30_000
/** sun_path holds 108 bytes on Linux, the terminating NUL included. */
const MAX_SOCKET_PATH_BYTES = 107

/** Where the control socket of the embedded database in `dataDir` (absolute) lives. */
export function controlSocketPath(dataDir: string): string {
  return path.join(`${dataDir}.control`, 'gatehouse.sock')
}

export interface ControlSocket {
  readonly path: string
  close(): Promise<void>
  /** Removes the socket file at once, for a process that is exiting. */
  removeSync(): void
}

export interface ControlSocketOptions {
  /** Runs one request (already parsed JSON) and resolves its result; a rejection is the answer's error. */
  handle(request: unknown): Promise<unknown>
  /** Told of a connection that failed (never of a request's content). */
  onError?(error: unknown): void
}

/**
 * Listens on `socketPath`. The caller holds the embedded database's lock, so a socket file
 * found there is left over from a crash and is replaced.
 */
export async function startControlSocket(socketPath: string, options: ControlSocketOptions): Promise<ControlSocket> {
  checkPathLength(socketPath)
  await privateDirectory(path.dirname(socketPath))
  await rm(socketPath, { force: true })
  const server = net.createServer({ allowHalfOpen: true }, (connection) => serve(connection, options))
  // bind() creates the file with the process umask: 0177 makes it 0600 from the first moment.
  const umask = process.umask(0o177)
  try {
    server.listen(socketPath)
  } finally {
    process.umask(umask)
  }
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err as Error))])
  await chmod(socketPath, 0o600)
  let closed: Promise<void> | undefined
  return {
    path: socketPath,
    close() {
      closed ??= new Promise<void>((resolve) => server.close(() => resolve())).then(() => rm(socketPath, { force: true }))
      return closed
    },
    removeSync() {
      rmSync(socketPath, { force: true })
    },
  }
}

/** Creates the socket's directory, or checks that an existing one is ours, and makes it 0700. */
async function privateDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o700 })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  const info = await lstat(dir)
  if (!info.isDirectory()) throw new Error(`${dir} exists and is not a directory: the control socket needs it`)
  if (info.uid !== process.getuid?.()) throw new Error(`${dir} belongs to another user (uid ${info.uid}): refusing to put the control socket there`)
  await chmod(dir, 0o700)
}

function checkPathLength(socketPath: string): void {
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    throw new Error(`the control socket path ${socketPath} is longer than ${MAX_SOCKET_PATH_BYTES} bytes: use a shorter embedded database path`)
  }
}

function serve(connection: net.Socket, options: ControlSocketOptions): void {
  connection.setTimeout(IDLE_TIMEOUT_MS, () => connection.destroy())
  connection.on('error', (err) => options.onError?.(err))
  let buffered = ''
  let answered = false
  const answer = (body: unknown) => {
    answered = true
    connection.setTimeout(0)
    connection.end(`${JSON.stringify(body)}\n`)
  }
  connection.setEncoding('utf8').on('data', (chunk: string) => {
    if (answered) return
    buffered += chunk
    const end = buffered.indexOf('\n')
    if (end === -1) {
      if (Buffer.byteLength(buffered) > MAX_REQUEST_BYTES) answer(failure(new GatehouseError('GH_PAYLOAD_TOO_LARGE')))
      return
    }
    answered = true
    connection.setTimeout(0)
    void respond(buffered.slice(0, end), options).then(answer)
  })
  connection.on('end', () => {
    if (!answered) answer(failure(new GatehouseError('GH_VALIDATION', 'The request ended before its newline')))
  })
}

async function respond(line: string, options: ControlSocketOptions): Promise<unknown> {
  let request: unknown
  try {
    request = JSON.parse(line)
  } catch {
    return failure(new GatehouseError('GH_VALIDATION', 'The request is not JSON'))
  }
  const version = (request as { v?: unknown } | null)?.v
  if (version !== PROTOCOL_VERSION) {
    return failure(new GatehouseError('GH_VALIDATION', `This gateway speaks control protocol ${PROTOCOL_VERSION}; is the CLI of another version?`))
  }
  try {
    return { ok: true, result: await options.handle(request) }
  } catch (err) {
    return failure(err)
  }
}

interface WireError {
  /** A GH_ code, `failure` (a CommandFailure) or `internal`. */
  code: string
  message: string
  details?: Record<string, unknown>
}

function failure(err: unknown): { ok: false; error: WireError } {
  if (err instanceof GatehouseError) {
    return { ok: false, error: { code: err.code, message: err.message, ...(err.details ? { details: { ...err.details } } : {}) } }
  }
  if (err instanceof CommandFailure) return { ok: false, error: { code: 'failure', message: err.message } }
  return { ok: false, error: { code: 'internal', message: err instanceof Error ? err.message : String(err) } }
}

/** The gateway could not be reached through its control socket. */
export class ControlSocketUnreachable extends Error {
  constructor(socketPath: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException).code ?? (cause instanceof Error ? cause.message : String(cause))
    super(`cannot reach the running gateway through its control socket ${socketPath} (${code})`, { cause })
    this.name = 'ControlSocketUnreachable'
  }
}

/**
 * Sends one request and resolves the result; rejects with the command's own error
 * (GatehouseError, CommandFailure) when it failed there, ControlSocketUnreachable when the
 * gateway could not be reached.
 */
export async function sendControlRequest(socketPath: string, command: string, args: Record<string, unknown>): Promise<unknown> {
  checkPathLength(socketPath)
  const connection = net.createConnection(socketPath)
  try {
    await Promise.race([once(connection, 'connect'), once(connection, 'error').then(([err]) => Promise.reject(err as Error))])
  } catch (err) {
    connection.destroy()
    throw new ControlSocketUnreachable(socketPath, err)
  }
  let answer = ''
  connection.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk))
  const ended = Promise.race([once(connection, 'end'), once(connection, 'error').then(([err]) => Promise.reject(err as Error))])
  connection.end(`${JSON.stringify({ v: PROTOCOL_VERSION, command, args })}\n`)
  try {
    await ended
  } catch (err) {
    throw new ControlSocketUnreachable(socketPath, err)
  } finally {
    connection.destroy()
  }
  let body: { ok?: unknown; result?: unknown; error?: WireError }
  try {
    body = JSON.parse(answer) as typeof body
  } catch {
    throw new Error(`the gateway's control socket answered something that is not JSON: ${answer.slice(0, 200)}`)
  }
  if (body.ok === true) return body.result
  throw fromWire(body.error)
}

function fromWire(error: WireError | undefined): Error {
  if (error === undefined) return new Error('the gateway answered an error without saying which')
  if (Object.hasOwn(errorCodes, error.code)) {
    return new GatehouseError(error.code as ErrorCode, error.message, error.details ? { details: error.details } : {})
  }
  if (error.code === 'failure') return new CommandFailure(error.message)
  return new Error(`the gateway failed to run the command: ${error.message}`)
}
