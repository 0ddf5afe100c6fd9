import { randomBytes } from 'node:crypto'
import zlib from 'node:zlib'
import t from 'tap'
import {
  generatePat,
  isWellFormedPat,
  maskPat,
  PAT_LENGTH,
  tableCrc32,
} from '../src/core/pat-format.js'

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

t.test('shape: pat_, 43 base62 characters of body, 6 of checksum', async (t) => {
  const token = generatePat()
  t.equal(PAT_LENGTH, 53)
  t.match(token, /^pat_[0-9A-Za-z]{49}$/)
  t.equal(token.length, PAT_LENGTH)
  t.ok(isWellFormedPat(token))
})

t.test('10 000 generated tokens are all well-formed and unique', async (t) => {
  const seen = new Set<string>()
  let malformed = 0
  for (let i = 0; i < 10_000; i++) {
    const token = generatePat()
    if (!isWellFormedPat(token)) malformed++
    seen.add(token)
  }
  t.equal(malformed, 0)
  t.equal(seen.size, 10_000)
  // Left-padding is needed often enough to be exercised: about 1 in 62 bodies starts with 0.
  t.ok([...seen].some((token) => token[4] === '0'), 'some bodies are padded')
})

t.test('every single-character change of a valid token is refused', async (t) => {
  const alphabet = `${BASE62}_-+/=. é\u0000`
  let accepted = 0
  let tried = 0
  for (let sample = 0; sample < 5; sample++) {
    const token = generatePat()
    for (let position = 0; position < token.length; position++) {
      for (const replacement of alphabet) {
        if (replacement === token[position]) continue
        const changed = token.slice(0, position) + replacement + token.slice(position + 1)
        tried++
        if (isWellFormedPat(changed)) accepted++
      }
    }
  }
  t.equal(accepted, 0, `none of ${tried} one-character changes accepted`)
})

t.test('deletions, insertions, transpositions and case changes are refused', async (t) => {
  const token = generatePat()
  const variants = new Set<string>()
  for (let i = 0; i < token.length; i++) {
    variants.add(token.slice(0, i) + token.slice(i + 1))
    variants.add(token.slice(0, i) + 'x' + token.slice(i))
    if (i + 1 < token.length) variants.add(token.slice(0, i) + token[i + 1] + token[i] + token.slice(i + 2))
  }
  variants.add(token.toUpperCase())
  variants.add(token.toLowerCase())
  variants.add(`PAT_${token.slice(4)}`)
  variants.delete(token)
  for (const variant of variants) t.notOk(isWellFormedPat(variant), variant)
})

t.test('random strings and other credentials are refused', async (t) => {
  const samples: string[] = [
    '',
    'pat_',
    'pat_' + '0'.repeat(49),
    'pat_' + 'A'.repeat(49),
    randomBytes(32).toString('base64url'),
    `pat_${randomBytes(32).toString('base64url')}`,
    `ghp_${generatePat().slice(4)}`,
    ` ${generatePat()}`,
    `${generatePat()}\n`,
    `${generatePat()}0`,
  ]
  for (let i = 0; i < 2_000; i++) {
    let body = ''
    for (const byte of randomBytes(49)) body += BASE62[byte % 62]
    samples.push(`pat_${body}`)
  }
  const accepted = samples.filter((sample) => isWellFormedPat(sample))
  // A random base62 tail passes a 32-bit checksum with probability about 2^-32 (or less).
  t.same(accepted, [])
  t.notOk(isWellFormedPat(undefined as unknown as string), 'not a string')
  t.notOk(isWellFormedPat(42 as unknown as string), 'not a string')
})

t.test('mask: pat_ + the next 4 characters + … + the last 4', async (t) => {
  const token = generatePat()
  const mask = maskPat(token)
  t.equal(mask, `pat_${token.slice(4, 8)}…${token.slice(-4)}`)
  t.equal([...mask].length, 13)
  t.equal(maskPat('pat_abcdEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnwxyz'), 'pat_abcd…wxyz')
  t.notMatch(mask, token.slice(8, -4), 'the middle is not shown')
})

t.test('the fallback CRC32 agrees with zlib', async (t) => {
  t.equal(tableCrc32(''), 0)
  t.equal(tableCrc32('123456789'), 0xcbf43926, 'the standard check value')
  t.equal(typeof zlib.crc32, 'function', 'this Node has zlib.crc32')
  for (let i = 0; i < 200; i++) {
    const text = randomBytes(i).toString('base64')
    t.equal(tableCrc32(text), zlib.crc32(text), `length ${text.length}`)
  }
})
