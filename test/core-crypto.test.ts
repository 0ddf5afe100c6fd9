import t from 'tap'
import { constantTimeEqual, randomToken, sha256 } from '../src/core/crypto.js'

t.test('randomToken', async (t) => {
  const token = randomToken()
  t.match(token, /^[A-Za-z0-9_-]{43}$/, '32 bytes are 43 base64url characters')
  t.match(randomToken(16), /^[A-Za-z0-9_-]{22}$/)
  t.not(randomToken(), token)
})

t.test('sha256', async (t) => {
  // echo -n abc | sha256sum → ba7816bf…ad, in base64url without padding
  t.equal(sha256('abc'), 'ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0')
  t.match(sha256('é'), /^[A-Za-z0-9_-]{43}$/)
})

t.test('constantTimeEqual', async (t) => {
  t.ok(constantTimeEqual('secret', 'secret'))
  t.notOk(constantTimeEqual('secret', 'secreT'))
  t.notOk(constantTimeEqual('secret', 'secret-longer'))
  t.ok(constantTimeEqual('', ''))
})
