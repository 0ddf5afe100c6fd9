/**
 * The kinds of value gateway.yml holds beyond plain scalars: durations, sizes, ports,
 * addresses, URLs, paths and names, each with the problem message that names what was
 * expected.
 */

import { BlockList, isIP } from 'node:net'
import { isAbsolute, resolve } from 'node:path'

import { INVALID, type Result } from './context.js'
import { int, matching, textLeaf, type Report } from './leaves.js'
import { readScalar, type Node } from './node.js'
import { formatDuration, formatSize, parseDuration, parseSize } from './units.js'
import { isSentinelUrl, parseSentinelUrl } from '../kv/redis-url.js'
import { secretHeaderRefusal } from '../core/user-secrets/header-name.js'

/** Route, policy and provider names: used in metric labels, JWT audiences and URL paths. */
const NAME = /^[a-z0-9][a-z0-9_.-]*$/i
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i
/** Methods a route may list. CONNECT and TRACE are never proxied. */
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

export function duration(bounds: { min?: number; max?: number } = {}): Node<number> {
  const { min = 1, max = Number.MAX_SAFE_INTEGER } = bounds
  return textLeaf('duration', 'a duration like 30s, 5m, 1h', (text, report) => {
    const ms = parseDuration(text)
    if (ms === null) return report.expected('write a whole number and one of ms, s, m, h, d')
    if (ms < min) return report.problem(`must be at least ${formatDuration(min)}, got ${text}`)
    if (ms > max) return report.problem(`must be at most ${formatDuration(max)}, got ${text}`)
    return ms
  })
}

export function size(bounds: { min?: number; max?: number } = {}): Node<number> {
  const { min = 1, max = Number.MAX_SAFE_INTEGER } = bounds
  return textLeaf('size', 'a size like 512kb, 1mb', (text, report) => {
    const bytes = parseSize(text)
    if (bytes === null) return report.expected('write a whole number and one of b, kb, mb, gb')
    if (bytes < min) return report.problem(`must be at least ${formatSize(min)}, got ${text}`)
    if (bytes > max) return report.problem(`must be at most ${formatSize(max)}, got ${text}`)
    return bytes
  })
}

/** 0 asks the system for a free port (useful in tests). */
export function port(): Node<number> {
  return int({ min: 0, max: 65535 }, 'port')
}

/** A listen address: an IP address or a host name. */
export function host(): Node<string> {
  return textLeaf('address', 'an IP address or host name like 0.0.0.0, ::, 127.0.0.1 or localhost', (text, report) =>
    isIP(text) !== 0 || HOSTNAME.test(text) ? text : report.expected())
}

/** An address range: `10.0.0.0/8`, `fd00::/8`; a single address is read as /32 or /128. Normalised to `address/prefix`. */
export function cidr(): Node<string> {
  return textLeaf('CIDR', 'a CIDR like 10.0.0.0/8 or fd00::/8', (text, report) => {
    const slash = text.lastIndexOf('/')
    const address = slash === -1 ? text : text.slice(0, slash)
    const family = address.includes('%') ? 0 : isIP(address)
    if (family === 0) return report.expected()
    const longest = family === 4 ? 32 : 128
    const written = slash === -1 ? String(longest) : text.slice(slash + 1)
    const prefix = /^\d{1,3}$/.test(written) ? Number(written) : NaN
    if (!(prefix <= longest)) return report.expected(`the prefix length must be 0 to ${longest}`)
    try {
      new BlockList().addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6')
    } catch {
      return report.expected()
    }
    return `${address}/${prefix}`
  })
}

/** An origin (scheme, host, port), normalised without a trailing slash: `public_url`, CORS origins. */
export function origin(): Node<string> {
  return textLeaf('origin', 'an origin like https://gate.example.com', (text, report) => {
    if (text === '*') return report.problem('"*" is not allowed: list exact origins like https://app.example.com')
    const url = httpUrl(text, report)
    if (url === INVALID) return url
    if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
      return report.problem('must be an origin (scheme, host and port): a path, query or fragment is not allowed')
    }
    return url.origin
  })
}

/** An upstream base URL: http or https, kept as written. */
export function upstreamUrl(): Node<string> {
  return textLeaf('URL', 'an http(s) URL like http://127.0.0.1:9001', (text, report) => {
    const url = httpUrl(text, report)
    if (url === INVALID) return url
    if (url.search !== '' || url.hash !== '') return report.problem('must not have a query or fragment')
    return text
  })
}

/** An OpenID Connect issuer, kept exactly as written (it is compared with `iss` verbatim). */
export function issuerUrl(): Node<string> {
  return textLeaf('URL', 'an https URL like https://accounts.google.com', (text, report) => {
    const url = httpUrl(text, report)
    if (url === INVALID) return url
    if (url.protocol !== 'https:' && !isLoopback(url.hostname)) return report.problem('must be https (plain http is allowed only for a loopback host)')
    if (url.search !== '' || url.hash !== '') return report.problem('must not have a query or fragment')
    return text
  })
}

/** `embedded:<directory>` (resolved to an absolute path) or a postgres:// URL. */
export function databaseUrl(): Node<string> {
  const expected = 'embedded:<directory> or a postgres:// URL'
  return textLeaf('database', expected, (text, report, context) => {
    if (text.startsWith('embedded:')) {
      const directory = text.slice('embedded:'.length)
      if (directory === '') return report.problem('embedded: needs a directory, like embedded:./data/db')
      return `embedded:${resolve(context.baseDir, directory)}`
    }
    const url = parseUrl(text)
    if (url !== null && (url.protocol === 'postgres:' || url.protocol === 'postgresql:') && url.hostname !== '') return text
    return report.problem(`expected ${expected}`)
  })
}

/** `memory`, a redis:// (rediss:// for TLS) URL, or a redis-sentinel:// URL. */
export function sessionStoreUrl(): Node<string> {
  const expected = 'memory, a redis:// URL or a redis-sentinel:// URL'
  return textLeaf('session store', expected, (text, report) => {
    if (text === 'memory') return text
    if (isSentinelUrl(text)) {
      const target = parseSentinelUrl(text)
      return typeof target === 'string' ? report.problem(`redis-sentinel:// URL ${target}`) : text
    }
    const url = parseUrl(text)
    if (url !== null && (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '') return text
    return report.problem(`expected ${expected}`)
  })
}

/**
 * `log`, or an smtp:// or smtps:// URL with a host. Problems never quote the value: it may
 * hold the mail server's password.
 */
export function smtpUrl(): Node<string> {
  return textLeaf('SMTP URL', 'log or an smtp:// or smtps:// URL', (text, report) => {
    if (text === 'log') return text
    const url = parseUrl(text)
    if (url !== null && (url.protocol === 'smtp:' || url.protocol === 'smtps:') && url.hostname !== '') return text
    return report.problem('expected log or an smtp:// or smtps:// URL like smtp://user:password@mail.example.com:587')
  })
}

/** A file path, resolved against the directory of the config file. */
export function filePath(): Node<string> {
  return textLeaf('path', 'a file path', (text, report, context) =>
    text === '' ? report.expected() : isAbsolute(text) ? text : resolve(context.baseDir, text))
}

/**
 * A route prefix: starts with `/`, already in the normalised form requests are matched in
 * (no `//`, `.` or `..` segments, query, fragment or backslash). A trailing slash is dropped
 * (`/app/` is `/app`), except for `/` itself.
 */
export function pathPrefix(): Node<string> {
  return textLeaf('path prefix', 'a path prefix like /app', (text, report) => {
    if (!text.startsWith('/')) return report.expected('it must start with /')
    if (/[?#\\\s\p{Cc}]/u.test(text)) return report.expected('it must not contain ?, #, \\, spaces or control characters')
    if (text === '/') return text
    const trimmed = text.endsWith('/') ? text.slice(0, -1) : text
    if (trimmed.split('/').slice(1).some((segment) => segment === '' || segment === '.' || segment === '..')) {
      return report.expected('write it normalised, without //, . or .. segments')
    }
    return trimmed
  })
}

/**
 * A route's host: an exact host name, or `*.` and a domain for any one label in front of it.
 * Lower-cased; a port is dropped (requests match whatever port they name).
 */
export function routeHost(): Node<string> {
  return textLeaf('host', 'a host name like app.example.com, or *.example.com for one label in front of it', (text, report) => {
    const lower = text.toLowerCase()
    const withoutPort = /:\d{1,5}$/.test(lower) ? lower.slice(0, lower.lastIndexOf(':')) : lower
    const wildcard = withoutPort.startsWith('*.')
    const name = wildcard ? withoutPort.slice(2) : withoutPort
    if (!HOSTNAME.test(name)) return report.expected()
    if (wildcard && !name.includes('.')) return report.expected('a wildcard needs a domain of at least two labels, like *.example.com')
    return withoutPort
  })
}

/** A cookie domain: a host name of at least two labels, lower-cased, without a leading dot. */
export function cookieDomain(): Node<string> {
  return textLeaf('domain', 'a domain of at least two labels like example.com', (text, report) => {
    const name = text.toLowerCase().replace(/^\./, '')
    if (!HOSTNAME.test(name) || !name.includes('.') || isIP(name) !== 0) return report.expected()
    return name
  })
}

export function method(): Node<string> {
  return textLeaf('HTTP method', `an HTTP method (${HTTP_METHODS.join(', ')})`, (text, report) => {
    const upper = text.toUpperCase()
    return (HTTP_METHODS as readonly string[]).includes(upper) ? upper : report.expected()
  })
}

/** A route, rate-limit policy or OIDC provider name. */
export function name(type: string): Node<string> {
  return matching(type, NAME, 'a name of letters, digits, _, . and - starting with a letter or digit')
}

/** A claim, or a dotted path to one inside nested objects: `groups`, `realm_access.roles`. */
export function claimPath(): Node<string> {
  return matching('claim path', /^[^.\s]+(?:\.[^.\s]+)*$/, 'a claim name or dotted path like realm_access.roles')
}

export function roleName(): Node<string> {
  return matching('role name', /^[^\s,]+$/, 'a role name without spaces or commas')
}

/** `app:read`, or `*` for all permissions. */
export function permission(): Node<string> {
  return matching('permission', /^\S+$/, 'a permission without spaces like app:read')
}

/** An OAuth scope token (RFC 6749 §3.3). */
export function scope(): Node<string> {
  return matching('scope', /^[\x21\x23-\x5B\x5D-\x7E]+$/, 'a scope like openid')
}

/** An email domain, lower-cased: `example.com`. */
export function emailDomain(): Node<string> {
  return textLeaf('domain', 'a domain like example.com', (text, report) =>
    HOSTNAME.test(text) && text.includes('.') ? text.toLowerCase() : report.expected(text.startsWith('@') ? 'write it without @' : undefined))
}

function parseUrl(text: string): URL | null {
  try {
    return new URL(text)
  } catch {
    return null
  }
}

function httpUrl(text: string, report: Report): Result<URL> {
  const url = parseUrl(text)
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return report.expected()
  if (url.username !== '' || url.password !== '') return report.problem('must not contain a user name or password')
  return url
}

function isLoopback(hostname: string): boolean {
  if (hostname === 'localhost' || hostname === '[::1]') return true
  return isIP(hostname) === 4 && hostname.startsWith('127.')
}

/** A request header name a CORS preflight may ask for; lower-cased. */
export function headerName(): Node<string> {
  return textLeaf('header name', 'a header name like content-type', (text, report) =>
    /^[!#$%&'*+.^_`|~0-9a-z-]+$/i.test(text) ? text.toLowerCase() : report.expected())
}

/**
 * The header a route's user secret is sent in: a header name the gateway owns for nothing else
 * (core/user-secrets/header-name.ts says which and why); kept as written, compared lower-case.
 */
export function secretHeaderName(): Node<string> {
  return textLeaf('header name', 'a header name like X-Db-Credentials', (text, report) => {
    const refusal = secretHeaderRefusal(text)
    return refusal === null ? text : report.problem(`${JSON.stringify(text)} cannot carry a user secret: ${refusal}`)
  })
}

/** The path (and optional query) a health check asks each server for. */
export function probePath(): Node<string> {
  return textLeaf('path', 'a path like /healthz', (text, report) => {
    if (!text.startsWith('/') || text.startsWith('//')) return report.expected('it must start with one /')
    if (/[#\\\s\p{Cc}]/u.test(text)) return report.expected('it must not contain #, \\, spaces or control characters')
    return text
  })
}

/** A duration, or 0 (written as a number or as text) to turn the feature off. */
export function durationOrOff(bounds: { max?: number } = {}): Node<number> {
  const inner = duration({ min: 1, ...bounds })
  return {
    type: 'duration or 0',
    parse(raw, path, context) {
      if (raw === 0) return 0
      const scalar = readScalar(raw, path, context)
      if (scalar === INVALID) return INVALID
      if (scalar.kind === 'text' && scalar.text === '0') return 0
      return inner.parse(raw, path, context)
    },
  }
}
