/**
 * Result parsing shared by both drivers, so that a row reads the same from pg and PGlite.
 * Left to each driver (already equal): timestamptz → Date, text[] → string[], jsonb →
 * parsed JSON, uuid and numeric → string, int2/int4/float → number, bool → boolean.
 */

export const INT8_OID = 20
export const DATE_OID = 1082

/**
 * int8 (bigserial ids, count(*)) → number. pg would give a string and PGlite a number or a
 * bigint; a value past 2^53 would lose digits, so it is refused rather than rounded.
 */
export function parseInt8(text: string): number {
  const value = Number(text)
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`int8 value ${text} does not fit a JavaScript number; cast it to text in the query`)
  }
  return value
}

/** date → its 'YYYY-MM-DD' text: pg makes a local-midnight Date and PGlite a UTC one. */
export function parseDate(text: string): string {
  return text
}
