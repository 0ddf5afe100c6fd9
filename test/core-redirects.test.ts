import t from 'tap'
import { safeNext } from '../src/core/redirects.js'

t.test('an absolute next is kept only as an https URL with a DNS host under the cookie domain', async (t) => {
  const kept = (candidate: string) => safeNext(candidate, 'example.com')
  t.equal(kept('https://app.example.com/x?q=1'), 'https://app.example.com/x?q=1')
  t.equal(kept('https://example.com/'), 'https://example.com/')
  t.equal(kept('https://app.example.com:8443/x'), 'https://app.example.com:8443/x')
  for (const refused of [
    'http://app.example.com/x',
    'https://user:pw@app.example.com/x',
    'https://evil.com/x',
    'https://example.com.evil.com/x',
    'https://x;sandbox;script-src-elem.example.com/',
    'https://a,b.example.com/',
    'https://a%3Bb.example.com/',
    'https://a_b.example.com/',
  ]) {
    t.equal(kept(refused), '/', refused)
  }
  t.equal(safeNext('https://app.example.com/x'), '/', 'no cookie domain: no absolute next')
})
