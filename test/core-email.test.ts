import t from 'tap'
import { normalizeEmail } from '../src/core/email.js'
import { GatehouseError } from '../src/errors.js'

t.test('accepted addresses, normalised', async (t) => {
  const cases: Array<[string, string]> = [
    ['alice@example.com', 'alice@example.com'],
    ['  Alice@Example.COM \n', 'alice@example.com'],
    ['\t\u00A0bob@example.org\u3000', 'bob@example.org'], // trim covers NBSP and ideographic space
    ['first.last+tag@sub.example.co.uk', 'first.last+tag@sub.example.co.uk'],
    ["o'brien@example.ie", "o'brien@example.ie"],
    ['a@b.co', 'a@b.co'],
    ['user@bücher.de', 'user@xn--bcher-kva.de'],
    ['user@B\u0308ucher.de'.replace('B\u0308u', 'bu\u0308'), 'user@xn--bcher-kva.de'], // NFD ü
    ['user@xn--bcher-kva.de', 'user@xn--bcher-kva.de'],
    ['user@EXAMPLE\uFF0Ecom', 'user@example.com'], // fullwidth full stop is an IDNA dot
    ['user@mañana.com', 'user@xn--maana-pta.com'],
    ['user@пример.рф', 'user@xn--e1afmkfd.xn--p1ai'],
    ['x'.repeat(64) + '@example.com', 'x'.repeat(64) + '@example.com'],
    ['\u212Aelvin@example.com', 'kelvin@example.com'], // KELVIN SIGN is canonically K: NFC makes it ASCII
  ]
  for (const [input, expected] of cases) {
    t.equal(normalizeEmail(input), expected, JSON.stringify(input))
  }
})

t.test('refused addresses', async (t) => {
  const label = 'a'.repeat(63)
  const cases: Array<[string, string]> = [
    ['', 'empty'],
    ['   ', 'blank'],
    ['alice', 'no @'],
    ['alice@@example.com', 'two @'],
    ['a@b@example.com', 'two @ apart'],
    ['@example.com', 'empty local part'],
    ['alice@', 'empty domain'],
    ['alice@localhost', 'no dot in domain'],
    ['alice@example.', 'trailing dot'],
    ['alice@.example.com', 'leading dot'],
    ['alice@example..com', 'empty label'],
    ['alice@-example.com', 'label starts with hyphen'],
    ['alice@example-.com', 'label ends with hyphen'],
    ['alice@exa_mple.com', 'underscore in domain'],
    ['alice@exa%41mple.com', 'percent-encoding in domain'],
    ['alice@[127.0.0.1]', 'domain literal'],
    ['alice@127.0.0.1', 'IPv4 address'],
    ['alice@0x7f.1', 'IPv4 in hex'],
    ['alice@example.123', 'numeric TLD'],
    ['alice@xn--zz.com', 'bad punycode'],
    ['al ice@example.com', 'space in local part'],
    ['alice@exa mple.com', 'space in domain'],
    ['ali\tce@example.com', 'tab inside'],
    ['alice\n@example.com', 'newline inside'],
    ['alice@example.com\r\nBcc: x@y.z', 'header injection'],
    ['ali\u0000ce@example.com', 'NUL'],
    ['ali\u007Fce@example.com', 'DEL'],
    ['ali\u0085ce@example.com', 'C1 control NEL'],
    ['\u200Balice@example.com', 'leading zero-width space (not trimmed)'],
    ['ali\u200Bce@example.com', 'zero-width space'],
    ['alice@exa\u200Bmple.com', 'zero-width space in domain (IDNA would drop it)'],
    ['alice@exa\u00ADmple.com', 'soft hyphen in domain (IDNA would drop it)'],
    ['alice@exa\u200Dmple.com', 'zero-width joiner'],
    ['alice@example.com\u2060', 'word joiner'],
    ['alice@\u202Emoc.elpmaxe', 'right-to-left override'],
    ['alice@example\u2066.com', 'bidi isolate'],
    ['alice\uFE0F@example.com', 'variation selector'],
    ['alice@exa\u034Fmple.com', 'combining grapheme joiner'],
    ['alice@exa\u3164mple.com', 'Hangul filler'],
    ['alice@exa\u2800mple.com', 'Braille blank'],
    ['alice@example.com\uDB40\uDC01', 'tag character'],
    ['alice@exa\uE000mple.com', 'private use'],
    ['alice@exa\uD800mple.com', 'lone surrogate'],
    ['alice@exa\u2028mple.com', 'line separator'],
    ['ali\u2003ce@example.com', 'em space'],
    ['\u0130stanbul@example.com', 'dotted capital I'],
    ['аlice@example.com', 'Cyrillic a in local part'],
    ['josé@example.com', 'non-ASCII local part'],
    ['"alice"@example.com', 'quoted local part'],
    ['.alice@example.com', 'leading dot in local part'],
    ['alice.@example.com', 'trailing dot in local part'],
    ['al..ice@example.com', 'double dot in local part'],
    ['ali(ce)@example.com', 'comment'],
    ['ali,ce@example.com', 'comma'],
    ['x'.repeat(65) + '@example.com', 'local part over 64'],
    [`a@${label}a.com`, 'label over 63'],
    [`${'x'.repeat(64)}@${[label, label, label, 'abcdefghijklmnopqrstuvwxyz.com'].join('.')}`, 'total over 254'],
    [`a@${[label, label, label, label].join('.')}.com`, 'domain over 253'],
    ['a'.repeat(5000) + '@example.com', 'huge input'],
  ]
  for (const [input, why] of cases) {
    t.throws(() => normalizeEmail(input), { code: 'GH_VALIDATION', details: { field: 'email' } }, why)
  }
})

t.test('the error is a GatehouseError with status 400', async (t) => {
  try {
    normalizeEmail('nope')
    t.fail('should throw')
  } catch (err) {
    t.ok(err instanceof GatehouseError)
    t.equal((err as GatehouseError).statusCode, 400)
  }
})

t.test('a non-string is refused, not a crash', async (t) => {
  t.throws(() => normalizeEmail(42 as unknown as string), { code: 'GH_VALIDATION' })
})
