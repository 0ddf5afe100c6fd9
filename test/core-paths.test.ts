import t from 'tap'
import { normalizeTarget, type PathRefusal } from '../src/core/paths.js'
import { GatehouseError } from '../src/errors.js'

function refusalOf(target: string): PathRefusal | null {
  try {
    normalizeTarget(target)
    return null
  } catch (err) {
    if (!(err instanceof GatehouseError)) throw err
    if (err.code !== 'GH_BAD_PATH' || err.statusCode !== 400) throw err
    return err.details?.reason as PathRefusal
  }
}

t.test('accepted targets: [target, path, query]', async (t) => {
  const cases: Array<[string, string, string]> = [
    // clean
    ['/', '/', ''],
    ['/app', '/app', ''],
    ['/app/', '/app/', ''],
    ['/app/x/y.json', '/app/x/y.json', ''],
    ['/app?x=1', '/app', '?x=1'],
    ['/?', '/', '?'],
    ['/a.b/c..d/...', '/a.b/c..d/...', ''],
    ['/.well-known/jwks.json', '/.well-known/jwks.json', ''],
    ['/a/.hidden', '/a/.hidden', ''],
    ['/a/..b/c', '/a/..b/c', ''],
    ['/a/b.', '/a/b.', ''],
    ['/a;b=c/d', '/a;b=c/d', ''],
    // dot segments
    ['/a/./b', '/a/b', ''],
    ['/a/../b', '/b', ''],
    ['/a/b/../../c', '/c', ''],
    ['/a/b/..', '/a/', ''],
    ['/a/b/../', '/a/', ''],
    ['/a/.', '/a/', ''],
    ['/a/./', '/a/', ''],
    ['/a/..', '/', ''],
    ['/.', '/', ''],
    ['/./', '/', ''],
    ['/./a', '/a', ''],
    ['/a/b/./../c/.', '/a/c/', ''],
    ['/public//../admin/x', '/admin/x', ''],
    ['/public/../admin?x=1', '/admin', '?x=1'],
    // encoded dots, every spelling
    ['/app/%2e%2e/admin', '/admin', ''],
    ['/app/%2E%2E/admin', '/admin', ''],
    ['/app/.%2e/admin', '/admin', ''],
    ['/app/%2e./admin', '/admin', ''],
    ['/app/.%2E/admin', '/admin', ''],
    ['/app/%2E./admin', '/admin', ''],
    ['/app/%2e/admin', '/app/admin', ''],
    ['/app/%2e', '/app/', ''],
    ['/app/x/%2e%2e', '/app/', ''],
    ['/a/%2e%2e%2e', '/a/...', ''],
    // double encoding stays encoded: a literal "%2e" for the upstream, never a dot or a slash
    // (only an escape's own two digits are upper-cased: in `%252e` the `2e` is plain text)
    ['/app/%252e%252e/admin', '/app/%252e%252e/admin', ''],
    ['/app/%252e%252E/admin', '/app/%252e%252E/admin', ''],
    ['/app/%252E%252E/admin', '/app/%252E%252E/admin', ''],
    ['/a/%252F/b', '/a/%252F/b', ''],
    ['/a/%252f/b', '/a/%252f/b', ''],
    ['/a/%255c/b', '/a/%255c/b', ''],
    ['/a/%255C/b', '/a/%255C/b', ''],
    ['/a/%2500', '/a/%2500', ''],
    // overlong / invalid UTF-8 escapes are not unreserved: kept (hex upper-cased), never a dot
    ['/app/%c0%ae%c0%ae/admin', '/app/%C0%AE%C0%AE/admin', ''],
    ['/app/%C0%AE/admin', '/app/%C0%AE/admin', ''],
    ['/app/%e0%80%ae%e0%80%ae/admin', '/app/%E0%80%AE%E0%80%AE/admin', ''],
    ['/app/%c0%af/admin', '/app/%C0%AF/admin', ''],
    ['/app/%ff', '/app/%FF', ''],
    // percent-encoded unicode stays encoded
    ['/caf%c3%a9', '/caf%C3%A9', ''],
    ['/caf%C3%A9/%F0%9F%94%91', '/caf%C3%A9/%F0%9F%94%91', ''],
    // unreserved escapes decoded, case-insensitively; the rest kept with upper-case hex
    ['/%61pp/x', '/app/x', ''],
    ['/%41%5a%30%39%2d%5f%7e', '/AZ09-_~', ''],
    ['/%7E%5F', '/~_', ''],
    ['/a%20b', '/a%20b', ''],
    ['/a%7b%7D', '/a%7B%7D', ''],
    ['/a%3fb', '/a%3Fb', ''],
    ['/a%23b', '/a%23b', ''],
    ['/a%25', '/a%25', ''],
    ['/a%3b..', '/a%3B..', ''],
    ['/a%0a', '/a%0A', ''],
    // repeated slashes
    ['//admin', '/admin', ''],
    ['/app//x', '/app/x', ''],
    ['///', '/', ''],
    ['//', '/', ''],
    ['/app///x//', '/app/x/', ''],
    ['//example.com/x', '/example.com/x', ''],
    ['/a//..', '/', ''],
    ['/a/b//../c', '/a/c', ''],
    // the query is never rewritten nor refused for its path-like content
    ['/a?next=/../admin', '/a', '?next=/../admin'],
    ['/a?x=%2F%5C%2e%2e', '/a', '?x=%2F%5C%2e%2e'],
    ['/a?x=%zz&y=%', '/a', '?x=%zz&y=%'],
    ['/a?x=\\y', '/a', '?x=\\y'],
    ['/a/../b?c/../d?e', '/b', '?c/../d?e'],
    ['/a?', '/a', '?'],
    ['/a??', '/a', '??'],
    ['/%61?%61', '/a', '?%61'],
  ]
  for (const [target, path, query] of cases) {
    t.same(normalizeTarget(target), { path, query }, target)
  }
})

t.test('refused targets: [target, reason]', async (t) => {
  const cases: Array<[string, PathRefusal]> = [
    // not origin-form
    ['', 'not_origin_form'],
    ['*', 'not_origin_form'],
    ['http://example.com/admin', 'not_origin_form'],
    ['https://example.com/', 'not_origin_form'],
    ['app/x', 'not_origin_form'],
    ['?x=1', 'not_origin_form'],
    ['%2Fadmin', 'not_origin_form'],
    ['\\admin', 'not_origin_form'],
    // fragments, in the path or the query
    ['/a#b', 'fragment'],
    ['/#/../admin', 'fragment'],
    ['/a?x#y', 'fragment'],
    // above the root
    ['/..', 'above_root'],
    ['/../x', 'above_root'],
    ['/../', 'above_root'],
    ['/a/../..', 'above_root'],
    ['/a/../../b', 'above_root'],
    ['/%2e%2e/x', 'above_root'],
    ['/%2E%2E', 'above_root'],
    ['/.%2e/x', 'above_root'],
    ['/%2e./x', 'above_root'],
    ['//..//a', 'above_root'],
    ['/./../a', 'above_root'],
    ['/a/b/../../../c', 'above_root'],
    ['/%61/%2e%2e/%2e%2e', 'above_root'],
    // encoded slashes and backslashes, both cases
    ['/a/%2F/b', 'encoded_slash'],
    ['/a/%2f/b', 'encoded_slash'],
    ['/a%2Fb', 'encoded_slash'],
    ['/%2Fnot', 'encoded_slash'],
    ['/app/..%2F..%2Fadmin', 'encoded_slash'],
    ['/a/%5C/b', 'encoded_backslash'],
    ['/a/%5c/b', 'encoded_backslash'],
    ['/app/..%5cadmin', 'encoded_backslash'],
    // raw backslash
    ['/a\\b', 'backslash'],
    ['/app/..\\admin', 'backslash'],
    ['/\\\\evil.example', 'backslash'],
    // NUL, raw and encoded, path and query
    ['/a\u0000b', 'nul'],
    ['/a%00b', 'nul'],
    ['/a/%00', 'nul'],
    ['/a?x=\u0000', 'nul'],
    // malformed escapes
    ['/a%', 'malformed_escape'],
    ['/a%4', 'malformed_escape'],
    ['/a%4/', 'malformed_escape'],
    ['/a%zz', 'malformed_escape'],
    ['/a%g0', 'malformed_escape'],
    ['/a%0g', 'malformed_escape'],
    ['/a/%%32%65', 'malformed_escape'],
    ['/a%-1', 'malformed_escape'],
    // raw control, space, DEL and non-ASCII characters (node's parser refuses them too)
    ['/a\tb', 'invalid_character'],
    ['/a\nb', 'invalid_character'],
    ['/a\rb', 'invalid_character'],
    ['/a\u001bb', 'invalid_character'],
    ['/a b', 'invalid_character'],
    ['/a\u007fb', 'invalid_character'],
    ['/café', 'invalid_character'],
    ['/caf\u00c3\u00a9', 'invalid_character'],
    ['/\u00c0\u00ae\u00c0\u00ae/admin', 'invalid_character'],
    ['/\u2025/admin', 'invalid_character'],
    ['/\uff0e\uff0e/admin', 'invalid_character'],
    ['/a?x=\r\nSet-Cookie:1', 'invalid_character'],
    ['/a?q=é', 'invalid_character'],
    // dot segments carrying a parameter (servlet containers read `..;x` as `..`)
    ['/public/..;/admin', 'dot_segment_parameter'],
    ['/public/..;x=1/admin', 'dot_segment_parameter'],
    ['/public/.;/admin', 'dot_segment_parameter'],
    ['/public/%2e%2e;/admin', 'dot_segment_parameter'],
    ['/public/..%3b/admin', 'dot_segment_parameter'],
    ['/public/..%3B/admin', 'dot_segment_parameter'],
  ]
  for (const [target, reason] of cases) {
    t.equal(refusalOf(target), reason, JSON.stringify(target))
  }
})

t.test('the refusal is a GH_BAD_PATH GatehouseError with a specific message', async (t) => {
  t.throws(() => normalizeTarget('/a/%2F'), { code: 'GH_BAD_PATH', statusCode: 400, details: { reason: 'encoded_slash' } })
  const messages = new Set(['/..', '/a%2f', '/a%5c', '/a\\', '/a%00', '/a%zz', '*', '/a#'].map((target) => {
    try {
      normalizeTarget(target)
    } catch (err) {
      return (err as Error).message
    }
    return ''
  }))
  t.equal(messages.size, 8, 'each refusal says what was wrong')
})

t.test('normalisation is idempotent', async (t) => {
  const targets = [
    '/public//../admin/x', '/app/%2e%2e/admin', '/%61pp/x', '/a/b/..', '/app/%252e%252e/', '/a%20b/%c0%ae',
    '/x/./y//z/../', '/caf%c3%a9', '/a/%2e',
  ]
  for (const target of targets) {
    const once = normalizeTarget(target)
    t.same(normalizeTarget(once.path + once.query), once, target)
  }
})

t.test('no accepted path carries a dot segment, a double slash or an encoded slash', async (t) => {
  const pieces = ['', '/', '.', '..', '%2e', '%2E', '%2e%2e', '.%2e', 'a', '%61', '//', '%252e', '%c0%ae', ';']
  let accepted = 0
  for (const a of pieces) {
    for (const b of pieces) {
      for (const c of pieces) {
        const target = `/${a}/${b}/${c}`
        let path: string
        try {
          path = normalizeTarget(target).path
        } catch {
          continue
        }
        accepted++
        const segments = path.split('/').slice(1, -1)
        if (path.includes('//') || segments.includes('.') || segments.includes('..') || /%2f|%2e/i.test(path.replace(/%25/g, ''))) {
          t.fail(`${target} -> ${path}`)
        }
      }
    }
  }
  t.ok(accepted > 1000, `checked ${accepted} accepted targets`)
})
