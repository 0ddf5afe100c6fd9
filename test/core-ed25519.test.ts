import { generateKeyPairSync, randomBytes, verify } from 'node:crypto'
import { createRequire } from 'node:module'
import t from 'tap'
import { fastestEd25519, libsodiumEd25519, nodeEd25519, type LibsodiumSigning } from '../src/core/ed25519.js'

const realSodium = () => createRequire(import.meta.url)('sodium-native') as LibsodiumSigning

/** Where sodium-native ships a prebuilt addon (glibc Linux, macOS, Windows on x64 and arm64). */
const addonExpected =
  ['x64', 'arm64'].includes(process.arch) &&
  (process.platform === 'darwin' || process.platform === 'win32' ||
    (process.platform === 'linux' && (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime !== undefined))

t.test('libsodium signs byte for byte as node:crypto does, and node:crypto verifies it', async (t) => {
  const libsodium = libsodiumEd25519()
  if (libsodium === null) {
    t.notOk(addonExpected, 'the addon loads where sodium-native has a prebuilt binary')
    return
  }
  t.equal(libsodium.name, 'libsodium')
  for (let key = 0; key < 40; key++) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519')
    const fast = libsodium.signerFor(privateKey)
    const reference = nodeEd25519.signerFor(privateKey)
    for (const length of [0, 1, 63, 64, 65, 300, 4096]) {
      const message = randomBytes(length)
      const signature = fast(message)
      if (!signature.equals(reference(message))) return t.fail(`key ${key}, ${length} bytes: signatures differ`)
      if (!verify(null, message, publicKey, signature)) return t.fail(`key ${key}, ${length} bytes: does not verify`)
      signature[0]! ^= 1
      if (verify(null, message, publicKey, signature)) return t.fail('a changed signature still verifies')
    }
  }
  t.pass('40 keys × 7 message lengths: the same signatures, each verified')
})

t.test('each signature is its own buffer: signing again does not change an earlier one', async (t) => {
  const libsodium = libsodiumEd25519() ?? nodeEd25519
  const { privateKey } = generateKeyPairSync('ed25519')
  const sign = libsodium.signerFor(privateKey)
  const first = sign(Buffer.from('first'))
  const copy = Buffer.from(first)
  sign(Buffer.from('second'))
  t.ok(first.equals(copy))
})

t.test('node:crypto is used when the addon does not load, or signs otherwise than node:crypto', async (t) => {
  t.equal(libsodiumEd25519(() => { throw new Error('No native build was found') }), null, 'not loadable')
  const wrong = (): LibsodiumSigning => {
    const sodium = realSodium()
    return {
      ...sodium,
      crypto_sign_detached: (signature, message, secretKey) => {
        sodium.crypto_sign_detached(signature, message, secretKey)
        signature[63]! ^= 1
      },
    }
  }
  if (addonExpected) t.equal(libsodiumEd25519(wrong), null, 'signatures that differ from node:crypto')
  const chosen = fastestEd25519()
  t.equal(chosen.name, addonExpected ? 'libsodium' : 'node:crypto')
  t.equal(fastestEd25519(), chosen, 'chosen once')
})

t.test('a key that is not Ed25519 is refused', async (t) => {
  const { privateKey } = generateKeyPairSync('x25519')
  const libsodium = libsodiumEd25519()
  if (libsodium !== null) t.throws(() => libsodium.signerFor(privateKey), /not an Ed25519 private key/)
  t.throws(() => nodeEd25519.signerFor(privateKey)(Buffer.from('x')))
})
