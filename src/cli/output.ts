/**
 * How the CLI prints what it lists: tab-separated with a header, or JSON (`--json`). Stored
 * text may come from anyone (a failed login's email is whatever was typed), so no control
 * character reaches the operator's terminal: tables show them escaped, JSON as \u escapes.
 */

const CONTROL = /[\p{Cc}\u2028\u2029]/gu

const escaped = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`

export function writeJson(value: unknown): void {
  // JSON.stringify escapes C0 controls itself, but not DEL, the C1 controls or line separators.
  process.stdout.write(`${JSON.stringify(value, null, 2).replace(CONTROL, (c) => (c === '\n' ? c : escaped(c)))}\n`)
}

/** One line per row, fields separated by tabs; a missing value is `-`. */
export function writeRows(header: readonly string[], rows: readonly (readonly unknown[])[]): void {
  const field = (value: unknown) => {
    const text = value === null || value === undefined ? '-' : typeof value === 'object' ? JSON.stringify(value) : String(value)
    return text.replace(CONTROL, escaped)
  }
  process.stdout.write([header, ...rows].map((row) => row.map(field).join('\t')).join('\n') + '\n')
}
