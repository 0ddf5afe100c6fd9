/**
 * Nodes that hold other nodes: mappings with known keys, lists, mappings of names,
 * optional (null) values, and transforms of a parsed value.
 */

import { INVALID, indexPath, keyPath, type Context, type Result } from './context.js'
import { isWholeReference } from './interpolate.js'
import { describeRaw, Expanded, isMapping, readScalar, type Node, type SchemaEntry } from './node.js'
import { hint } from './suggest.js'

type Siblings = Readonly<Record<string, unknown>>

export interface Field<T> {
  readonly node: Node<T>
  /** One sentence for the configuration reference. */
  readonly description: string
  /** The raw value used when the key is absent or empty, as written in YAML; absent for required keys. */
  readonly fallback?: (siblings: Siblings) => unknown
  /** The default as shown in the reference; null for required keys. */
  readonly defaultText: string | null
}

/** A key that must be present. */
export function required<T>(node: Node<T>, description: string): Field<T> {
  return { node, description, defaultText: null }
}

/** A key with a default, written as in YAML (`'30s'`, not 30000) and parsed like a value from the file. */
export function optional<T>(node: Node<T>, fallback: unknown, description: string, defaultText = renderYaml(fallback)): Field<T> {
  return { node, description, fallback: () => fallback, defaultText }
}

/** A key whose default depends on the other keys of its mapping as written. */
export function derived<T>(node: Node<T>, fallback: (siblings: Siblings) => unknown, defaultText: string, description: string): Field<T> {
  return { node, description, fallback, defaultText }
}

type Fields = Readonly<Record<string, Field<unknown>>>
export type ObjectOf<F extends Fields> = { [K in keyof F]: F[K] extends Field<infer T> ? T : never }

export interface ObjectOptions<F extends Fields> {
  /** Name of the mapping in the reference (`route`). */
  type?: string
  /**
   * Checks across keys. `parts` holds the keys that parsed, so one mistake does not hide
   * another; anything reported makes the mapping invalid. `report` names the key, and
   * optionally keys below it (`report('metrics', message, 'port')` is `metrics.port`; a number
   * is a list index: `report('routes', message, 0, 'host')` is `routes[0].host`).
   */
  check?: (parts: Partial<ObjectOf<F>>, report: (key: keyof F & string, message: string, ...below: (string | number)[]) => void) => void
}

/** A mapping with a fixed set of keys: unknown keys are problems, absent or empty keys take their defaults. */
export function obj<F extends Fields>(fields: F, options: ObjectOptions<F> = {}): Node<ObjectOf<F>> {
  const names = Object.keys(fields)
  return {
    type: options.type ?? 'mapping',
    parse(raw, path, context) {
      if (!isMapping(raw)) return context.problem(path, `expected a mapping, got ${describeRaw(raw)}`)
      const before = context.problems.length
      for (const key of Object.keys(raw)) {
        if (!Object.hasOwn(fields, key)) context.problem(keyPath(path, key), `unknown key${hint(key, names)}`)
      }
      const parts: Record<string, unknown> = {}
      for (const [key, field] of Object.entries(fields)) {
        const at = keyPath(path, key)
        let value = Object.hasOwn(raw, key) ? raw[key] : undefined
        if (value === undefined || value === null) {
          if (field.fallback === undefined) {
            context.problem(at, 'required key is missing')
            continue
          }
          value = field.fallback(raw)
        }
        const result = field.node.parse(value, at, context)
        if (result !== INVALID) parts[key] = result
      }
      // The parts are typed by the fields that produced them.
      const typed = parts as Partial<ObjectOf<F>>
      options.check?.(typed, (key, message, ...below) =>
        context.problem(below.reduce<string>((at, step) => (typeof step === 'number' ? indexPath(at, step) : belowPath(at, step)), keyPath(path, key)), message))
      return context.problems.length === before ? typed as ObjectOf<F> : INVALID
    },
    describe(path) {
      return Object.entries(fields).flatMap(([key, field]): SchemaEntry[] => {
        const at = keyPath(path, key)
        const entry = { path: at, type: field.node.type, default: field.defaultText, description: field.description }
        return [entry, ...(field.node.describe?.(at) ?? [])]
      })
    },
  }
}

export interface ListOptions<T> {
  min?: number
  /**
   * Checks across items: `items` holds each item that parsed at its index (undefined where one
   * did not); `report` names an item by index, and optionally keys below it.
   */
  check?: (items: ReadonlyArray<T | undefined>, report: (index: number, message: string, ...below: string[]) => void) => void
}

/**
 * A list. One whole environment reference is also accepted and split on commas
 * (`trust_proxy: ${TRUSTED_PROXIES:-}`); empty items are dropped.
 */
export function list<T>(item: Node<T>, options: ListOptions<T> = {}): Node<readonly T[]> {
  const min = options.min ?? 0
  return {
    type: `list of ${item.type}`,
    parse(raw, path, context) {
      const items = listItems(raw, path, context)
      if (items === INVALID) return INVALID
      if (items === null) return context.problem(path, `expected a list, got ${describeRaw(raw)}`)
      const before = context.problems.length
      if (items.length < min) context.problem(path, min === 1 ? 'must not be empty' : `needs at least ${min} items`)
      const values: T[] = []
      const byIndex: Array<T | undefined> = []
      items.forEach((value, index) => {
        const result = item.parse(value, indexPath(path, index), context)
        if (result !== INVALID) values.push(result)
        byIndex.push(result === INVALID ? undefined : result)
      })
      options.check?.(byIndex, (index, message, ...below) => context.problem(below.reduce(keyPath, indexPath(path, index)), message))
      return context.problems.length === before ? values : INVALID
    },
    describe: (path) => item.describe?.(`${path}[]`) ?? [],
  }
}

function belowPath(parent: string, key: string): string {
  return /^\[\d+\]$/.test(key) ? `${parent}${key}` : keyPath(parent, key)
}

/** One item, or a list of them: the value is always a list (`upstream: URL` or `upstream: [URL, URL]`). */
export function oneOrList<T>(item: Node<T>, options: ListOptions<T> = {}): Node<readonly T[]> {
  const many = list(item, options)
  return {
    type: `${item.type} or ${many.type}`,
    parse(raw, path, context) {
      if (Array.isArray(raw)) return many.parse(raw, path, context)
      const one = item.parse(raw, path, context)
      return one === INVALID ? INVALID : [one]
    },
    describe: (path) => many.describe?.(path) ?? [],
  }
}

function listItems(raw: unknown, path: string, context: Context): Result<readonly unknown[] | null> {
  if (Array.isArray(raw)) return raw
  if (!(raw instanceof Expanded) && !(typeof raw === 'string' && isWholeReference(raw))) return null
  const scalar = readScalar(raw, path, context)
  if (scalar === INVALID) return INVALID
  if (scalar.kind !== 'text') return null
  return scalar.text.split(',').map((part) => part.trim()).filter((part) => part !== '').map((part) => new Expanded(part))
}

export interface MapOptions {
  /** One sentence describing each entry, for the reference. */
  entry: string
  /** The kind of name the keys define, for `reference(kind, …)` nodes elsewhere. */
  defines?: string
}

/** A mapping from names (checked by `key`; never expanded) to values. */
export function map<V>(key: Node<string>, value: Node<V>, options: MapOptions): Node<Readonly<Record<string, V>>> {
  return {
    type: `mapping of ${key.type} to ${value.type}`,
    parse(raw, path, context) {
      if (!isMapping(raw)) return context.problem(path, `expected a mapping, got ${describeRaw(raw)}`)
      if (options.defines !== undefined) context.define(options.defines, Object.keys(raw), path)
      const before = context.problems.length
      const entries: Array<[string, V]> = []
      for (const [name, item] of Object.entries(raw)) {
        const at = keyPath(path, name)
        const parsedName = key.parse(new Expanded(name, false), at, context)
        const parsedValue = value.parse(item, at, context)
        if (parsedName !== INVALID && parsedValue !== INVALID) entries.push([parsedName, parsedValue])
      }
      // fromEntries defines own properties, so a key like __proto__ stays an ordinary key.
      return context.problems.length === before ? Object.fromEntries(entries) : INVALID
    },
    describe(path) {
      const at = `${path}.<name>`
      return [{ path: at, type: value.type, default: null, description: options.entry }, ...(value.describe?.(at) ?? [])]
    },
  }
}

/**
 * A value that may be absent: YAML null, or one whole environment reference that expands
 * to the empty string (`redirect_http_port: ${REDIRECT_PORT:-}`), yields null.
 */
export function nullable<T>(node: Node<T>): Node<T | null> {
  return {
    type: node.type,
    parse(raw, path, context) {
      if (raw === null || raw === undefined) return null
      if (raw instanceof Expanded) return raw.text === '' ? null : node.parse(raw, path, context)
      if (typeof raw !== 'string' || !isWholeReference(raw)) return node.parse(raw, path, context)
      const scalar = readScalar(raw, path, context)
      if (scalar === INVALID) return INVALID
      if (scalar.kind === 'text' && scalar.text === '') return null
      return node.parse(scalar.kind === 'text' ? new Expanded(scalar.text) : raw, path, context)
    },
    describe: (path) => node.describe?.(path) ?? [],
  }
}

/** Either a string (parsed by `text`) or a mapping (parsed by `mapping`). */
export function textOrMapping<A, B>(text: Node<A>, mapping: Node<B>, expected: string): Node<A | B> {
  return {
    type: `${text.type} or ${mapping.type}`,
    parse(raw, path, context) {
      if (typeof raw === 'string' || raw instanceof Expanded) return text.parse(raw, path, context)
      if (isMapping(raw)) return mapping.parse(raw, path, context)
      return context.problem(path, `expected ${expected}, got ${describeRaw(raw)}`)
    },
    describe: (path) => mapping.describe?.(path) ?? [],
  }
}

/** Reshapes a valid value; it cannot report problems. */
export function transform<T, U>(node: Node<T>, reshape: (value: T) => U): Node<U> {
  return {
    type: node.type,
    parse(raw, path, context) {
      const value = node.parse(raw, path, context)
      return value === INVALID ? INVALID : reshape(value)
    },
    describe: (path) => node.describe?.(path) ?? [],
  }
}

/** A value as it would be written in YAML flow style, for defaults in the reference. */
export function renderYaml(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(renderYaml).join(', ')}]`
  if (isMapping(value)) {
    const entries = Object.entries(value).map(([key, item]) => `${key}: ${renderYaml(item)}`)
    return entries.length === 0 ? '{}' : `{ ${entries.join(', ')} }`
  }
  if (typeof value === 'string') return /^[A-Za-z0-9_./-][A-Za-z0-9_./:@-]*$/.test(value) ? value : JSON.stringify(value)
  return String(value)
}
