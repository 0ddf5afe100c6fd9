/**
 * What a reload changes, for its debug log line: the top-level sections whose settings
 * differ, and the routes added, removed or changed, by name. Key names only, never values
 * (a section may hold a client secret).
 */
import type { GatewayConfig } from './types.js'

export function configChanges(running: GatewayConfig, next: GatewayConfig): string[] {
  const changed: string[] = []
  const sections = new Set([...Object.keys(running), ...Object.keys(next)])
  for (const section of sections) {
    if (section === 'source' || section === 'routes') continue
    const before = JSON.stringify((running as unknown as Record<string, unknown>)[section])
    const after = JSON.stringify((next as unknown as Record<string, unknown>)[section])
    if (before !== after) changed.push(section)
  }
  const routes = (config: GatewayConfig) => new Map(config.routes.map((route) => [route.name, JSON.stringify(route)]))
  const old = routes(running)
  const now = routes(next)
  for (const [name, route] of now) {
    if (!old.has(name)) changed.push(`routes.${name} (added)`)
    else if (old.get(name) !== route) changed.push(`routes.${name} (changed)`)
  }
  for (const name of old.keys()) if (!now.has(name)) changed.push(`routes.${name} (removed)`)
  const order = (config: GatewayConfig) => config.routes.map((route) => route.name).join('\n')
  if (changed.every((key) => !key.startsWith('routes.')) && order(running) !== order(next)) changed.push('routes (order)')
  return changed
}
