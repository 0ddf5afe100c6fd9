/**
 * fastify's per-request logger (http/request-logger): the pino child is made when the request
 * first logs, never for a request that does not, and its lines are the child's own: request
 * id bound, the parent's redaction applied.
 */
import type { FastifyBaseLogger } from 'fastify'
import pino from 'pino'
import { Writable } from 'node:stream'
import t from 'tap'
import { requestLogger } from '../src/http/request-logger.js'

function capture(): { parent: FastifyBaseLogger; lines: () => Array<Record<string, unknown>>; children: () => number } {
  const written: string[] = []
  const stream = new Writable({ write: (chunk: Buffer, _encoding, done) => (written.push(chunk.toString()), done()) })
  const parent = pino({ level: 'info', redact: { paths: ['token'], censor: '[redacted]' } }, stream)
  let children = 0
  // Children inherit this property: count only the ones made of the parent itself.
  const child = parent.child
  parent.child = function (this: typeof parent, bindings, options) {
    if (this === parent) children++
    return child.call(this, bindings, options)
  } as typeof parent.child
  return { parent, lines: () => written.join('').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>), children: () => children }
}

t.test('no child logger for a request that does not log; one, bound to the request id, once it does', async (t) => {
  const { parent, lines, children } = capture()
  const log = requestLogger(parent, { reqId: 'req-1' }, {})
  t.equal(log.level, 'info', 'the level is read without making the child')
  t.equal(children(), 0)
  log.info({ token: 'secret', route: 'app' }, 'first')
  log.warn('second %s', 'line')
  log.debug('below the level')
  t.equal(children(), 1, 'made once, at the first line')
  const [first, second] = lines()
  t.match(first, { reqId: 'req-1', route: 'app', msg: 'first', token: '[redacted]' })
  t.match(second, { reqId: 'req-1', msg: 'second line', level: 40 })
  t.equal(lines().length, 2)
})

t.test('every level, a child of its own and a level set on it reach the made logger', async (t) => {
  const { parent, lines } = capture()
  const log = requestLogger(parent, { reqId: 'req-2' }, {})
  log.level = 'trace'
  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const) log[level](`at ${level}`)
  log.silent('never written')
  log.child({ part: 'x' }).info('from a child')
  t.same(lines().map((line) => line.msg), ['at fatal', 'at error', 'at warn', 'at info', 'at debug', 'at trace', 'from a child'])
  t.ok(lines().every((line) => line.reqId === 'req-2'))
  t.equal(log.level, 'trace')
})
