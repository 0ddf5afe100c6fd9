/**
 * Durations and sizes as written in gateway.yml.
 *
 * A duration is a whole number followed by one unit, with no space: `500ms`, `30s`, `5m`,
 * `1h`, `1d`. Decimals (`1.5h`) and compounds (`1h30m`) are refused: write `90m`. Units are
 * lower-case so that `5m` can never be read as months.
 *
 * A size is a whole number followed by `b`, `kb`, `mb` or `gb` (any case), binary:
 * 1kb = 1024 bytes.
 */

const DURATION = /^(\d+)(ms|s|m|h|d)$/
const SIZE = /^(\d+)(b|kb|mb|gb)$/i

export const SECOND = 1000
export const MINUTE = 60 * SECOND
export const HOUR = 60 * MINUTE
export const DAY = 24 * HOUR

const durationUnits: ReadonlyArray<readonly [string, number]> = [
  ['d', DAY], ['h', HOUR], ['m', MINUTE], ['s', SECOND], ['ms', 1],
]
const sizeUnits: ReadonlyArray<readonly [string, number]> = [
  ['gb', 1024 ** 3], ['mb', 1024 ** 2], ['kb', 1024], ['b', 1],
]

/** Milliseconds, or null when `text` is not a duration (or too large to count exactly). */
export function parseDuration(text: string): number | null {
  const found = DURATION.exec(text)
  if (!found) return null
  return scaled(found[1], durationUnits, found[2])
}

/** Bytes, or null when `text` is not a size (or too large to count exactly). */
export function parseSize(text: string): number | null {
  const found = SIZE.exec(text)
  if (!found) return null
  return scaled(found[1], sizeUnits, found[2]?.toLowerCase())
}

/** The shortest exact spelling of a duration: 90000 → `90s`, 3600000 → `1h`. */
export function formatDuration(ms: number): string {
  return formatted(ms, durationUnits)
}

/** The shortest exact spelling of a size: 1048576 → `1mb`. */
export function formatSize(bytes: number): string {
  return formatted(bytes, sizeUnits)
}

function scaled(digits: string | undefined, units: ReadonlyArray<readonly [string, number]>, unit: string | undefined): number | null {
  const factor = units.find(([name]) => name === unit)?.[1]
  if (digits === undefined || factor === undefined) return null
  const value = Number(digits) * factor
  return Number.isSafeInteger(value) ? value : null
}

function formatted(amount: number, units: ReadonlyArray<readonly [string, number]>): string {
  const [name, factor] = units.find(([, size]) => amount !== 0 && amount % size === 0) ?? units[units.length - 1] ?? ['', 1]
  return `${amount / factor}${name}`
}
