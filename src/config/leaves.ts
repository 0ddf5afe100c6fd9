/**
 * Scalar nodes: text, integers, booleans, enumerations, and the name checks that span the
 * whole file (references to defined names, unique names).
 */

import { INVALID, type Context, type Invalid, type Result } from './context.js'
import { describeValue, readScalar, type Node } from './node.js'
import { closest } from './suggest.js'

export interface Report {
  /** `expected <what the leaf expects>, got <what was found>`, plus an optional detail. */
  expected(detail?: string): Invalid
  /** A problem in other words. */
  problem(message: string): Invalid
}

/**
 * A leaf written as a YAML string (after expanding environment references): `convert`
 * turns the text into the value, or reports why it cannot.
 */
export function textLeaf<T>(
  type: string,
  expected: string,
  convert: (text: string, report: Report, context: Context) => Result<T>,
): Node<T> {
  return {
    type,
    parse(raw, path, context) {
      const scalar = readScalar(raw, path, context)
      if (scalar === INVALID) return INVALID
      const report: Report = {
        expected: (detail) => context.problem(path, `expected ${expected}, got ${describeValue(scalar)}${detail ? `; ${detail}` : ''}`),
        problem: (message) => context.problem(path, message),
      }
      if (scalar.kind !== 'text') return report.expected()
      return convert(scalar.text, report, context)
    },
  }
}

/** Any non-empty string. */
export function str(type = 'string'): Node<string> {
  const node = textLeaf(type, 'a non-empty string', (text, report) => (text === '' ? report.expected() : text))
  return {
    type,
    parse(raw, path, context) {
      if (typeof raw === 'number') return context.problem(path, `expected a non-empty string, got the number ${raw}; quote it to write it as text`)
      return node.parse(raw, path, context)
    },
  }
}

/** A string matching `pattern`, e.g. a name used in URLs or metric labels. */
export function matching(type: string, pattern: RegExp, expected: string): Node<string> {
  return textLeaf(type, expected, (text, report) => (pattern.test(text) ? text : report.expected()))
}

/** One of a fixed set of strings. */
export function oneOf<const V extends readonly string[]>(values: V): Node<V[number]> {
  const isMember = (text: string): text is V[number] => values.includes(text)
  return textLeaf(values.join(' | '), `one of ${values.join(', ')}`, (text, report) => {
    if (isMember(text)) return text
    const likely = closest(text, values)
    return report.expected(likely === null ? undefined : `did you mean ${likely}?`)
  })
}

/**
 * An integer within bounds. A YAML number, or one whole environment reference holding
 * decimal digits (`port: ${PORT:-8443}`); a quoted "8443" is a string, not a number.
 */
export function int(bounds: { min?: number; max?: number } = {}, type?: string): Node<number> {
  const min = bounds.min ?? Number.MIN_SAFE_INTEGER
  const max = bounds.max ?? Number.MAX_SAFE_INTEGER
  const expected = bounds.max === undefined ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`
  return {
    type: type ?? (bounds.max === undefined ? `integer >= ${min}` : `integer ${min}..${max}`),
    parse(raw, path, context) {
      const scalar = readScalar(raw, path, context)
      if (scalar === INVALID) return INVALID
      let value: number | null = null
      if (scalar.kind === 'other' && typeof scalar.value === 'number') value = scalar.value
      if (scalar.kind === 'text' && scalar.whole && /^[+-]?\d+$/.test(scalar.text)) value = Number(scalar.text)
      if (value === null || !Number.isSafeInteger(value) || value < min || value > max) {
        return context.problem(path, `expected ${expected}, got ${describeValue(scalar)}`)
      }
      return value
    },
  }
}

/** true or false: a YAML boolean, or one whole environment reference holding true/false. */
export function bool(): Node<boolean> {
  return {
    type: 'boolean',
    parse(raw, path, context) {
      const scalar = readScalar(raw, path, context)
      if (scalar === INVALID) return INVALID
      if (scalar.kind === 'other' && typeof scalar.value === 'boolean') return scalar.value
      if (scalar.kind === 'text' && scalar.whole && /^(true|false)$/i.test(scalar.text)) return scalar.text.toLowerCase() === 'true'
      return context.problem(path, `expected true or false, got ${describeValue(scalar)}`)
    },
  }
}

/** A name that must be defined elsewhere (checked once the whole file is read). */
export function reference(kind: string, node: Node<string>): Node<string> {
  return {
    type: `${kind} name`,
    parse(raw, path, context) {
      const name = node.parse(raw, path, context)
      if (name !== INVALID) context.refer(kind, name, path)
      return name
    },
  }
}

/** A name that must not be used twice for the same kind (route names, provider names). */
export function unique(kind: string, node: Node<string>): Node<string> {
  return {
    type: node.type,
    parse(raw, path, context) {
      const name = node.parse(raw, path, context)
      return name === INVALID ? INVALID : context.claim(kind, name, path)
    },
  }
}
