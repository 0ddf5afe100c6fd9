import type { OidcProviderConfig } from '../config/types.js'
import { ProviderClient, type BackoffOptions } from './provider-client.js'

export interface OidcProvidersOptions {
  /** `server.public_url`: the redirect URIs are `${publicUrl}/auth/oidc/<name>/callback`. */
  publicUrl: string
  backoff?: BackoffOptions
  timeoutSeconds?: number
}

export interface ProvidersDiscoveryListeners {
  onDiscoveryError?: (provider: string, err: unknown, retryInMs: number) => void
  onDiscovered?: (provider: string) => void
}

/** The redirect URI registered with a provider for this gateway. */
export function redirectUriOf(publicUrl: string, name: string): string {
  return `${publicUrl}/auth/oidc/${encodeURIComponent(name)}/callback`
}

/**
 * The `auth.oidc` providers of one configuration, by name. Building it contacts nobody:
 * discovery starts with start() (the server calls it; CLI commands never do), and close()
 * stops every retry timer.
 */
export class OidcProviders {
  readonly #clients: Map<string, ProviderClient>

  constructor(providers: readonly OidcProviderConfig[], options: OidcProvidersOptions) {
    this.#clients = new Map(
      providers.map((provider) => [
        provider.name,
        new ProviderClient(provider, {
          redirectUri: redirectUriOf(options.publicUrl, provider.name),
          backoff: options.backoff,
          timeoutSeconds: options.timeoutSeconds,
        }),
      ]),
    )
  }

  get(name: string): ProviderClient | null {
    return this.#clients.get(name) ?? null
  }

  names(): string[] {
    return [...this.#clients.keys()]
  }

  /** Starts discovering every provider (idempotent). */
  start(listeners: ProvidersDiscoveryListeners = {}): void {
    for (const [name, client] of this.#clients) {
      client.start({
        onDiscoveryError: (err, retryInMs) => listeners.onDiscoveryError?.(name, err, retryInMs),
        onDiscovered: () => listeners.onDiscovered?.(name),
      })
    }
  }

  close(): void {
    for (const client of this.#clients.values()) client.close()
  }
}
