/**
 * What every UserSecretStore does (core/user-secrets/store.ts), run against each database
 * (test/storage-user-secrets.test.ts): the service relies on exactly this.
 */
import type { Test } from 'tap'
import { AuditLog } from '../../src/core/audit.js'
import { DatabaseUserSecretStore } from '../../src/core/user-secrets/index.js'
import type { Database } from '../../src/storage/database.js'
import type { DatabaseBackend } from '../helpers/backends.js'

const sealed = (ciphertext: string, keyId = 'k1', upstreamFingerprint = 'f1') => ({ ciphertext, keyId, upstreamFingerprint })

async function insertUser(db: Database, email: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>('INSERT INTO users (email) VALUES ($1) RETURNING id::text AS id', [email])
  return rows[0]!.id
}

async function auditTypes(db: Database): Promise<Array<[string, unknown]>> {
  const { rows } = await db.query<{ type: string; details: { route?: unknown } }>('SELECT type, details FROM audit_events ORDER BY id')
  return rows.map((row) => [row.type, row.details.route])
}

export function userSecretStoreContract(t: Test, backend: DatabaseBackend): void {
  async function open(t: Test) {
    const db = await backend.open(t)
    const store = new DatabaseUserSecretStore(db, new AuditLog(db))
    const alice = await insertUser(db, 'alice@example.com')
    const bob = await insertUser(db, 'bob@example.com')
    return { db, store, alice, bob }
  }

  t.test('put creates, then replaces keeping created_at; get and list read it back', async (t) => {
    const { db, store, alice, bob } = await open(t)
    t.equal(await store.put(alice, 'vault', sealed('c1'), { ip: '192.0.2.1' }), 'created')
    const first = await store.get(alice, 'vault')
    t.match(first, { route: 'vault', ciphertext: 'c1', keyId: 'k1', upstreamFingerprint: 'f1', createdAt: Date, updatedAt: Date })
    t.equal(await store.put(alice, 'vault', sealed('c2', 'k2', 'f2'), {}), 'replaced')
    const second = await store.get(alice, 'vault')
    t.match(second, { ciphertext: 'c2', keyId: 'k2', upstreamFingerprint: 'f2' })
    t.same(second?.createdAt, first?.createdAt, 'created_at kept')
    t.ok(second!.updatedAt.getTime() >= first!.updatedAt.getTime(), 'updated_at moves forward')
    await store.put(alice, 'another', sealed('c3'), {})
    t.same((await store.list(alice)).map((info) => info.route), ['another', 'vault'], 'listed by route name')
    t.notOk(JSON.stringify(await store.list(alice)).includes('c2'), 'the list carries no ciphertext')
    t.same(await store.list(bob), [], 'another user has none')
    t.equal(await store.get(bob, 'vault'), null)
    t.same(await auditTypes(db), [['user_secret.set', 'vault'], ['user_secret.set', 'vault'], ['user_secret.set', 'another']], 'each put audited')
    const ip = (await db.query<{ ip: string }>('SELECT ip FROM audit_events ORDER BY id LIMIT 1')).rows[0]?.ip
    t.equal(ip, '192.0.2.1')
  })

  t.test('put for a user that does not exist is GH_NOT_FOUND and stores nothing', async (t) => {
    const { db, store } = await open(t)
    await t.rejects(store.put('00000000-0000-4000-8000-000000000000', 'vault', sealed('c'), {}), { code: 'GH_NOT_FOUND' })
    t.equal((await db.query('SELECT 1 FROM user_secrets')).rowCount, 0)
    t.equal((await db.query('SELECT 1 FROM audit_events')).rowCount, 0)
  })

  t.test('delete removes one secret and audits it; a second delete is false and audits nothing', async (t) => {
    const { db, store, alice, bob } = await open(t)
    await store.put(alice, 'vault', sealed('a'), {})
    await store.put(bob, 'vault', sealed('b'), {})
    t.equal(await store.delete(alice, 'vault', {}), true)
    t.equal(await store.delete(alice, 'vault', {}), false)
    t.equal(await store.get(alice, 'vault'), null)
    t.match(await store.get(bob, 'vault'), { ciphertext: 'b' }, 'bob\'s untouched')
    t.same((await auditTypes(db)).map(([type]) => type), ['user_secret.set', 'user_secret.set', 'user_secret.removed'])
  })

  t.test('reseal replaces only the ciphertext it was given, and keeps updated_at', async (t) => {
    const { store, alice } = await open(t)
    await store.put(alice, 'vault', sealed('old'), {})
    const before = await store.get(alice, 'vault')
    t.equal(await store.reseal(alice, 'vault', 'not-the-current-one', { ciphertext: 'x', keyId: 'k9' }), false, 'changed meanwhile: untouched')
    t.equal(await store.reseal(alice, 'vault', 'old', { ciphertext: 'new', keyId: 'k2' }), true)
    const after = await store.get(alice, 'vault')
    t.match(after, { ciphertext: 'new', keyId: 'k2' })
    t.same(after?.updatedAt, before?.updatedAt, 'updated_at kept: the user changed nothing')
  })

  t.test('deleting the user deletes their secrets', async (t) => {
    const { db, store, alice } = await open(t)
    await store.put(alice, 'vault', sealed('a'), {})
    await db.query('DELETE FROM users WHERE id = $1', [alice])
    t.equal((await db.query('SELECT 1 FROM user_secrets')).rowCount, 0)
  })
}
