/**
 * The operator commands (SPEC §8) as the control socket runs them, on a real runtime: requests
 * are checked before anything runs; a token permission that no role grants and no route needs
 * is refused (even for an owner holding `*`); reset-password ends the sessions and clears the
 * lockout; the refusals change nothing.
 */
import t from 'tap'
import { runControlRequest, servicesOf } from '../src/control/commands.js'
import { startTestGateway } from './helpers/gateway.js'

const PASSWORD = 'correct horse battery staple'

t.test('the operator commands', async (t) => {
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      raw.routes = [{ name: 'reports', match: '/reports', upstream: 'http://127.0.0.1:9', auth: 'required', permissions: ['reports:read'] }]
      raw.auth.lockout = { max_failures: 2, window: '15m' }
      // check-config refuses a route permission no role lists; the viewer still lacks it.
      raw.roles = { ...raw.roles, reporter: ['reports:read'] }
    },
  })
  const services = servicesOf(gw.runtime)
  const send = (command: string, args: Record<string, unknown>) => runControlRequest(services, { v: 1, command, args })
  const refusal = (command: string, args: Record<string, unknown>) => send(command, args).then(
    () => ({ code: 'none' }),
    (err: unknown) => err as { code?: string; name: string; message: string; details?: Record<string, unknown> },
  )

  await send('user.create', { email: 'admin@example.com', roles: ['admin'], password: PASSWORD, name: null })
  await send('user.create', { email: 'viewer@example.com', roles: null, password: PASSWORD, name: 'Vi' })

  await t.test('malformed requests run nothing', async (t) => {
    for (const [what, request] of [
      ['not an object', 'user.list'],
      ['an unknown command', { command: 'user.promote', args: {} }],
      ['a prototype key as command', { command: 'constructor', args: {} }],
      ['args not an object', { command: 'user.list', args: [] }],
      ['a number for an email', { command: 'user.create', args: { email: 5, password: PASSWORD } }],
      ['roles not a list of strings', { command: 'user.create', args: { email: 'r@example.com', roles: [1], password: PASSWORD } }],
      ['a string for a limit', { command: 'audit.list', args: { limit: '10' } }],
      ['a fraction of a day', { command: 'token.create', args: { email: 'admin@example.com', name: 'x', expires_in_days: 1.5 } }],
    ] as const) {
      const err = await runControlRequest(services, request).then(() => null, (e: unknown) => e as { code?: string })
      t.equal(err?.code, 'GH_VALIDATION', what)
    }
    t.equal((await gw.runtime.users.list({ limit: 100 })).items.length, 2, 'no user created')
    t.same(await gw.runtime.pats.list((await gw.runtime.users.getByEmail('admin@example.com'))!.id), [], 'no token created')
  })

  await t.test('token permissions: known names only, and only those the owner holds', async (t) => {
    const token = (email: string, permissions: string[]) => send('token.create', { email, name: 't', expires_in_days: null, permissions })
    for (const permissions of [['users:manage'], ['*'], ['app:read'], ['reports:read']]) {
      t.match(await token('admin@example.com', permissions), { token: /^pat_/ }, `an admin: ${permissions.join(',')} (a role's, a route's or the gateway's own)`)
    }
    const typo = await refusal('token.create', { email: 'admin@example.com', name: 't', permissions: ['app:raed', 'app:read'] })
    t.match(typo, { code: 'GH_VALIDATION', details: { field: 'permissions', unknown: ['app:raed'] } }, 'a name nothing grants or needs, even for *')
    const lacking = await refusal('token.create', { email: 'viewer@example.com', name: 't', permissions: ['reports:read'] })
    t.match(lacking, { code: 'GH_VALIDATION', details: { missing: ['reports:read'] } }, 'a known permission the owner lacks')
    t.equal((await gw.runtime.pats.list((await gw.runtime.users.getByEmail('viewer@example.com'))!.id)).length, 0, 'no token for the viewer')
    const nobody = await refusal('token.create', { email: 'ghost@example.com', name: 't', permissions: null })
    t.match(nobody, { name: 'CommandFailure', message: /no user with email ghost@example\.com/ })
  })

  await t.test('reset-password: a new password, every session ended, the lockout cleared', async (t) => {
    const viewer = (await gw.runtime.users.getByEmail('viewer@example.com'))!
    await gw.runtime.sessions.create(viewer.id, { amr: 'pwd' })
    await gw.runtime.sessions.create(viewer.id, { amr: 'pwd' })
    for (let i = 0; i < 2; i++) await gw.runtime.users.authenticate({ email: viewer.email, password: 'wrong wrong wrong wrong' }).catch(() => {})
    await t.rejects(gw.runtime.users.authenticate({ email: viewer.email, password: PASSWORD }), { code: 'GH_RATE_LIMITED' }, 'locked out')

    const weak = await refusal('user.reset-password', { email: viewer.email, password: 'short' })
    t.equal(weak.code, 'GH_VALIDATION', 'the password policy applies')
    t.equal((await gw.runtime.sessions.list(viewer.id)).length, 2, 'a refused reset ends nothing')

    t.same(await send('user.reset-password', { email: viewer.email, password: 'a brand new passphrase' }), { email: viewer.email, sessions_ended: 2 })
    t.equal((await gw.runtime.sessions.list(viewer.id)).length, 0, 'no session left')
    t.match(await gw.runtime.users.authenticate({ email: viewer.email, password: 'a brand new passphrase' }), { id: viewer.id }, 'unlocked, with the new password')
    await t.rejects(gw.runtime.users.authenticate({ email: viewer.email, password: PASSWORD }), { code: 'GH_INVALID_CREDENTIALS' }, 'not the old one')
    const [event] = await gw.runtime.audit.list({ userId: viewer.id, type: 'password.reset', limit: 1 })
    t.ok(event, 'audited as password.reset')
  })

  await t.test('token revoke and audit list refusals', async (t) => {
    t.match(await refusal('token.revoke', { id: '00000000-0000-4000-8000-000000000000' }), { name: 'CommandFailure', message: /no token/ })
    t.match(await refusal('token.revoke', { id: 'not-a-uuid' }), { name: 'CommandFailure' })
    t.match(await refusal('audit.list', { limit: 0 }), { code: 'GH_VALIDATION' })
    t.match(await refusal('audit.list', { limit: 10, email: 'not an email' }), { code: 'GH_VALIDATION' })
    t.match(await refusal('audit.list', { limit: 10, type: 'DROP TABLE' }), { code: 'GH_VALIDATION' })
    const all = (await send('audit.list', { limit: 100, type: 'user' })) as { type: string }[]
    t.same(all.map((e) => e.type), ['user.registered', 'user.registered'], 'the user family')
    t.equal(((await send('audit.list', { limit: 1, type: 'user' })) as unknown[]).length, 1, 'at most the limit')
  })
})
