/**
 * The serving certificate and key, read from the configured files and checked as a pair
 * (so that a reload with a mismatched or broken pair is refused before anything changes).
 */
import { readFile } from 'node:fs/promises'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { createSecureContext } from 'node:tls'

export interface TlsMaterial {
  cert: Buffer
  key: Buffer
  /** The leaf certificate's notAfter, epoch milliseconds. */
  expiresAt: number
}

export async function readTlsFiles(paths: { cert: string; key: string }): Promise<TlsMaterial> {
  const [cert, key] = await Promise.all([readFile(paths.cert), readFile(paths.key)])
  let expiresAt: number
  try {
    const leaf = new X509Certificate(cert)
    if (!leaf.checkPrivateKey(createPrivateKey(key))) throw new Error('the key does not belong to the certificate')
    expiresAt = Date.parse(leaf.validTo)
    createSecureContext({ cert, key })
  } catch (err) {
    throw new Error(`the TLS certificate ${paths.cert} and key ${paths.key} are not a usable pair: ${(err as Error).message}`)
  }
  return { cert, key, expiresAt }
}
