/**
 * The data key ring (SPEC §2 identity.data_key_file, §8 keys rotate --data): AES-256-GCM
 * round trips bound to their context, tampering and unknown keys refused, rotation keeping
 * old values readable, the file created 0600 on first start only when allowed.
 */
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { DataKeyError, DataKeyRing, rotateDataKeys } from '../src/core/data-keys.js'

async function tempFile(): Promise<string> {
  return path.join(await mkdtemp(path.join(os.tmpdir(), 'gatehouse-data-keys-')), 'data-keys.json')
}

t.test('encrypt and decrypt, bound to the context', async (t) => {
  const ring = DataKeyRing.ephemeral()
  const sealed = ring.encrypt('a provider refresh token', 'oidc-refresh:abc')
  t.notMatch(sealed, /refresh token/, 'no plaintext in the sealed value')
  t.match(sealed, new RegExp(`^gh1\\.${ring.currentKid}\\.`), 'names its key')
  t.equal(ring.decrypt(sealed, 'oidc-refresh:abc'), 'a provider refresh token')
  t.not(ring.encrypt('same', 'c'), ring.encrypt('same', 'c'), 'a fresh IV each time')
  t.throws(() => ring.decrypt(sealed, 'oidc-refresh:other'), DataKeyError, 'another context does not decrypt')
  const [v, kid, iv, body] = sealed.split('.') as [string, string, string, string]
  const flipped = Buffer.from(body, 'base64url')
  flipped[0] = (flipped[0] ?? 0) ^ 1
  t.throws(() => ring.decrypt([v, kid, iv, flipped.toString('base64url')].join('.'), 'oidc-refresh:abc'), DataKeyError, 'tampered ciphertext')
  t.throws(() => ring.decrypt([v, 'unknownkid', iv, body].join('.'), 'oidc-refresh:abc'), DataKeyError, 'unknown key id')
  t.throws(() => ring.decrypt('plain text', 'oidc-refresh:abc'), DataKeyError, 'not a sealed value')
  t.throws(() => DataKeyRing.ephemeral().decrypt(sealed, 'oidc-refresh:abc'), DataKeyError, 'another ring')
})

t.test('the file: created 0600 when allowed, an error naming the key otherwise', async (t) => {
  const missing = await tempFile()
  await t.rejects(DataKeyRing.open(missing, { create: false }), /^identity\.data_key_file: .* does not exist/)
  const file = await tempFile()
  const [a, b] = await Promise.all([DataKeyRing.open(file, { create: true }), DataKeyRing.open(file, { create: true })])
  t.equal(a.currentKid, b.currentKid, 'two processes starting together end with one key')
  t.equal((await stat(file)).mode & 0o777, 0o600)
  const reopened = await DataKeyRing.open(file, { create: false })
  t.equal(reopened.decrypt(a.encrypt('x', 'c'), 'c'), 'x', 'the same key after a restart')
  await writeFile(file, '{"keys":[{"kid":"a","k":"short"}]}')
  await t.rejects(DataKeyRing.open(file, { create: false }), /identity\.data_key_file: .*key 1 is not a 32-byte key/)
})

t.test('rotation: new values use the new key, old values still decrypt', async (t) => {
  const file = await tempFile()
  const created = await rotateDataKeys(file)
  t.same(created.retained, [], 'rotating without a file creates it')
  const ring = await DataKeyRing.open(file, { create: false })
  const old = ring.encrypt('before', 'c')
  const rotated = await rotateDataKeys(file)
  t.same(rotated.retained, [created.kid])
  await ring.reload()
  t.equal(ring.currentKid, rotated.kid, 'reload picks up the new key')
  t.match(ring.encrypt('after', 'c'), new RegExp(`^gh1\\.${rotated.kid}\\.`))
  t.equal(ring.decrypt(old, 'c'), 'before', 'sealed with the old key, still readable')
  const stored = JSON.parse(await readFile(file, 'utf8')) as { keys: { kid: string }[] }
  t.same(stored.keys.map((key) => key.kid), [created.kid, rotated.kid])
})
