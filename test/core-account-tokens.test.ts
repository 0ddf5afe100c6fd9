/**
 * The single-use links of password reset and email verification (SPEC §5) on PGlite and
 * PostgreSQL: only the hash is stored; a link is good for its purpose and user only, until
 * it is spent or expires on the injected clock; spending is atomic, so a second claim of
 * the same link (a race that passed the first check) fails; at most MAX_LIVE_TOKENS live
 * links per user and purpose.
 */
import t from 'tap'
import { ACCOUNT_TOKEN_TTL_MS, AccountTokens, MAX_LIVE_TOKENS } from '../src/core/account-tokens.js'
import { ManualClock } from '../src/core/clock.js'
import { sha256 } from '../src/core/crypto.js'
import { databaseBackends } from './helpers/backends.js'
import { insertUser } from './helpers/users.js'

for (const backend of databaseBackends()) {
  t.test(backend.name, async (t) => {
    const db = await backend.open(t)
    const clock = new ManualClock()
    const tokens = new AccountTokens({ db, clock })
    const alice = await insertUser(db, 'alice@example.com')
    const bob = await insertUser(db, 'bob@example.com')

    t.test('stored as a hash; good for its purpose and user; spent once', async (t) => {
      const token = (await tokens.issue(alice, 'password_reset')) ?? ''
      t.match(token, /^[A-Za-z0-9_-]{43}$/)
      const stored = await db.query<Record<string, unknown>>('SELECT * FROM account_tokens')
      t.notMatch(JSON.stringify(stored.rows), token, 'the token itself is stored nowhere')
      t.ok(stored.rows.some((row) => row.token_hash === sha256(token)), 'its SHA-256 is')

      t.equal(await tokens.peek(token, 'password_reset'), alice, 'live')
      t.equal(await tokens.peek(token, 'email_verification'), null, 'not for another purpose')
      t.equal(await tokens.peek(`${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`, 'password_reset'), null, 'tampered')
      t.equal(await tokens.peek('short', 'password_reset'), null, 'malformed')

      t.equal(await db.transaction((tx) => tokens.claimer(token, 'password_reset', bob)(tx)), false, 'not for another user')
      const claim = tokens.claimer(token, 'password_reset', alice)
      t.equal(await db.transaction(claim), true, 'the first claim spends it')
      t.equal(await db.transaction(claim), false, 'a second claim (a racing request) fails')
      t.equal(await tokens.peek(token, 'password_reset'), null, 'spent')
    })

    t.test('spending one link spends the user’s other live links of the purpose', async (t) => {
      const first = (await tokens.issue(bob, 'email_verification')) ?? ''
      const second = (await tokens.issue(bob, 'email_verification')) ?? ''
      const reset = (await tokens.issue(bob, 'password_reset')) ?? ''
      t.equal(await db.transaction(tokens.claimer(second, 'email_verification', bob)), true)
      t.equal(await tokens.peek(first, 'email_verification'), null, 'the older link is spent too')
      t.equal(await tokens.peek(reset, 'password_reset'), bob, 'a link of another purpose is not')
    })

    t.test('expiry on the clock', async (t) => {
      const carol = await insertUser(db, 'carol@example.com')
      for (const purpose of ['password_reset', 'email_verification'] as const) {
        const token = (await tokens.issue(carol, purpose)) ?? ''
        clock.advance(ACCOUNT_TOKEN_TTL_MS[purpose] - 1)
        t.equal(await tokens.peek(token, purpose), carol, `${purpose}: live until its ttl`)
        clock.advance(1)
        t.equal(await tokens.peek(token, purpose), null, `${purpose}: expired at its ttl`)
        t.equal(await db.transaction(tokens.claimer(token, purpose, carol)), false, `${purpose}: cannot be spent`)
      }
    })

    t.test(`at most ${MAX_LIVE_TOKENS} live links per user and purpose`, async (t) => {
      const dave = await insertUser(db, 'dave@example.com')
      const issued = []
      for (let i = 0; i < MAX_LIVE_TOKENS; i++) issued.push(await tokens.issue(dave, 'password_reset'))
      t.ok(issued.every((token) => typeof token === 'string'), `${MAX_LIVE_TOKENS} issued`)
      t.equal(await tokens.issue(dave, 'password_reset'), null, 'then none')
      t.type(await tokens.issue(dave, 'email_verification'), 'string', 'another purpose counts apart')
      clock.advance(ACCOUNT_TOKEN_TTL_MS.password_reset)
      t.type(await tokens.issue(dave, 'password_reset'), 'string', 'once they expire, again')
      const rows = await db.query<{ count: number }>("SELECT count(*)::int AS count FROM account_tokens WHERE user_id = $1 AND purpose = 'password_reset'", [dave])
      t.equal(Number(rows.rows[0]?.count), 1, 'expired links are removed on the way')
    })

    t.test('deleting the user deletes their links', async (t) => {
      const erin = await insertUser(db, 'erin@example.com')
      await tokens.issue(erin, 'password_reset')
      await db.query('DELETE FROM users WHERE id = $1', [erin])
      const rows = await db.query('SELECT 1 FROM account_tokens WHERE user_id = $1', [erin])
      t.equal(rows.rows.length, 0)
    })
  })
}
