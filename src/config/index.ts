/**
 * The gateway's configuration: gateway.yml read, environment references expanded,
 * validated completely (every problem with its key path), defaults filled, and frozen.
 */

export { ConfigError } from './error.js'
export { checkConfigFiles } from './files.js'
export { loadConfig, parseConfig, resolveConfigPath, type ParseOptions } from './load.js'
export type { SchemaEntry } from './node.js'
export { describeSchema } from './schema.js'
export { parseDuration, parseSize } from './units.js'
export type { AuthMode, GatewayConfig, LogLevel, OidcProviderConfig, RateLimitKey, RateLimitPolicy, RouteConfig } from './types.js'
