import t from 'tap'
import { PasswordHasher } from '../src/core/password-hasher.js'

const fast = { memory_kib: 8192, time_cost: 1, parallelism: 1 }

t.test('hash and verify', async (t) => {
  const hasher = new PasswordHasher(fast)
  const hash = await hasher.hash('correct horse battery staple')
  t.match(hash, /^\$argon2id\$v=19\$m=8192,p=1,t=1\$/, 'argon2id with the configured parameters')
  t.equal(await hasher.verify(hash, 'correct horse battery staple'), true)
  t.equal(await hasher.verify(hash, 'correct horse battery stapler'), false)
  t.not(await hasher.hash('correct horse battery staple'), hash, 'salted')
})

t.test('the configured parameters are used and needsRehash follows them', async (t) => {
  const old = new PasswordHasher({ memory_kib: 8192, time_cost: 1, parallelism: 1 })
  const current = new PasswordHasher({ memory_kib: 9216, time_cost: 2, parallelism: 2 })
  const hash = await current.hash('a password')
  t.match(hash, /^\$argon2id\$v=19\$m=9216,p=2,t=2\$/)
  t.equal(current.needsRehash(hash), false)
  t.equal(old.needsRehash(hash), true)
  t.equal(await old.verify(hash, 'a password'), true, 'verification reads the parameters from the hash')
})

t.test('malformed or foreign hashes verify false and need a rehash', async (t) => {
  const hasher = new PasswordHasher(fast)
  for (const hash of ['', 'garbage', '$argon2id$', '$argon2i$v=19$m=8192,t=1,p=1$YWJj$YWJj', '$2b$10$abcdefghijklmnopqrstuv']) {
    t.equal(await hasher.verify(hash, 'x'), false, JSON.stringify(hash))
    t.equal(hasher.needsRehash(hash), true, JSON.stringify(hash))
  }
  t.equal(await hasher.verify('$argon2id$v=19$m=8192,p=1,t=1$YWJj$YWJj', 'x'), false, 'a digest too short')
})

t.test('passwords over 128 code points are refused without hashing', async (t) => {
  const hasher = new PasswordHasher(fast, { maxConcurrency: 1, maxQueue: 0 })
  await t.rejects(hasher.hash('x'.repeat(129)), { code: 'GH_VALIDATION' })
  const hash = await hasher.hash('😀'.repeat(128))
  t.equal(await hasher.verify(hash, '😀'.repeat(128)), true)
  t.equal(await hasher.verify(hash, 'x'.repeat(10_000)), false)
})

t.test('passwords are compared in NFKC', async (t) => {
  const hasher = new PasswordHasher(fast)
  const hash = await hasher.hash('caf\u00e9 \ufb01sh') // é precomposed, 'ﬁ' ligature
  t.equal(await hasher.verify(hash, 'cafe\u0301 fish'), true)
})

t.test('verifyDummy always resolves false and takes about as long as verify', async (t) => {
  const hasher = new PasswordHasher(fast)
  const hash = await hasher.hash('the real one')
  await hasher.warmUp()
  t.equal(await hasher.verifyDummy('the real one'), false)
  // Medians, so that a GC pause or a busy neighbour does not decide; the point is that the
  // dummy does real argon2 work (a shortcut would be a hundred times faster).
  const median = async (fn: () => Promise<unknown>): Promise<number> => {
    const times: number[] = []
    for (let i = 0; i < 9; i++) {
      const start = performance.now()
      await fn()
      times.push(performance.now() - start)
    }
    return times.sort((a, b) => a - b)[4]!
  }
  const real = await median(() => hasher.verify(hash, 'wrong'))
  const dummy = await median(() => hasher.verifyDummy('wrong'))
  t.ok(dummy > real / 4 && dummy < real * 4, `dummy ${dummy.toFixed(1)} ms vs real ${real.toFixed(1)} ms`)
})

t.test('hashing runs with bounded concurrency; overflow is GH_OVERLOADED', async (t) => {
  const hasher = new PasswordHasher(fast, { maxConcurrency: 1, maxQueue: 2 })
  const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => hasher.hash(`password ${i}`)))
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 3, 'one running and two queued succeed')
  const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
  t.equal(refused.length, 3)
  for (const r of refused) t.match(r.reason, { code: 'GH_OVERLOADED', retryAfter: 1 })
  const pending = [hasher.hash('a'), hasher.hash('b'), hasher.hash('c')]
  await t.rejects(
    hasher.verify('$argon2id$x', 'd'),
    { code: 'GH_OVERLOADED' },
    'verify is refused too, rather than reported as a wrong password',
  )
  await Promise.all(pending)
})
