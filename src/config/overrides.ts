/**
 * Settings from the environment (SPEC §2): `GATEHOUSE__` followed by a key path in
 * capitals with `__` between levels sets that key, winning over the file
 * (`GATEHOUSE__SESSIONS__IDLE_TIMEOUT=1h`, `GATEHOUSE__ROUTES__0__UPSTREAM=http://…`).
 *
 * The path is checked against the schema, so a variable that names no key is a problem
 * (naming the variable) rather than a silently ignored setting. Only keys that hold a value
 * can be set, not whole sections; a list item must already exist in the file. The value is
 * final text, read as the key's type like a whole `${NAME}` reference (`9443` is a port, a
 * comma-separated value is a list). Variables with a single underscore after GATEHOUSE
 * (`GATEHOUSE_CONFIG`) are not overrides.
 */

import type { Context } from './context.js'
import type { Env } from './interpolate.js'
import { Expanded, isMapping, type SchemaEntry } from './node.js'
import { closest } from './suggest.js'

export const OVERRIDE_PREFIX = 'GATEHOUSE__'

type Step = { readonly kind: 'key'; readonly key: string; readonly entry: boolean } | { readonly kind: 'index'; readonly index: number }

/**
 * Applies every override in `env` to the parsed YAML document, in place. Problems are
 * reported to `context`, each naming its variable.
 */
export function applyOverrides(document: Record<string, unknown>, env: Env, schema: readonly SchemaEntry[], context: Context): void {
  const paths = schema.map((entry) => entry.path)
  const names = Object.keys(env).filter((name) => name.startsWith(OVERRIDE_PREFIX)).sort()
  for (const variable of names) {
    const value = env[variable]
    if (value === undefined) continue
    const steps = resolvePath(variable, paths, context)
    if (steps !== null) assign(document, steps, new Expanded(value, true, variable), variable, context)
  }
}

/** The key path a variable names, step by step; null (and a problem) when it names no key or a section. */
function resolvePath(variable: string, paths: readonly string[], context: Context): Step[] | null {
  const segments = variable.slice(OVERRIDE_PREFIX.length).split('__')
  if (segments.some((segment) => segment === '')) {
    return fail(context, variable, 'write the key path with __ between levels, like GATEHOUSE__SESSIONS__IDLE_TIMEOUT')
  }
  const steps: Step[] = []
  let pattern = ''
  for (const segment of segments) {
    const under = (child: string) => paths.some((path) => path === child || path.startsWith(`${child}.`) || path.startsWith(`${child}[]`))
    const key = segment.toLowerCase()
    const named = pattern === '' ? key : `${pattern}.${key}`
    if (/^\d+$/.test(segment) && under(`${pattern}[]`)) {
      steps.push({ kind: 'index', index: Number(segment) })
      pattern = `${pattern}[]`
    } else if (/^[a-z0-9_]+$/.test(key) && under(named)) {
      steps.push({ kind: 'key', key, entry: false })
      pattern = named
    } else if (pattern !== '' && under(`${pattern}.<name>`)) {
      steps.push({ kind: 'key', key, entry: true })
      pattern = `${pattern}.<name>`
    } else {
      const siblings = childKeys(paths, pattern)
      const likely = closest(key, siblings)
      const where = pattern === '' ? 'gateway.yml has no key' : `${displayPath(pattern)} has no key`
      return fail(context, variable, `names no key: ${where} ${key}${likely === null ? '' : `; did you mean ${likely}?`}`)
    }
  }
  if (paths.some((path) => path.startsWith(`${pattern}.`) || path.startsWith(`${pattern}[]`))) {
    return fail(context, variable, `${displayPath(pattern)} is a section, not a value: set one of its keys`)
  }
  return steps
}

/** Sets the value at `steps`, creating the mappings on the way; list items must exist. */
function assign(document: Record<string, unknown>, steps: readonly Step[], value: Expanded, variable: string, context: Context): void {
  let parent: unknown = document
  let at = ''
  steps.forEach((step, position) => {
    if (parent === undefined) return
    const last = position === steps.length - 1
    if (step.kind === 'index') {
      if (!Array.isArray(parent) || step.index >= parent.length) {
        const length = Array.isArray(parent) ? parent.length : 0
        context.problem(variable, `${at || '(top level)'} has ${length} item${length === 1 ? '' : 's'} in the file; an override can set a key of an existing item only`)
        parent = undefined
        return
      }
      at = `${at}[${step.index}]`
      if (last) parent[step.index] = value
      else parent = parent[step.index] = mappingAt(parent[step.index])
      return
    }
    if (!isMapping(parent)) {
      context.problem(variable, `${at || '(top level)'} is not a mapping in the file`)
      parent = undefined
      return
    }
    // A name under a mapping of names keeps the spelling the file uses (roles.Viewer).
    const key = step.entry ? Object.keys(parent).find((existing) => existing.toLowerCase() === step.key) ?? step.key : step.key
    at = at === '' ? key : `${at}.${key}`
    if (last) parent[key] = value
    else parent = parent[key] = mappingAt(parent[key])
  })
}

/** The mapping already there, or a new one where the file had nothing (an absent or empty section). */
function mappingAt(existing: unknown): unknown {
  return existing === undefined || existing === null ? {} : existing
}

function childKeys(paths: readonly string[], pattern: string): string[] {
  const prefix = pattern === '' ? '' : `${pattern}.`
  const keys = paths.filter((path) => path.startsWith(prefix)).map((path) => path.slice(prefix.length).split(/[.[]/)[0] ?? '')
  return [...new Set(keys.filter((key) => key !== '' && key !== '<name>'))]
}

function displayPath(pattern: string): string {
  return pattern.replaceAll('[]', '[n]')
}

function fail(context: Context, variable: string, message: string): null {
  context.problem(variable, message)
  return null
}
