import t from 'tap'
import { checkPassword, passwordLength } from '../src/core/password-policy.js'

const policy = { min_length: 15, require_classes: false }
const strong = 'correct horse battery staple'
/** Sixteen astral characters in no order: a filler no pattern rule matches. */
const EMOJI = [...'😀🐍🎉🚀🌍🍕🎸🐢🌈🔥💡🎯🦊🍀🐳🌵']
const emoji = (n: number) => Array.from({ length: n }, (_, i) => EMOJI[i % EMOJI.length]).join('')

t.test('a long, uncommon password is fine', async (t) => {
  t.same(checkPassword(strong, policy), [])
  t.same(checkPassword(strong, { min_length: 8, require_classes: false }, { email: 'alice@example.com' }), [])
})

t.test('length is counted in code points', async (t) => {
  t.equal(passwordLength('abc'), 3)
  t.equal(passwordLength('😀😀😀'), 3, 'astral characters count once')
  // 14 emoji are 28 UTF-16 units but 14 characters: too short for 15.
  t.match(checkPassword(emoji(14), policy), [/at least 15/])
  t.same(checkPassword(emoji(15) + 'x', policy), [])
  t.match(checkPassword('short', policy), [/at least 15/])
  t.match(checkPassword('', policy), [/at least 15/])
})

t.test('over 128 code points is refused, alone', async (t) => {
  t.same(checkPassword(strong.repeat(5).slice(0, 128), policy), [])
  t.match(checkPassword('xq'.repeat(64) + 'z', policy), [/at most 128/])
  t.match(checkPassword('😀'.repeat(129), policy), [/at most 128/])
  t.same(checkPassword(emoji(128), policy), [], '128 emoji are 256 units but allowed')
  t.match(checkPassword('a'.repeat(1_000_000), policy), [/at most 128/])
})

t.test('character classes only when required', async (t) => {
  const withClasses = { min_length: 8, require_classes: true }
  t.same(checkPassword('lowercase only words', policy), [])
  t.match(checkPassword('lowercase only words', withClasses), [/upper-case letter.*digit/])
  t.match(checkPassword('UPPERCASE ONLY 12', withClasses), [/lower-case letter/])
  t.same(checkPassword('Mixed Case words 7', withClasses), [])
  t.same(checkPassword('Ünïcödé wörds ٣ are fine', withClasses), [], 'Unicode letters and digits count')
})

t.test('common passwords are refused, case-insensitively', async (t) => {
  const loose = { min_length: 1, require_classes: false }
  t.match(checkPassword('password', loose), [/too common/])
  t.match(checkPassword('PassWord', loose), [/too common/])
  t.match(checkPassword('qwerty123456789', policy), [/too common/])
  t.match(checkPassword('1qaz2wsx3edc4rfv', policy), [/too common/])
  t.same(checkPassword('tangerine kettle drum', policy), [])
})

t.test('one repeated character, plain sequences and short repeated units are refused (NIST SP 800-63B)', async (t) => {
  const refused = [
    'aaaaaaaaaaaaaaaaaaaa', 'AAAAAAAAAAAAAAAAAAAa', '11111111111111111111', '😀'.repeat(20),
    '12345678901234567890', '98765432109876543210', 'abcdefghijklmnopqrstu', 'ZYXWVUTSRQPONMLKJIHGF',
    'xyzabcdefghijklmnopq', 'abcabcabcabcabcabcab', 'ababababababababab', '1234123412341234', 'q1w2q1w2q1w2q1w2',
  ]
  for (const password of refused) t.match(checkPassword(password, policy), [/repeated character, a plain sequence/], password)
  const accepted = ['abcdefghijklmnoz', 'aaaaaaaaaaaaaaab', 'correcthorsecorrecthorse', '13579135791357913', strong]
  for (const password of accepted) t.same(checkPassword(password, policy), [], password)
})

t.test('the email and its local part are refused', async (t) => {
  const loose = { min_length: 1, require_classes: false }
  t.match(checkPassword('alice.wonderland@example.com', loose, { email: 'alice.wonderland@example.com' }), [/email/])
  t.match(checkPassword('Alice.Wonderland', loose, { email: 'alice.wonderland@example.com' }), [/email/])
  t.same(checkPassword('alice.wonderland!', loose, { email: 'alice.wonderland@example.com' }), [])
  t.same(checkPassword('x', loose, { email: 'no-at-sign' }), [], 'a context without @ does not misfire')
})

t.test('several problems are reported together', async (t) => {
  const problems = checkPassword('password', { min_length: 15, require_classes: true })
  t.equal(problems.length, 3)
})
