/**
 * The serving certificate and key, read from the configured files and checked as a pair
 * (so that a start, a reload or check-config with a mismatched or broken pair is refused
 * before anything changes). Each failure names the key whose file is at fault.
 */
import { readFile } from 'node:fs/promises'
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import { createSecureContext } from 'node:tls'
import { StartupError } from './startup-error.js'

export interface TlsMaterial {
  cert: Buffer
  key: Buffer
  /** The leaf certificate's notAfter, epoch milliseconds. */
  expiresAt: number
}

export type TlsKey = 'server.tls.cert' | 'server.tls.key'

/** A certificate or key file that cannot be used; the message starts with its key path. */
export class TlsFileError extends StartupError {
  constructor(key: TlsKey, message: string) {
    super(key, message)
    this.name = 'TlsFileError'
  }
}

export async function readTlsFiles(paths: { cert: string; key: string }): Promise<TlsMaterial> {
  const [cert, key] = await Promise.all([readPem(paths.cert, 'server.tls.cert'), readPem(paths.key, 'server.tls.key')])
  let leaf: X509Certificate
  try {
    leaf = new X509Certificate(cert)
  } catch (err) {
    throw new TlsFileError('server.tls.cert', `${paths.cert} is not a PEM certificate (${reason(err)})`)
  }
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(key)
  } catch (err) {
    throw new TlsFileError('server.tls.key', `${paths.key} is not a PEM private key (${reason(err)})`)
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new TlsFileError('server.tls.key', `${paths.key} does not belong to the certificate ${paths.cert}: the certificate and key do not pair`)
  }
  try {
    createSecureContext({ cert, key })
  } catch (err) {
    throw new TlsFileError('server.tls.cert', `the certificate ${paths.cert} and key ${paths.key} are not a usable pair (${reason(err)})`)
  }
  return { cert, key, expiresAt: Date.parse(leaf.validTo) }
}

async function readPem(path: string, key: TlsKey): Promise<Buffer> {
  try {
    return await readFile(path)
  } catch (err) {
    throw new TlsFileError(key, `cannot read ${path} (${fileReason(err)})`)
  }
}

/** `ENOENT: no such file`, `EACCES: permission denied`: the code first, as operators grep for it. */
export function fileReason(err: unknown): string {
  const code = err instanceof Error && 'code' in err ? String(err.code) : ''
  const text: Record<string, string> = { ENOENT: 'no such file', EACCES: 'permission denied', EPERM: 'permission denied', EISDIR: 'it is a directory' }
  if (text[code] !== undefined) return `${code}: ${text[code]}`
  return reason(err)
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0] ?? err.message : String(err)
}
