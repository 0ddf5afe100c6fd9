import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { calculateJwkThumbprint } from 'jose'
import t, { type Test } from 'tap'
import { ManualClock } from '../src/core/clock.js'
import { jwkThumbprint, KeyRing, RETIRED_KEY_MARGIN_MS, rotateKeys } from '../src/core/identity-keys.js'

const TTL = 60_000

async function keyFile(t: Test): Promise<string> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-keys-'))
  t.teardown(() => rm(directory, { recursive: true, force: true }))
  return path.join(directory, 'nested', 'certs', 'identity-keys.json')
}

interface FileKey { kid: string; d?: string; x: string; retired_at?: string; created_at: string }

async function fileKeys(file: string): Promise<FileKey[]> {
  return (JSON.parse(await readFile(file, 'utf8')) as { keys: FileKey[] }).keys
}

t.test('first open creates the file with one key, mode 0600, parent directories included', async (t) => {
  const file = await keyFile(t)
  const clock = new ManualClock()
  const ring = await KeyRing.open(file, { clock, assertionTtlMs: TTL })
  t.equal((await stat(file)).mode & 0o777, 0o600)
  const keys = await fileKeys(file)
  t.equal(keys.length, 1)
  t.match(keys[0], { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', kid: ring.current.kid, created_at: new Date(clock.now()).toISOString() })
  t.match(keys[0]?.d, /^[A-Za-z0-9_-]{43}$/)
  t.notOk('retired_at' in (keys[0] ?? {}))
  t.equal(ring.current.privateKey.asymmetricKeyType, 'ed25519')
  t.same(await readdir(path.dirname(file)), ['identity-keys.json'], 'no temporary file left behind')

  const jwks = ring.publicJwks()
  t.same(jwks, { keys: [{ kty: 'OKP', crv: 'Ed25519', x: keys[0]?.x, kid: ring.current.kid, alg: 'EdDSA', use: 'sig' }] })
  t.notMatch(JSON.stringify(jwks), /"d"/, 'no private part is published')
  t.equal(ring.current.kid, await calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: keys[0]?.x ?? '' }), 'kid is the RFC 7638 thumbprint')
  t.equal(jwkThumbprint(keys[0]?.x ?? ''), ring.current.kid)

  const again = await KeyRing.open(file, { clock, assertionTtlMs: TTL })
  t.equal(again.current.kid, ring.current.kid, 'reopening reads the same key')
  t.same(again.publicJwks(), jwks)
})

t.test('concurrent first opens agree on one key', async (t) => {
  const file = await keyFile(t)
  const clock = new ManualClock()
  const rings = await Promise.all(Array.from({ length: 8 }, () => KeyRing.open(file, { clock, assertionTtlMs: TTL })))
  t.same(new Set(rings.map((ring) => ring.current.kid)).size, 1)
  t.equal((await fileKeys(file)).length, 1)
  t.same(await readdir(path.dirname(file)), ['identity-keys.json'])
})

t.test('rotation keeps the previous key published until ttl + margin, then prunes it', async (t) => {
  const file = await keyFile(t)
  const clock = new ManualClock()
  const ring = await KeyRing.open(file, { clock, assertionTtlMs: TTL })
  const first = ring.current.kid

  clock.advance(1000)
  const rotation = await rotateKeys(file, { clock, assertionTtlMs: TTL })
  t.not(rotation.kid, first)
  t.same(rotation, { kid: rotation.kid, retained: [first], removed: [] })
  t.equal((await stat(file)).mode & 0o777, 0o600, 'still 0600 after the rewrite')
  const keys = await fileKeys(file)
  t.same(keys.map((key) => key.kid), [first, rotation.kid])
  t.equal(keys[0]?.retired_at, new Date(clock.now()).toISOString())
  t.notOk('d' in (keys[0] ?? {}), 'a retired key keeps no private part')
  t.ok(keys[1]?.d)

  t.equal(ring.current.kid, first, 'a running ring signs with its key until it reloads')
  await ring.reload()
  t.equal(ring.current.kid, rotation.kid)
  t.same(ring.publicJwks().keys.map((key) => key.kid), [first, rotation.kid])

  clock.advance(TTL + RETIRED_KEY_MARGIN_MS - 1)
  t.same(ring.publicJwks().keys.map((key) => key.kid), [first, rotation.kid], 'published until the window ends')
  const reopened = await KeyRing.open(file, { clock, assertionTtlMs: TTL })
  t.same(reopened.publicJwks().keys.map((key) => key.kid), [first, rotation.kid])

  clock.advance(1)
  t.same(ring.publicJwks().keys.map((key) => key.kid), [rotation.kid], 'gone from the JWKS once every assertion it signed has expired')
  const late = await KeyRing.open(file, { clock, assertionTtlMs: TTL })
  t.same(late.publicJwks().keys.map((key) => key.kid), [rotation.kid], 'pruned at load')

  const next = await rotateKeys(file, { clock, assertionTtlMs: TTL })
  t.same(next, { kid: next.kid, retained: [rotation.kid], removed: [first] })
  t.same((await fileKeys(file)).map((key) => key.kid), [rotation.kid, next.kid], 'pruned from the file at the next rotation')
})

t.test('a ring that reloads late keeps publishing the key it signed with for a full window from its reload', async (t) => {
  const file = await keyFile(t)
  const clock = new ManualClock()
  const ring = await KeyRing.open(file, { clock, assertionTtlMs: TTL })
  const first = ring.current.kid
  const second = (await rotateKeys(file, { clock, assertionTtlMs: TTL })).kid
  clock.advance(TTL + RETIRED_KEY_MARGIN_MS + 5000)
  const third = await rotateKeys(file, { clock, assertionTtlMs: TTL })
  t.same(third.removed, [first], 'the CLI removed the first key from the file')

  await ring.reload()
  t.equal(ring.current.kid, third.kid)
  t.same(ring.publicJwks().keys.map((key) => key.kid).sort(), [first, second, third.kid].sort(),
    'the first key signed here until this reload, so it stays published here')
  clock.advance(TTL + RETIRED_KEY_MARGIN_MS)
  t.same(ring.publicJwks().keys.map((key) => key.kid), [third.kid])
})

t.test('rotate creates the file when it does not exist', async (t) => {
  const file = await keyFile(t)
  const clock = new ManualClock()
  const rotation = await rotateKeys(file, { clock, assertionTtlMs: TTL })
  t.same(rotation, { kid: rotation.kid, retained: [], removed: [] })
  const ring = await KeyRing.open(file, { clock, assertionTtlMs: TTL })
  t.equal(ring.current.kid, rotation.kid)
})

t.test('a malformed key file is refused, named, and left untouched', async (t) => {
  const clock = new ManualClock()
  const valid = await keyFile(t)
  await KeyRing.open(valid, { clock, assertionTtlMs: TTL })
  const [key] = await fileKeys(valid)
  if (key === undefined) throw new Error('no key')
  const { d: _d, ...publicOnly } = key
  const other = await keyFile(t)
  await KeyRing.open(other, { clock, assertionTtlMs: TTL })
  const otherX = (await fileKeys(other))[0]?.x
  const cases: Array<[string, string]> = [
    ['empty', ''],
    ['not JSON', '{"keys": ['],
    ['no keys array', '{"key": []}'],
    ['no keys', '{"keys": []}'],
    ['not Ed25519', JSON.stringify({ keys: [{ ...key, crv: 'X25519' }] })],
    ['bad x', JSON.stringify({ keys: [{ ...key, x: 'abc' }] })],
    ['x of another key', JSON.stringify({ keys: [{ ...key, x: otherX }] })],
    ['current key without d', JSON.stringify({ keys: [publicOnly] })],
    ['two current keys', JSON.stringify({ keys: [key, { ...key, kid: 'other' }] })],
    ['duplicate kid', JSON.stringify({ keys: [key, { ...publicOnly, retired_at: new Date(clock.now()).toISOString() }] })],
    ['bad created_at', JSON.stringify({ keys: [{ ...key, created_at: 'yesterday' }] })],
    ['no current key', JSON.stringify({ keys: [{ ...key, retired_at: new Date(clock.now()).toISOString() }] })],
  ]
  for (const [name, content] of cases) {
    const file = await keyFile(t)
    await mkdir(path.dirname(file), { recursive: true })
    await writeFile(file, content, { mode: 0o600 })
    await t.rejects(KeyRing.open(file, { clock, assertionTtlMs: TTL }), { message: new RegExp(`identity key file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is malformed`) }, name)
    await t.rejects(rotateKeys(file, { clock, assertionTtlMs: TTL }), { message: /is malformed/ }, `${name}: rotate`)
    t.equal(await readFile(file, 'utf8'), content, `${name}: file untouched`)
  }

  const ring = await KeyRing.open(valid, { clock, assertionTtlMs: TTL })
  const before = await readFile(valid, 'utf8')
  await writeFile(valid, '{"keys": ')
  await t.rejects(ring.reload(), { message: /is malformed/ })
  t.equal(ring.current.kid, key.kid, 'a failed reload keeps the old keys')
  t.same(ring.publicJwks().keys.map((jwk) => jwk.kid), [key.kid])
  await writeFile(valid, before)
})

t.test('key creation never hangs: 50 new key files in a row', async (t) => {
  const clock = new ManualClock()
  const kids = new Set<string>()
  const started = performance.now()
  for (let i = 0; i < 50; i++) {
    const ring = await KeyRing.open(await keyFile(t), { clock, assertionTtlMs: TTL })
    kids.add(ring.current.kid)
  }
  t.equal(kids.size, 50, 'every key is new')
  t.ok(performance.now() - started < 10_000, 'quickly')
})
