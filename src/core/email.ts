import { domainToASCII, domainToUnicode } from 'node:url'
import { GatehouseError } from '../errors.js'

export const MAX_EMAIL_LENGTH = 254
const MAX_LOCAL_LENGTH = 64
const MAX_DOMAIN_LENGTH = 253
const MAX_LABEL_LENGTH = 63
/** Inputs longer than this are refused before any Unicode work is spent on them. */
const MAX_INPUT_LENGTH = 1024

/**
 * Characters that are invisible, ambiguous or able to reorder text: controls (Cc), format
 * characters (Cf: zero-width, bidi overrides, tags), private use, unassigned code points,
 * lone surrogates, every separator (Z*), default-ignorables (variation selectors, Hangul
 * fillers, combining grapheme joiner) and the blank Braille pattern. IDNA would silently
 * drop several of these (`exa\u00ADmple.com` becomes `example.com`), so they are refused
 * before it runs rather than normalised away.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Cs}\p{Z}\p{Default_Ignorable_Code_Point}\u2800]/u

/** RFC 5322 dot-atom of ASCII atext; quoted local parts are not accepted. */
const LOCAL_PART = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/
const LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/
/** ASCII a domain may contain before IDNA; `%` especially, which a URL host parser decodes. */
const DOMAIN_ASCII = /^[a-z0-9.-]$/

function invalid(message: string): GatehouseError {
  return new GatehouseError('GH_VALIDATION', message, { details: { field: 'email' } })
}

/**
 * Trims, NFC-normalises and lowercases an email address, and refuses anything that is not a
 * plausible mailbox (GH_VALIDATION, `details.field = 'email'`). The result is pure ASCII: the
 * domain is converted to its IDNA (punycode) form.
 *
 * Local parts must be ASCII. Accounts are keyed by this string, so it must have one spelling:
 * lowercasing non-ASCII is locale-dependent (Turkish İ, German ß), mixed scripts make
 * look-alike accounts (Cyrillic `а` vs Latin `a`), SMTPUTF8 support is patchy, and the
 * address travels to upstreams in the `X-Auth-Email` header, where non-ASCII is not portable.
 */
export function normalizeEmail(input: string): string {
  if (typeof input !== 'string') throw invalid('The email address must be a string')
  if (input.length > MAX_INPUT_LENGTH) throw invalid('The email address is too long')
  const trimmed = input.trim()
  if (trimmed === '') throw invalid('The email address is required')
  if (INVISIBLE.test(trimmed)) {
    throw invalid('The email address contains spaces, control or invisible characters')
  }
  const normalized = trimmed.normalize('NFC')
  const at = normalized.indexOf('@')
  if (at === -1 || at !== normalized.lastIndexOf('@')) {
    throw invalid('The email address must contain exactly one @')
  }
  const rawLocal = normalized.slice(0, at)
  const rawDomain = normalized.slice(at + 1)

  // Checked before lowercasing, so that no non-ASCII letter can lowercase into an ASCII one.
  if (!/^[\x21-\x7e]+$/.test(rawLocal)) {
    throw invalid('The part before @ must be non-empty and use ASCII characters only')
  }
  const local = rawLocal.toLowerCase()
  if (local.length > MAX_LOCAL_LENGTH) throw invalid('The part before @ is longer than 64 characters')
  if (!LOCAL_PART.test(local)) throw invalid('The part before @ contains characters that are not allowed')

  const lowerDomain = rawDomain.toLowerCase()
  for (const char of lowerDomain) {
    if (char.charCodeAt(0) < 0x80 && !DOMAIN_ASCII.test(char)) {
      throw invalid('The domain contains characters that are not allowed')
    }
  }
  const domain = domainToASCII(lowerDomain)
  if (domain === '') throw invalid('The domain is not a valid domain name')
  if (domain.length > MAX_DOMAIN_LENGTH) throw invalid('The domain is longer than 253 characters')
  const labels = domain.split('.')
  if (labels.length < 2) throw invalid('The domain must contain a dot')
  for (const label of labels) {
    if (label.length > MAX_LABEL_LENGTH || !LABEL.test(label) || !decodes(label)) {
      throw invalid('The domain is not a valid domain name')
    }
  }
  // A numeric last label makes an IPv4 address (`0x7f.1` is 127.0.0.1); top-level domains never are.
  if (/^[0-9]+$/.test(labels.at(-1) ?? '')) throw invalid('The domain is not a valid domain name')

  const email = `${local}@${domain}`
  if (email.length > MAX_EMAIL_LENGTH) throw invalid('The email address is longer than 254 characters')
  return email
}

/**
 * An `xn--` label must be Punycode that decodes. Node 20's URL parser made domainToASCII
 * refuse the others (''); Node 24's, on a later UTS #46, passes them through unchanged.
 */
function decodes(label: string): boolean {
  if (!label.startsWith('xn--')) return true
  const decoded = domainToUnicode(label)
  return decoded !== '' && decoded !== label
}
