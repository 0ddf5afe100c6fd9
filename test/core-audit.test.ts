import t from 'tap'
import { AuditLog } from '../src/core/audit.js'
import { databaseBackends } from './helpers/backends.js'

for (const backend of databaseBackends()) {
  t.test(backend.name, async (t) => {
    t.test('record and list', async (t) => {
      const db = await backend.open(t)
      const audit = new AuditLog(db)
      const userId = '11111111-1111-4111-8111-111111111111'
      await audit.record('login.failed', { email: 'ghost@example.com', ip: '192.0.2.1', details: { reason: 'unknown_email' } })
      await audit.record('login.succeeded', { userId, email: 'alice@example.com', ip: '2001:db8::1' })
      await audit.record('logout', { userId })
      await audit.record('token.created', { userId, details: { token_id: 'x', nested: { list: [1, 'two'] } } })

      const all = await audit.list({ limit: 10 })
      t.same(all.map((entry) => entry.type), ['token.created', 'logout', 'login.succeeded', 'login.failed'], 'newest first')
      t.match(all[3], { user_id: null, email: 'ghost@example.com', ip: '192.0.2.1', details: { reason: 'unknown_email' } })
      t.same(all[1]?.details, {})
      t.same(all[0]?.details, { token_id: 'x', nested: { list: [1, 'two'] } })
      t.match(all[0]?.id, /^\d+$/)
      t.match(all[0]?.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      t.equal((await audit.list({ userId, limit: 10 })).length, 3)
      t.equal((await audit.list({ limit: 2 })).length, 2)
    })

    t.test('newest first by number, past ten events too (not by the id as text)', async (t) => {
      const db = await backend.open(t)
      const audit = new AuditLog(db)
      for (let i = 1; i <= 12; i++) await audit.record('logout', { details: { i } })
      const listed = await audit.list({ limit: 3 })
      t.same(listed.map((entry) => entry.details.i), [12, 11, 10])
    })

    t.test('an event recorded in a transaction that fails is not written', async (t) => {
      const db = await backend.open(t)
      const audit = new AuditLog(db)
      await t.rejects(
        db.transaction(async (tx) => {
          await audit.record('user.updated', { details: { fields: ['name'] } }, tx)
          throw new Error('the change failed')
        }),
        { message: 'the change failed' },
      )
      t.same(await audit.list({ limit: 10 }), [])
      await db.transaction((tx) => audit.record('user.updated', {}, tx))
      t.equal((await audit.list({ limit: 10 })).length, 1)
    })
  })
}
