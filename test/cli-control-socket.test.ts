/**
 * The control socket (SPEC §8) on its own: one JSON request, one answer; the command's errors
 * come back as the same errors; malformed requests are refused; and only the gateway's user
 * may connect: the socket is 0600 inside a 0700 directory of its own, and a process of another
 * user (`nobody`) is refused, while the same process connects once both are opened up (so the
 * refusal is the modes' doing, not the path's).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmod, chown, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { CommandFailure } from '../src/control/commands.js'
import { controlSocketPath, ControlSocketUnreachable, sendControlRequest, startControlSocket } from '../src/control/socket.js'
import { GatehouseError } from '../src/errors.js'

const NOBODY = 65534

/** Sends raw bytes and resolves the whole answer. */
async function raw(socketPath: string, bytes: string): Promise<string> {
  const connection = net.createConnection(socketPath)
  await once(connection, 'connect')
  let answer = ''
  connection.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk))
  connection.end(bytes)
  await once(connection, 'close')
  return answer
}

/** Connects as `nobody` from a child process (root drops to it first): 'connected' or the error code. */
async function connectAsNobody(socketPath: string): Promise<string> {
  const script = `
    process.setgid(${NOBODY}); process.setuid(${NOBODY})
    const c = require('node:net').createConnection(process.argv[1])
    c.on('connect', () => { console.log('connected'); c.destroy() })
    c.on('error', (e) => console.log(e.code))`
  // Without tap's NODE_OPTIONS: its loader would try to write where nobody may not.
  const child = spawn(process.execPath, ['-e', script, socketPath], { stdio: ['ignore', 'pipe', 'inherit'], env: { PATH: process.env.PATH ?? '' } })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  await once(child, 'close')
  return output.trim()
}

t.test('the control socket', async (t) => {
  const base = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-control-'))
  t.teardown(() => rm(base, { recursive: true, force: true }))
  const dataDir = path.join(base, 'db')
  await mkdir(dataDir)
  const socketPath = controlSocketPath(dataDir)
  // A leftover of a crash is replaced (the caller holds the database lock).
  await mkdir(path.dirname(socketPath), { mode: 0o755 })
  await writeFile(socketPath, 'stale')

  const seen: unknown[] = []
  const control = await startControlSocket(socketPath, {
    handle: async (request) => {
      seen.push(request)
      const { command, args } = request as { command: string; args: Record<string, unknown> }
      if (command === 'echo') return { args }
      if (command === 'invalid') throw new GatehouseError('GH_VALIDATION', 'bad args', { details: { field: 'email', problems: ['x'] } })
      if (command === 'missing') throw new CommandFailure('no user with email a@example.com')
      throw new Error('boom')
    },
  })
  t.teardown(() => control.close())

  await t.test('modes: 0600 socket in a 0700 directory', async (t) => {
    t.equal((await stat(socketPath)).mode & 0o777, 0o600, 'the socket')
    t.ok((await stat(socketPath)).isSocket(), 'the stale file was replaced by the socket')
    t.equal((await stat(path.dirname(socketPath))).mode & 0o777, 0o700, 'its directory (was 0755)')
  })

  await t.test('a round trip, and each kind of error as itself', async (t) => {
    t.same(await sendControlRequest(socketPath, 'echo', { email: 'a@example.com', roles: ['x'] }), { args: { email: 'a@example.com', roles: ['x'] } })
    t.match(seen.at(-1), { v: 1, command: 'echo' }, 'the request carries the protocol version')
    const invalid = await sendControlRequest(socketPath, 'invalid', {}).catch((err: unknown) => err)
    t.ok(invalid instanceof GatehouseError, 'a GatehouseError')
    t.match(invalid, { code: 'GH_VALIDATION', message: 'bad args', details: { field: 'email', problems: ['x'] } })
    const missing = await sendControlRequest(socketPath, 'missing', {}).catch((err: unknown) => err)
    t.ok(missing instanceof CommandFailure, 'a CommandFailure')
    t.match(missing, { message: 'no user with email a@example.com' })
    const boom = await sendControlRequest(socketPath, 'boom', {}).catch((err: unknown) => err)
    t.match(boom, { message: /failed to run the command: boom/ })
  })

  await t.test('malformed requests', async (t) => {
    const answer = async (bytes: string) => JSON.parse(await raw(socketPath, bytes)) as { ok: boolean; error?: { code: string } }
    t.match(await answer('not json\n'), { ok: false, error: { code: 'GH_VALIDATION' } }, 'not JSON')
    t.match(await answer('{"v":2,"command":"echo","args":{}}\n'), { ok: false, error: { code: 'GH_VALIDATION' } }, 'another protocol version')
    t.match(await answer('{"v":1,"command":"echo","args":{}}'), { ok: false, error: { code: 'GH_VALIDATION' } }, 'no newline before the end')
    t.match(await answer('x'.repeat(70 * 1024)), { ok: false, error: { code: 'GH_PAYLOAD_TOO_LARGE' } }, 'over 64 KiB')
    t.equal(seen.length, 4, 'none of them reached the handler')
  })

  await t.test('another user cannot connect', { skip: process.getuid?.() !== 0 && 'needs root to act as nobody' }, async (t) => {
    // Everything above the control directory is open to nobody: only the modes can refuse.
    for (let dir = dataDir; dir !== path.dirname(dir); dir = path.dirname(dir)) {
      if (dir.startsWith(base)) await chmod(dir, 0o755)
    }
    await chmod(base, 0o755)
    t.equal(await connectAsNobody(socketPath), 'EACCES', 'refused by the 0700 directory and the 0600 socket')
    await chmod(path.dirname(socketPath), 0o755)
    t.equal(await connectAsNobody(socketPath), 'EACCES', 'refused by the 0600 socket alone')
    await chmod(socketPath, 0o666)
    t.equal(await connectAsNobody(socketPath), 'connected', 'the same process connects once the modes allow it')
    await chmod(socketPath, 0o600)
    await chmod(path.dirname(socketPath), 0o700)
  })

  await t.test('a directory of another user is refused; gone is unreachable', async (t) => {
    const other = path.join(base, 'other')
    await mkdir(other)
    const otherSocket = controlSocketPath(other)
    await mkdir(path.dirname(otherSocket))
    if (process.getuid?.() === 0) {
      await chown(path.dirname(otherSocket), NOBODY, NOBODY)
      await t.rejects(startControlSocket(otherSocket, { handle: async () => null }), /belongs to another user/)
    }
    const unreachable = await sendControlRequest(path.join(base, 'nothing.sock'), 'echo', {}).catch((err: unknown) => err)
    t.ok(unreachable instanceof ControlSocketUnreachable, 'no socket: unreachable')
    t.match(unreachable, { message: /ENOENT/ })
  })

  await t.test('close removes the socket file', async (t) => {
    await control.close()
    await t.rejects(stat(socketPath), { code: 'ENOENT' })
  })
})
