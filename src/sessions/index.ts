/** Session storage: the SessionStore interface (strings, sets and counters with TTLs) and the factory that opens its memory or Redis implementation. */
export type { CounterState, SessionStore } from './store.js'
export { openSessionStore, type OpenSessionStoreOptions } from './open.js'
