/**
 * A small, strict parser of the Prometheus text exposition format (version 0.0.4), written
 * independently of prom-client so that the tests read /metrics as a scraper would: families
 * with their HELP and TYPE, samples with their labels and values. A malformed line throws.
 */

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface Family {
  name: string
  help: string | undefined
  type: string | undefined
  samples: Sample[]
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
/** The sample suffixes that belong to a histogram's or summary's family. */
const SUFFIXES = ['_bucket', '_sum', '_count', '_created']

export class Exposition {
  readonly families = new Map<string, Family>()

  /** Every sample of every family, in order. */
  get samples(): Sample[] {
    return [...this.families.values()].flatMap((family) => family.samples)
  }

  family(name: string): Family | undefined {
    return this.families.get(name)
  }

  /** The samples named `name` whose labels include `labels`. */
  select(name: string, labels: Record<string, string> = {}): Sample[] {
    return this.samples.filter(
      (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    )
  }

  /** The sum of the samples named `name` whose labels include `labels`; 0 when there are none. */
  sum(name: string, labels: Record<string, string> = {}): number {
    return this.select(name, labels).reduce((total, sample) => total + sample.value, 0)
  }

  /** The one sample with exactly these labels, or undefined. */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const wanted = Object.keys(labels).length
    return this.select(name, labels).find((sample) => Object.keys(sample.labels).length === wanted)?.value
  }
}

export function parsePrometheus(text: string): Exposition {
  const exposition = new Exposition()
  const familyOf = (name: string): Family => {
    let family = exposition.families.get(name)
    if (family === undefined) {
      family = { name, help: undefined, type: undefined, samples: [] }
      exposition.families.set(name, family)
    }
    return family
  }
  const lines = text.split('\n')
  lines.forEach((line, index) => {
    const where = `line ${index + 1} (${JSON.stringify(line)})`
    if (line.trim() === '') return
    if (line.startsWith('#')) {
      const comment = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line)
      if (comment === null) return // an ordinary comment
      const [, keyword, name = '', rest = ''] = comment
      if (!NAME.test(name)) throw new Error(`${where}: bad metric name`)
      const family = familyOf(name)
      if (keyword === 'HELP') {
        if (family.help !== undefined) throw new Error(`${where}: a second HELP for ${name}`)
        family.help = rest.replace(/\\(n|\\)/g, (_m, c: string) => (c === 'n' ? '\n' : '\\'))
      } else {
        if (family.type !== undefined) throw new Error(`${where}: a second TYPE for ${name}`)
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`${where}: unknown type`)
        if (family.samples.length > 0) throw new Error(`${where}: TYPE after the samples of ${name}`)
        family.type = rest
      }
      return
    }
    const sample = parseSample(line, where)
    familyOf(familyName(exposition, sample.name)).samples.push(sample)
  })
  return exposition
}

/** `x_bucket`, `x_sum`, `x_count` belong to the histogram or summary `x` when it is declared. */
function familyName(exposition: Exposition, sampleName: string): string {
  if (exposition.families.get(sampleName)?.type !== undefined) return sampleName
  for (const suffix of SUFFIXES) {
    if (!sampleName.endsWith(suffix)) continue
    const base = exposition.families.get(sampleName.slice(0, -suffix.length))
    if (base?.type === 'histogram' || base?.type === 'summary') return base.name
  }
  return sampleName
}

function parseSample(line: string, where: string): Sample {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)
  if (nameMatch === null) throw new Error(`${where}: no metric name`)
  const name = nameMatch[0]
  let at = name.length
  const labels: Record<string, string> = {}
  if (line[at] === '{') {
    at++
    while (line[at] !== '}') {
      const labelMatch = /^\s*([^=\s]+)\s*=\s*"/.exec(line.slice(at))
      if (labelMatch === null) throw new Error(`${where}: bad label at column ${at}`)
      const labelName = labelMatch[1] ?? ''
      if (!LABEL_NAME.test(labelName)) throw new Error(`${where}: bad label name ${labelName}`)
      if (labelName in labels) throw new Error(`${where}: label ${labelName} repeated`)
      at += labelMatch[0].length
      let value = ''
      for (;;) {
        const c = line[at]
        if (c === undefined) throw new Error(`${where}: unterminated label value`)
        at++
        if (c === '"') break
        if (c === '\\') {
          const escaped = line[at++]
          if (escaped === 'n') value += '\n'
          else if (escaped === '\\' || escaped === '"') value += escaped
          else throw new Error(`${where}: bad escape \\${escaped ?? ''}`)
        } else {
          value += c
        }
      }
      labels[labelName] = value
      if (line[at] === ',') at++
      else if (line[at] !== '}') throw new Error(`${where}: expected , or } at column ${at}`)
    }
    at++
  }
  const rest = line.slice(at)
  const valueMatch = /^ +(\S+)( +-?\d+)?$/.exec(rest)
  if (valueMatch === null) throw new Error(`${where}: no value`)
  return { name, labels, value: parseValue(valueMatch[1] ?? '', where) }
}

/** As Prometheus reads it (Go's ParseFloat): Inf and NaN in any case (prom-client writes `Nan`). */
function parseValue(text: string, where: string): number {
  const lower = text.toLowerCase()
  if (lower === '+inf' || lower === 'inf') return Infinity
  if (lower === '-inf') return -Infinity
  if (lower === 'nan') return NaN
  const value = Number(text)
  if (text === '' || Number.isNaN(value)) throw new Error(`${where}: bad value ${text}`)
  return value
}
