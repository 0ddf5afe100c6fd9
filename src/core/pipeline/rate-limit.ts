/**
 * The rate-limit stage (SPEC §6): one counter per route and client (per user for a `key: user`
 * policy when the request is authenticated, else per client address), counted wherever the
 * injected counter counts (the session store, or this process while it is down).
 */
import type { RouteConfig } from '../../config/types.js'
import type { Identity } from '../identity.js'

/** The counter the limits count in: `increment` returns the count and the time left in its window. */
export interface RateLimitCounter {
  increment(key: string, windowMs: number): Promise<{ count: number; resetInMs: number }>
}

export interface RateLimitVerdict {
  allowed: boolean
  limit: number
  remaining: number
  /** Seconds until the window ends. */
  resetSeconds: number
}

export interface RateLimiter {
  /**
   * Counts one request of the client (or of the identity's user) on `route`; null when the route
   * has no limit. `clientKey` is asked for only when the limit counts per address.
   */
  take(route: RouteConfig, identity: Identity | null, clientKey: () => string): Promise<RateLimitVerdict | null>
}

/** Counts two routes naming one policy separately: each gets the policy's allowance. */
export function counterRateLimiter(counter: RateLimitCounter): RateLimiter {
  return {
    async take(route, identity, clientKey) {
      const policy = route.rate_limit
      if (policy === null) return null
      const user = policy.key === 'user' ? identity?.user.id : undefined
      const subject = user === undefined ? `ip:${clientKey()}` : `user:${user}`
      const state = await counter.increment(`rate:${route.name}:${subject}`, policy.window)
      return {
        allowed: state.count <= policy.max,
        limit: policy.max,
        remaining: Math.max(0, policy.max - state.count),
        resetSeconds: Math.ceil(Math.max(0, state.resetInMs) / 1000),
      }
    },
  }
}

/** The `x-ratelimit-*` headers every answer on a limited route carries. */
export function rateLimitHeaders(verdict: RateLimitVerdict): Record<string, string> {
  return {
    'x-ratelimit-limit': String(verdict.limit),
    'x-ratelimit-remaining': String(verdict.allowed ? verdict.remaining : 0),
    'x-ratelimit-reset': String(verdict.resetSeconds),
  }
}
