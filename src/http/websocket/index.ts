/** WebSocket handshakes and tunnels on the gateway's listener (SPEC §4a). */
export { upgradeHandler, type UpgradeHandler, type UpgradeOptions } from './upgrades.js'
export { Tunnel, IDLE_TIMEOUT_MS } from './tunnel.js'
