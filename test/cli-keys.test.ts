/**
 * `gatehouse keys rotate [--signing] [--data]` (SPEC §8) as a real process: --data adds a data
 * key and keeps the old ones (values sealed before stay readable), touching no signing key;
 * without a flag both files are rotated (or created).
 */
import { execFile } from 'node:child_process'
import { access, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { DataKeyRing } from '../src/core/data-keys.js'

const BIN = fileURLToPath(new URL('../src/bin.js', import.meta.url))
const run = promisify(execFile)

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false)
}

t.test('keys rotate --data, and both without a flag', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-cli-keys-'))
  const config = path.join(dir, 'gateway.yml')
  await writeFile(config, 'storage: { database: "postgres://nobody@127.0.0.1:1/none" }\nidentity: { signing_key_file: ./keys/signing.json, data_key_file: ./keys/data.json }\n')
  const dataFile = path.join(dir, 'keys', 'data.json')
  const signingFile = path.join(dir, 'keys', 'signing.json')

  const first = await run(process.execPath, [BIN, 'keys', 'rotate', '--data', '--config', config], { timeout: 120_000 })
  t.match(first.stdout, /^new data key [A-Za-z0-9_-]+; still decrypting with: none$/m)
  t.notOk(await exists(signingFile), '--data leaves the signing keys alone')
  const ring = await DataKeyRing.open(dataFile, { create: false })
  const sealed = ring.encrypt('a secret', 'context')

  const second = await run(process.execPath, [BIN, 'keys', 'rotate', '--config', config], { timeout: 120_000 })
  t.match(second.stdout, /^new signing key /m, 'without a flag: the signing key')
  t.match(second.stdout, new RegExp(`^new data key [A-Za-z0-9_-]+; still decrypting with: ${ring.currentKid}$`, 'm'), 'and the data key')
  t.ok(await exists(signingFile))
  const rotated = await DataKeyRing.open(dataFile, { create: false })
  t.not(rotated.currentKid, ring.currentKid, 'a new current key')
  t.equal(rotated.decrypt(sealed, 'context'), 'a secret', 'the old key still decrypts')
  t.equal(JSON.parse(await readFile(dataFile, 'utf8')).keys.length, 2)
})
