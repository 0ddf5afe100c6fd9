/**
 * The Redis URLs `storage.sessions` may name: `redis://` / `rediss://` (one server, read by
 * ioredis itself) and `redis-sentinel://[user:password@]h1:26379,h2:26379/<master>[/<db>]`
 * (the master that Sentinel names, followed across failovers). Pure: config validation uses
 * it too.
 */
import { isIP } from 'node:net'

export const DEFAULT_SENTINEL_PORT = 26379
const SCHEME = 'redis-sentinel://'

export interface SentinelTarget {
  sentinels: Array<{ host: string; port: number }>
  /** The master name the sentinels monitor (`sentinel monitor <name> …`). */
  name: string
  db: number
  /** Credentials of the Redis servers (master and replicas); the sentinels are asked without. */
  username?: string
  password?: string
}

export function isSentinelUrl(url: string): boolean {
  return url.toLowerCase().startsWith(SCHEME)
}

/** Reads a redis-sentinel:// URL; a string is the problem with it, fit for a config message. */
export function parseSentinelUrl(url: string): SentinelTarget | string {
  try {
    return parse(url)
  } catch {
    // decodeURIComponent on a malformed %-escape
    return 'has a malformed %-escape'
  }
}

function parse(url: string): SentinelTarget | string {
  if (!isSentinelUrl(url)) return `expected ${SCHEME}host:port,…/<master name>/<db>`
  const rest = url.slice(SCHEME.length)
  if (/[?#]/.test(rest)) return 'takes no query or fragment'
  const slash = rest.indexOf('/')
  const authority = slash === -1 ? rest : rest.slice(0, slash)
  const path = slash === -1 ? '' : rest.slice(slash + 1)
  const at = authority.lastIndexOf('@')
  const hostList = at === -1 ? authority : authority.slice(at + 1)

  const sentinels: SentinelTarget['sentinels'] = []
  for (const entry of hostList.split(',')) {
    const host = parseHost(entry)
    if (typeof host === 'string') return host
    sentinels.push(host)
  }

  const [name = '', db = '0', ...more] = path.split('/')
  if (name === '') return 'needs the master name after the hosts, like redis-sentinel://h1:26379,h2:26379/mymaster/0'
  if (more.length > 0 || !/^\d{1,9}$/.test(db)) return 'the database after the master name must be a number, like /mymaster/0'

  const target: SentinelTarget = { sentinels, name: decodeURIComponent(name), db: Number(db) }
  if (at !== -1) {
    const userinfo = authority.slice(0, at)
    const colon = userinfo.indexOf(':')
    const username = decodeURIComponent(colon === -1 ? userinfo : userinfo.slice(0, colon))
    if (username !== '') target.username = username
    if (colon !== -1) target.password = decodeURIComponent(userinfo.slice(colon + 1))
  }
  return target
}

function parseHost(entry: string): { host: string; port: number } | string {
  // [v6]:port, [v6], name:port, name
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(entry)
  if (match === null) return `"${entry}" is not a host or host:port`
  const host = match[1] ?? match[2] ?? ''
  if (match[1] !== undefined && isIP(host) !== 6) return `"${entry}" is not an IPv6 address in brackets`
  const port = match[3] === undefined ? DEFAULT_SENTINEL_PORT : Number(match[3])
  if (port < 1 || port > 65_535) return `"${entry}" has a port out of range`
  return { host, port }
}

/** Where a Redis URL points, without its credentials, for messages. */
export function describeRedisUrl(url: string): string {
  if (isSentinelUrl(url)) {
    const target = parseSentinelUrl(url)
    if (typeof target === 'string') return 'the configured Sentinel URL'
    return `master "${target.name}" of the sentinels ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`
  }
  try {
    const { hostname, port } = new URL(url)
    return `${hostname}:${port || '6379'}`
  } catch {
    return 'the configured URL'
  }
}
