/** WebSockets in the core: frame boundaries and sizes, and the open sockets each credential holds. */
export * from './checker.js'
export * from './frames.js'
export * from './open-sockets.js'
