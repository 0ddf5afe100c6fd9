/**
 * The self-signed development certificate that `npm start` creates on first start when
 * the configured certificate files do not exist yet. Never used when they do.
 */
import { mkdir, writeFile, access } from 'node:fs/promises'
import { dirname } from 'node:path'
import selfsigned from 'selfsigned'
import { TlsFileError } from './tls-files.js'

const exists = (path: string) => access(path).then(() => true, () => false)

export async function ensureDevCertificate(certPath: string, keyPath: string): Promise<'existing' | 'created'> {
  const [haveCert, haveKey] = await Promise.all([exists(certPath), exists(keyPath)])
  if (haveCert && haveKey) return 'existing'
  if (haveCert !== haveKey) {
    const [missingKey, missing, present] = haveCert ? ['server.tls.key', keyPath, certPath] as const : ['server.tls.cert', certPath, keyPath] as const
    throw new TlsFileError(missingKey, `cannot read ${missing} (ENOENT: no such file) while ${present} exists; provide both, or remove it to get a development certificate`)
  }
  const notBeforeDate = new Date()
  const notAfterDate = new Date(notBeforeDate.getTime() + 90 * 24 * 3600 * 1000)
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }],
      },
    ],
  })
  await mkdir(dirname(certPath), { recursive: true })
  await mkdir(dirname(keyPath), { recursive: true })
  await writeFile(keyPath, pems.private, { mode: 0o600, flag: 'wx' })
  await writeFile(certPath, pems.cert, { mode: 0o644, flag: 'wx' })
  return 'created'
}
