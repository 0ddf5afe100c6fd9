/**
 * The deployment kit, checked without a container engine: compose.prod.yml, the Dockerfile,
 * the gateway, balancer, Prometheus and Grafana files under deploy/.
 *
 * - Every `gatehouse_*` metric the alert rules, the scrape config and the dashboard use is
 *   one of docs/metrics.md (the repository's metrics reference, which a fresh gateway's
 *   registry matches), with the labels and label values it gives.
 * - The alert rules' unit tests start from the series a freshly started gateway exposes.
 * - The dashboard JSON parses and references only template variables it defines.
 * - compose.prod.yml parses and has two gateway replicas behind one published port,
 *   healthchecks, restart policies and resource limits on every service, named volumes for
 *   the stores and the identity keys, and no secret written in it.
 * - deploy/gateway.prod.yml passes the gateway's own validation.
 * - The Dockerfile is multi-stage, installs production dependencies only into the image,
 *   runs as a non-root user, has a HEALTHCHECK on /health/live and copies no key material.
 * - deploy/healthcheck.mjs (the HEALTHCHECK) exits 0 on a 2xx over self-signed TLS, else 1.
 * - When promtool is on PATH (or $PROMTOOL names it), it also checks the Prometheus config,
 *   the rules, the rules' unit tests and the dashboard's queries.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import yaml from 'js-yaml'
import t, { type Test } from 'tap'

import { parseConfig } from '../src/config/index.js'
import { ensureDevCertificate } from '../src/dev-certificate.js'
import { GatewayMetrics } from '../src/metrics/gateway-metrics.js'
import { openKeyValueStore } from '../src/kv/open.js'
import { startTestGateway } from './helpers/gateway.js'
import { freePort, haveRedisServer } from './helpers/private-redis.js'
import { parsePrometheus } from './helpers/prometheus.js'

/** Tests run from dist/test: the repository root is two levels up. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const at = (path: string) => join(ROOT, path)
const read = (path: string) => readFileSync(at(path), 'utf8')
const readYaml = (path: string) => yaml.load(read(path)) as Record<string, unknown>

/**
 * docs/metrics.md: each metric with its labels (histograms also yield _bucket{le}, _sum,
 * _count). Prometheus adds `instance` and `job` to every series it scrapes.
 */
const SPEC_METRICS: Record<string, { labels: string[]; histogram?: true; values?: Record<string, string[]> }> = {
  gatehouse_http_requests_total: { labels: ['route', 'method', 'status'] },
  gatehouse_http_request_duration_seconds: { labels: ['route'], histogram: true },
  gatehouse_upstream_duration_seconds: { labels: ['route'], histogram: true },
  gatehouse_auth_attempts_total: {
    labels: ['method', 'result'],
    values: { method: ['session', 'pat', 'jwt', 'password', 'oidc', 'passkey'], result: ['success', 'failure'] },
  },
  gatehouse_decisions_total: {
    labels: ['route', 'outcome'],
    values: { outcome: ['allow', 'unauthenticated', 'forbidden', 'rate_limited', 'error'] },
  },
  gatehouse_login_lockouts_total: { labels: [] },
  gatehouse_mfa_attempts_total: {
    labels: ['method', 'result'],
    values: { method: ['totp', 'webauthn', 'recovery'], result: ['success', 'failure'] },
  },
  gatehouse_config_reloads_total: { labels: ['result'], values: { result: ['success', 'failure'] } },
  gatehouse_tls_cert_expiry_seconds: { labels: [] },
  gatehouse_rate_limited_total: { labels: ['route'] },
  gatehouse_circuit_state: { labels: ['breaker'] },
  gatehouse_active_sessions: { labels: [] },
  gatehouse_forward_auth_total: {
    labels: ['outcome'],
    values: { outcome: ['allow', 'unauthenticated', 'forbidden', 'rate_limited', 'error'] },
  },
  gatehouse_emails_total: {
    labels: ['kind', 'result'],
    values: { kind: ['reset', 'verification', 'password_changed'], result: ['sent', 'failed'] },
  },
  gatehouse_websocket_connections: { labels: ['route'] },
  gatehouse_websocket_closed_total: {
    labels: ['route', 'reason'],
    values: { reason: ['client', 'upstream', 'revoked', 'expired', 'shutdown'] },
  },
  gatehouse_upstream_server_up: { labels: ['route', 'server'] },
  gatehouse_pat_last_used_flush_failures_total: { labels: [] },
  gatehouse_build_info: { labels: ['version', 'node'] },
}
const SCRAPE_LABELS = ['instance', 'job']
/** prom-client's default process metrics the dashboard shows. */
const DEFAULT_METRICS = ['process_resident_memory_bytes', 'process_cpu_seconds_total', 'nodejs_eventloop_lag_p99_seconds']

interface MetricUse {
  metric: string
  labels: Array<{ name: string; op: string; value: string }>
}

/** The metric a series name belongs to: histogram series lose their suffix. */
function baseMetric(name: string): { base: string; extraLabels: string[] } | null {
  if (SPEC_METRICS[name]) return { base: name, extraLabels: [] }
  const match = /^(.*)_(bucket|sum|count)$/.exec(name)
  if (match && SPEC_METRICS[match[1] as string]?.histogram) return { base: match[1] as string, extraLabels: match[2] === 'bucket' ? ['le'] : [] }
  return null
}

/** Every `gatehouse_*` selector in a PromQL expression, with its label matchers. */
function metricUses(expr: string): MetricUse[] {
  const uses: MetricUse[] = []
  for (const match of expr.matchAll(/\b(gatehouse_[a-z0-9_]+)(\{([^}]*)\})?/g)) {
    const labels = [...(match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)].map((m) => ({
      name: m[1] as string,
      op: m[2] as string,
      value: m[3] as string,
    }))
    uses.push({ metric: match[1] as string, labels })
  }
  return uses
}

/** Checks one PromQL expression against the metrics reference; `where` names it in failures. */
function checkExpression(t: Test, expr: string, where: string): string[] {
  const used: string[] = []
  t.ok(balanced(expr), `${where}: parentheses, brackets, braces and quotes balance`)
  for (const use of metricUses(expr)) {
    const found = baseMetric(use.metric)
    if (found === null) {
      t.fail(`${where}: ${use.metric} is not a the metrics reference metric`)
      continue
    }
    used.push(found.base)
    const spec = SPEC_METRICS[found.base]!
    const allowed = [...spec.labels, ...found.extraLabels, ...SCRAPE_LABELS]
    for (const label of use.labels) {
      if (label.value.startsWith('$')) continue
      t.ok(allowed.includes(label.name), `${where}: ${use.metric} has a label ${label.name}`)
      const values = spec.values?.[label.name]
      if (values !== undefined && (label.op === '=' || label.op === '!=')) {
        t.ok(values.includes(label.value), `${where}: ${label.name}="${label.value}" is a value the metrics reference gives ${found.base}`)
      }
      if (values !== undefined && (label.op === '=~' || label.op === '!~')) {
        for (const alternative of label.value.split('|')) {
          t.ok(values.includes(alternative), `${where}: ${label.name}=~ alternative "${alternative}" is a value the metrics reference gives ${found.base}`)
        }
      }
    }
  }
  // Aggregations keep only labels the metric has.
  for (const by of expr.matchAll(/\bby\s*\(([^)]*)\)/g)) {
    for (const label of (by[1] as string).split(',').map((name) => name.trim()).filter(Boolean)) {
      const known = Object.values(SPEC_METRICS).some((spec) => spec.labels.includes(label)) || [...SCRAPE_LABELS, 'le'].includes(label)
      t.ok(known, `${where}: aggregation label ${label} is a label of the SPEC metrics`)
    }
  }
  return used
}

function balanced(expr: string): boolean {
  const stack: string[] = []
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' }
  let quoted = false
  for (let i = 0; i < expr.length; i++) {
    const char = expr[i] as string
    if (quoted) {
      if (char === '\\') i++
      else if (char === '"') quoted = false
      continue
    }
    if (char === '"') quoted = true
    else if ('([{'.includes(char)) stack.push(char)
    else if (char in pairs && stack.pop() !== pairs[char]) return false
  }
  return stack.length === 0 && !quoted
}

t.test('the metric list here is docs/metrics.md, and what a fresh gateway registers', async (t) => {
  const reference = read('docs/metrics.md')
  const named = new Set(reference.match(/gatehouse_[a-z0-9_]+/g) ?? [])
  t.same([...named].sort(), Object.keys(SPEC_METRICS).sort(), 'the same metric names')
  for (const [name, { labels }] of Object.entries(SPEC_METRICS)) {
    if (labels.length > 0) t.match(reference, `\`${name}{${labels.join(',')}}\``, `${name} has labels ${labels.join(', ')} in docs/metrics.md`)
    else t.match(reference, `| \`${name}\` |`, `${name} has no labels in docs/metrics.md`)
  }
  const registered = new GatewayMetrics().registry.getMetricsAsArray()
    .filter((metric) => metric.name.startsWith('gatehouse_'))
    .map((metric) => [metric.name, [...((metric as unknown as { labelNames?: string[] }).labelNames ?? [])]] as const)
  t.same(Object.fromEntries(registered), Object.fromEntries(Object.entries(SPEC_METRICS).map(([name, spec]) => [name, spec.labels])),
    'the gateway registers exactly these metrics, with these labels')
})

t.test('Prometheus scrape config', async (t) => {
  const config = readYaml('deploy/prometheus/prometheus.yml') as {
    rule_files: string[]
    scrape_configs: Array<{ job_name: string; metrics_path?: string; dns_sd_configs?: Array<{ names: string[]; port: number }> }>
  }
  t.same(config.rule_files, ['alerts.yml'], 'loads the alert rules next to it')
  t.ok(existsSync(at('deploy/prometheus/alerts.yml')), 'the rule file exists')
  const job = config.scrape_configs.find((scrape) => scrape.job_name === 'gatehouse')
  t.ok(job, 'a gatehouse job')
  t.equal(job?.metrics_path, '/metrics')
  t.same(job?.dns_sd_configs?.[0]?.names, ['gateway'], 'finds every replica of the compose service')
  t.equal(job?.dns_sd_configs?.[0]?.port, 9464, 'on the metrics port of SPEC §2')
  t.notMatch(read('deploy/prometheus/prometheus.yml').replace(/^\s*#.*$/gm, ''), /gatehouse_[a-z]/, 'no metric names to check there')
})

t.test('alert rules use the metrics reference metrics and cover the required alerts', async (t) => {
  const rules = readYaml('deploy/prometheus/alerts.yml') as {
    groups: Array<{ name: string; rules: Array<{ alert?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }> }>
  }
  const all = rules.groups.flatMap((group) => group.rules)
  const used = new Set<string>()
  for (const rule of all) {
    t.ok(rule.alert, 'every rule is an alert')
    t.type(rule.expr, 'string', `${rule.alert} has an expression`)
    t.ok(['warning', 'critical'].includes(rule.labels?.severity ?? ''), `${rule.alert} has a severity`)
    t.ok(rule.annotations?.summary && rule.annotations.description, `${rule.alert} has a summary and a description`)
    if (rule.for !== undefined) t.match(rule.for, /^\d+[smh]$/, `${rule.alert}: for is a duration`)
    for (const metric of checkExpression(t, rule.expr, rule.alert ?? '?')) used.add(metric)
  }
  const names = all.map((rule) => rule.alert)
  t.equal(new Set(names).size, names.length, 'alert names are unique')
  const required: Array<[string, string, string]> = [
    ['error rate', 'GatehouseHighErrorRate', 'gatehouse_http_requests_total'],
    ['breaker open', 'GatehouseStoreCircuitOpen', 'gatehouse_circuit_state'],
    ['upstream breaker open', 'GatehouseUpstreamCircuitOpen', 'gatehouse_circuit_state'],
    ['login failure spike', 'GatehouseLoginFailureSpike', 'gatehouse_auth_attempts_total'],
    ['rate-limit spike', 'GatehouseRateLimitSpike', 'gatehouse_rate_limited_total'],
  ]
  for (const [what, alert, metric] of required) {
    const rule = all.find((candidate) => candidate.alert === alert)
    t.ok(rule, `an alert for ${what}`)
    t.match(rule?.expr ?? '', metric, `${alert} is on ${metric}`)
  }
  t.match(all.find((rule) => rule.alert === 'GatehouseStoreCircuitOpen')?.expr ?? '', /== 2/, 'open is state 2 (the metrics reference)')

  // Every alert has a promtool unit test that makes it fire.
  const tests = readYaml('deploy/prometheus/alerts.test.yml') as {
    rule_files: string[]
    tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }>; input_series: Array<{ series: string }> }>
  }
  t.same(tests.rule_files, ['alerts.yml'])
  const fired = new Set(tests.tests.flatMap((test) => (test.alert_rule_test ?? []).filter((c) => c.exp_alerts.length > 0).map((c) => c.alertname)))
  for (const name of names) t.ok(fired.has(name as string), `alerts.test.yml makes ${name} fire`)
  for (const test of tests.tests) {
    for (const input of test.input_series) checkExpression(t, input.series, `alerts.test.yml series ${input.series}`)
  }
  t.ok(used.size >= 7, `the rules use ${used.size} of the SPEC metrics`)
})

/** `name{a="b",c="d"}` of a promtool input series. */
function parseSeries(text: string): { name: string; labels: Record<string, string> } {
  const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$/.exec(text.trim())
  const labels = Object.fromEntries([...(match?.[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]))
  return { name: match?.[1] ?? text, labels }
}

t.test('the alert rules\' unit tests start from the series a freshly started gateway exposes', async (t) => {
  const upstream = 'http://127.0.0.1:9001'
  const gateway = await startTestGateway(t, {
    configure: (raw) => {
      raw.routes = [
        { name: 'whoami', match: '/whoami', upstream, permissions: ['app:read'] },
        { name: 'public', match: '/public', upstream, auth: 'public' },
      ]
    },
  })
  const fresh = parsePrometheus(await gateway.metrics.exposition())
  // SPEC §9: counters with a result or outcome label start at 0 for every value.
  for (const method of SPEC_METRICS.gatehouse_auth_attempts_total!.values!.method!) {
    for (const result of ['success', 'failure']) t.equal(fresh.value('gatehouse_auth_attempts_total', { method, result }), 0, `auth ${method} ${result} at 0`)
  }
  for (const route of ['whoami', 'public']) {
    for (const outcome of SPEC_METRICS.gatehouse_decisions_total!.values!.outcome!) {
      t.equal(fresh.value('gatehouse_decisions_total', { route, outcome }), 0, `decisions ${route} ${outcome} at 0`)
    }
    t.equal(fresh.value('gatehouse_rate_limited_total', { route }), 0, `rate_limited ${route} at 0`)
  }
  for (const result of ['success', 'failure']) t.equal(fresh.value('gatehouse_config_reloads_total', { result }), 0, `reloads ${result} at 0`)
  t.equal(fresh.value('gatehouse_login_lockouts_total'), 0)
  const version = (JSON.parse(read('package.json')) as { version: string }).version
  t.equal(fresh.value('gatehouse_build_info', { version, node: process.version }), 1, 'build_info names the version and Node')

  const zeroed = ['gatehouse_auth_attempts_total', 'gatehouse_config_reloads_total', 'gatehouse_decisions_total', 'gatehouse_rate_limited_total', 'gatehouse_login_lockouts_total']
  const key = (labels: Record<string, string>) => JSON.stringify(Object.entries(labels).filter(([name]) => !SCRAPE_LABELS.includes(name)).sort())
  const tests = readYaml('deploy/prometheus/alerts.test.yml') as { tests: Array<{ name: string; input_series: Array<{ series: string; values: string }> }> }
  let checked = 0
  for (const test of tests.tests) {
    // One test shows on purpose what happens to a series that appears with its first event.
    if (test.name.startsWith('why counters start at 0')) continue
    const inputs = test.input_series.map((input) => ({ ...parseSeries(input.series), series: input.series, values: String(input.values) }))
    for (const metric of zeroed) {
      const used = inputs.filter((input) => input.name === metric)
      for (const instance of new Set(used.map((input) => input.labels.instance))) {
        const mine = used.filter((input) => input.labels.instance === instance)
        const routes = new Set(mine.map((input) => input.labels.route))
        const expected = fresh.select(metric).filter((sample) => sample.labels.route === undefined || routes.has(sample.labels.route))
        t.same(mine.map((input) => key(input.labels)).sort(), expected.map((sample) => key(sample.labels)).sort(),
          `${test.name}: ${instance} has every ${metric} series a fresh gateway exposes`)
        for (const input of mine) t.match(input.values, /^0(\D|$)/, `${test.name}: ${input.series} starts at 0`)
        checked++
      }
    }
  }
  t.ok(checked >= 5, `${checked} groups of counter series checked`)
})

t.test('the Grafana dashboard parses and shows the the metrics reference metrics', async (t) => {
  const text = read('deploy/grafana/dashboards/gatehouse.json')
  let dashboard: {
    uid: string
    title: string
    panels: Array<{ id: number; type: string; title: string; gridPos: { x: number; w: number; h: number; y: number }; targets?: Array<{ expr: string; refId: string }> }>
    templating: { list: Array<{ name: string }> }
  }
  try {
    dashboard = JSON.parse(text)
  } catch (error) {
    t.fail(`gatehouse.json is not JSON: ${String(error)}`)
    return
  }
  t.equal(dashboard.uid, 'gatehouse-overview')
  t.ok(dashboard.title)
  const ids = dashboard.panels.map((panel) => panel.id)
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique')
  const variables = new Set(['__rate_interval', '__interval', '__range', ...dashboard.templating.list.map((variable) => variable.name)])
  const used = new Set<string>()
  for (const panel of dashboard.panels) {
    t.ok(panel.gridPos.x + panel.gridPos.w <= 24, `${panel.title} fits the 24-column grid`)
    if (panel.type === 'row') continue
    t.ok((panel.targets ?? []).length > 0, `${panel.title} has a query`)
    for (const target of panel.targets ?? []) {
      for (const metric of checkExpression(t, target.expr, `${panel.title} ${target.refId}`)) used.add(metric)
      for (const other of target.expr.match(/\b(process|nodejs)_[a-z0-9_]+/g) ?? []) {
        t.ok(DEFAULT_METRICS.includes(other), `${panel.title}: ${other} is a prom-client default metric`)
      }
      for (const reference of target.expr.matchAll(/\$(\w+)/g)) {
        t.ok(variables.has(reference[1] as string), `${panel.title}: $${reference[1]} is defined`)
      }
    }
  }
  t.same([...used].sort(), Object.keys(SPEC_METRICS).sort(), 'the dashboard shows every the metrics reference metric')
  const provisioning = readYaml('deploy/grafana/provisioning/dashboards/gatehouse.yml') as { providers: Array<{ options: { path: string } }> }
  t.equal(provisioning.providers[0]?.options.path, '/etc/gatehouse/dashboards', 'provisioned from where compose mounts it')
  readYaml('deploy/grafana/provisioning/datasources/prometheus.yml')
})

interface ComposeService {
  image?: string
  build?: unknown
  restart?: string
  healthcheck?: { test?: string[] | string; disable?: boolean }
  deploy?: { replicas?: number; resources?: { limits?: { cpus?: string; memory?: string } } }
  environment?: Record<string, string | number | null> | string[]
  env_file?: unknown
  volumes?: Array<string | { type: string; source: string; target: string; read_only?: boolean }>
  ports?: string[]
  expose?: string[]
  command?: string[] | string
  entrypoint?: string[] | string
  profiles?: string[]
  read_only?: boolean
  configs?: Array<{ source: string; target: string }>
}

t.test('compose.prod.yml', async (t) => {
  const compose = readYaml('compose.prod.yml') as {
    services: Record<string, ComposeService>
    configs?: Record<string, { content?: string }>
    volumes: Record<string, unknown>
    networks: Record<string, { internal?: boolean } | null>
  }
  const services = compose.services
  const gateway = services.gateway
  t.ok(gateway, 'a gateway service')
  t.equal(gateway?.deploy?.replicas, 2, 'two gateway replicas')
  t.same(gateway?.command, ['serve'])
  for (const name of ['postgres', 'redis', 'lb', 'whoami']) t.ok(services[name], `a ${name} service`)

  for (const [name, service] of Object.entries(services)) {
    t.ok(['always', 'unless-stopped', 'on-failure'].includes(service.restart ?? ''), `${name} has a restart policy`)
    const test = service.healthcheck?.test
    t.ok(service.healthcheck?.disable !== true && Array.isArray(test) && test.length > 1 && test[0] !== 'NONE', `${name} has a healthcheck`)
    t.ok(service.deploy?.resources?.limits?.cpus, `${name} has a CPU limit`)
    t.ok(service.deploy?.resources?.limits?.memory, `${name} has a memory limit`)
  }

  // Named volumes: the stores' data and the identity keys the replicas share.
  const namedVolume = (service: string, target: string) => {
    const volume = services[service]?.volumes?.find((entry) => typeof entry === 'object' && entry.target === target)
    return typeof volume === 'object' && volume.type === 'volume' && Object.hasOwn(compose.volumes, volume.source) ? volume.source : null
  }
  t.ok(namedVolume('postgres', '/var/lib/postgresql/data'), 'PostgreSQL keeps its data in a named volume')
  t.ok(namedVolume('redis', '/data'), 'Redis keeps its data in a named volume')
  t.ok(namedVolume('gateway', '/var/lib/gatehouse/keys'), 'the identity keys live in a named volume shared by the replicas')
  const redisCommand = Array.isArray(services.redis?.command) ? services.redis.command : []
  t.equal(redisCommand[0], 'redis-server', 'Redis runs as its own user (the entrypoint drops root for redis-server)')
  t.equal(redisCommand[redisCommand.indexOf('--appendonly') + 1], 'yes', 'Redis persists sessions (SPEC §7)')
  // The password is kept off the command line (ps shows it to every user of the host): a
  // config file made by compose from .env holds it.
  t.notOk(redisCommand.some((arg) => /requirepass|PASSWORD/i.test(arg)), 'no password on the redis-server command line')
  const authConfig = services.redis?.configs?.find((config) => config.target === redisCommand[1])
  t.ok(authConfig, 'redis-server reads a config file mounted from configs')
  t.match(compose.configs?.[authConfig?.source ?? '']?.content, /^requirepass "\$\{REDIS_PASSWORD:\?[^}]*\}"\n?$/, 'holding the password from .env')
  t.notMatch(JSON.stringify(services.gateway?.command ?? []), /PASSWORD/, 'no password on the gateway command line either')

  // The gateway gets every variable its config reads.
  const gatewayEnvironment = services.gateway?.environment ?? {}
  const passed = Array.isArray(gatewayEnvironment) ? gatewayEnvironment.map((entry) => entry.split('=')[0]) : Object.keys(gatewayEnvironment)
  const reads = new Set([...read('deploy/gateway.prod.yml').replace(/^\s*#.*$/gm, '').matchAll(/(?<!\$)\$\{([A-Z0-9_]+)/g)].map((match) => match[1] as string))
  t.ok(reads.has('SESSION_IDLE_TIMEOUT') && reads.has('SESSION_ABSOLUTE_TIMEOUT'), 'the config reads the session timeouts')
  for (const name of reads) t.ok(passed.includes(name), `compose passes ${name}, which deploy/gateway.prod.yml reads, to the gateway`)

  // Mounted, read-only: the config and the TLS files.
  const mount = (service: string, target: string) =>
    services[service]?.volumes?.find((entry) => typeof entry === 'object' && entry.target === target) as { type: string; read_only?: boolean } | undefined
  t.match(mount('gateway', '/etc/gatehouse/gateway.yml'), { type: 'bind', read_only: true }, 'the config is mounted read-only')
  t.match(mount('gateway', '/etc/gatehouse/tls'), { type: 'bind', read_only: true }, 'the TLS files are mounted read-only')

  // One published port, the balancer's; metrics and the stores are never published.
  for (const [name, service] of Object.entries(services)) {
    for (const port of service.ports ?? []) {
      if (name === 'lb') continue
      t.match(port, /^127\.0\.0\.1:/, `${name} publishes ${port} on loopback only`)
    }
    t.notOk((service.ports ?? []).some((port) => /9464/.test(port)), `${name} does not publish the metrics port`)
  }
  t.equal(services.lb?.ports?.length, 1, 'the balancer publishes one port')
  t.equal(compose.networks.backend?.internal, true, 'the stores sit on an internal network')
  t.notOk(services.postgres?.ports ?? services.redis?.ports, 'the stores publish nothing')

  // No secret written in the file: secret-looking variables are bare ${…} references
  // (without a default), and no URL carries a password.
  const secretName = /PASSWORD|SECRET|TOKEN|PRIVATE|(^|_)KEY$/i
  for (const [name, service] of Object.entries(services)) {
    t.notOk(service.env_file, `${name} reads no env file besides .env interpolation`)
    const environment = Array.isArray(service.environment)
      ? Object.fromEntries(service.environment.map((entry) => entry.split(/=(.*)/s).slice(0, 2)))
      : service.environment ?? {}
    for (const [key, value] of Object.entries(environment)) {
      if (!secretName.test(key)) continue
      t.match(String(value), /^\$\{[A-Z0-9_]+(:?\?[^}]*)?\}$/, `${name}.environment.${key} is a reference to .env, not a value`)
    }
  }
  const strings: string[] = []
  const walk = (value: unknown): void => {
    if (typeof value === 'string') strings.push(value)
    else if (Array.isArray(value)) value.forEach(walk)
    else if (value !== null && typeof value === 'object') Object.values(value).forEach(walk)
  }
  walk(compose)
  for (const text of strings) {
    t.notMatch(text, /:\/\/[^\s/:@]*:(?!\$)[^\s@]+@/, `no password in a URL: ${text.slice(0, 60)}`)
    t.notMatch(text, /-----BEGIN|requirepass\s+(?!"?\$)/, `no key or password in: ${text.slice(0, 60)}`)
  }

  // Every variable the file needs is in .env.example, and the secrets there are placeholders.
  const example = Object.fromEntries(
    read('.env.example').split('\n').filter((line) => /^[A-Z0-9_]+=/.test(line)).map((line) => line.split(/=(.*)/s).slice(0, 2)),
  ) as Record<string, string>
  const referenced = new Set([...read('compose.prod.yml').matchAll(/(?<!\$)\$\{([A-Z0-9_]+)/g)].map((match) => match[1] as string))
  for (const name of referenced) t.ok(Object.hasOwn(example, name), `.env.example lists ${name}`)
  for (const [name, value] of Object.entries(example)) {
    if (secretName.test(name)) t.equal(value, 'change-me', `.env.example holds no real ${name}`)
  }
  t.ok(read('.gitignore').split('\n').includes('.env'), '.env is git-ignored')

  // The whoami example is the upstream, from the same image.
  t.same(services.whoami?.entrypoint, ['node', '/app/dist/examples/whoami/main.js'])
  t.match(read('deploy/haproxy/haproxy.cfg'), /mode tcp/, 'the balancer works at layer 4')
  t.match(read('deploy/haproxy/haproxy.cfg'), /server-template gateway \S+ gateway:8443/, 'and balances over the gateway replicas')
  t.match(read('deploy/haproxy/haproxy.cfg'), /uri \/health\/live/, 'checking their liveness')
})

t.test('deploy/gateway.prod.yml passes the gateway\'s validation', async (t) => {
  const env = {
    PUBLIC_URL: 'https://gatehouse.localhost:8443',
    POSTGRES_USER: 'gatehouse',
    POSTGRES_PASSWORD: 'pw',
    POSTGRES_DB: 'gatehouse',
    REDIS_PASSWORD: 'pw2',
  }
  const config = parseConfig(read('deploy/gateway.prod.yml'), { source: '/etc/gatehouse/gateway.yml', env })
  t.equal(config.storage.database, 'postgres://gatehouse:pw@postgres:5432/gatehouse', 'PostgreSQL from the environment')
  t.equal(config.storage.sessions, 'redis://:pw2@redis:6379/0', 'Redis from the environment')
  t.equal(config.metrics.host, '0.0.0.0', 'metrics reachable by Prometheus on the compose network')
  t.equal(config.metrics.port, 9464)
  t.equal(config.server.port, 8443)
  t.same(config.server.trust_proxy, [], 'nothing behind a layer-4 balancer is trusted for X-Forwarded-For')
  t.equal(config.identity.signing_key_file, '/var/lib/gatehouse/keys/identity-keys.json', 'keys in the shared volume')
  t.match(config.server.tls, { cert: /^\/etc\/gatehouse\/tls\//, key: /^\/etc\/gatehouse\/tls\// }, 'TLS files in the read-only mount')
  t.ok(config.routes.every((route) => route.upstream === 'http://whoami:9001'), 'routes lead to the whoami service')
  t.equal(config.auth.registration, 'closed', 'closed registration by default')
  t.notMatch(read('deploy/gateway.prod.yml'), /(PASSWORD|SECRET)[^}\n]*:-/, 'no secret has a default value')
  t.throws(() => parseConfig(read('deploy/gateway.prod.yml'), { source: '/etc/gatehouse/gateway.yml', env: {} }), /POSTGRES_PASSWORD is not set/,
    'refused when the secrets are missing')
})

t.test('Dockerfile and .dockerignore', async (t) => {
  const dockerfile = read('Dockerfile')
  const lines = dockerfile.split('\n').filter((line) => !/^\s*#/.test(line))
  const code = lines.join('\n').replace(/\\\n/g, ' ')
  const stages = [...code.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)].map((match) => ({ image: match[1], name: match[2] }))
  t.ok(stages.length >= 3, 'multi-stage')
  t.match(code, /^ARG NODE_IMAGE=node:24-bookworm-slim$/m, 'on node:24-bookworm-slim, the current LTS')
  // The image's Node must satisfy package.json's engines (which also admits the Node 20 of CI).
  const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node
  const minimum = /^>=(\d+)\.(\d+)$/.exec(engines)
  t.ok(minimum && Number(minimum[1]) <= 24, `engines ${engines} admits the image's Node 24`)
  t.ok(stages.every((stage) => stage.image === '${NODE_IMAGE}' || stages.some((other) => other.name === stage.image)), 'every stage starts from it')
  const runtimeStart = code.lastIndexOf('\nFROM ')
  const runtime = code.slice(runtimeStart)
  t.match(code, /npm ci --omit=dev/, 'a stage installs production dependencies only')
  t.match(runtime, /COPY --from=prod-deps \/app\/node_modules \.\/node_modules/, 'the image gets those, with the compiled argon2')
  t.notMatch(runtime, /npm (ci|install)|apt-get/, 'the runtime stage installs nothing (no compiler, no dev dependencies)')
  t.match(code, /python3 make g\+\+/, 'argon2 is compiled in a build stage')
  const users = [...runtime.matchAll(/^USER\s+(\S+)/gm)].map((match) => match[1])
  t.ok(users.length > 0 && !['root', '0', '0:0'].includes(users.at(-1) as string), 'the image runs as a non-root user')
  t.match(runtime, /^HEALTHCHECK .*CMD \["node", "\/app\/deploy\/healthcheck\.mjs"\]/m, 'a HEALTHCHECK with the probe script')
  t.match(read('deploy/healthcheck.mjs'), /'https:\/\/127\.0\.0\.1:8443\/health\/live'/, 'which asks /health/live by default')
  t.match(runtime, /^ENTRYPOINT \["node", "\/app\/dist\/src\/bin\.js"\]/m, 'the entrypoint is the gatehouse command')
  t.match(runtime, /^CMD \["serve"\]/m)
  // No key material, config or environment baked in.
  const copies = [...code.matchAll(/^(?:COPY|ADD)\s+(.*)$/gm)].map((match) => match[1] as string)
  for (const copy of copies) {
    t.notMatch(copy, /certs|\.pem|\.key|\.crt|identity-keys|\.env|gateway(\.prod)?\.yml|data\//, `copies no secret or config: ${copy}`)
  }
  t.notMatch(code, /^ADD\s/m, 'COPY, not ADD')
  const ignore = read('.dockerignore').split('\n').map((line) => line.trim())
  t.equal(ignore.find((line) => line !== '' && !line.startsWith('#')), '*', '.dockerignore starts from nothing')
  for (const pattern of ['**/*.key', '**/identity-keys.json', '**/.env']) t.ok(ignore.includes(pattern), `.dockerignore keeps out ${pattern}`)
  for (const allowed of ignore.filter((line) => line.startsWith('!'))) {
    t.notMatch(allowed, /certs|data|\.env|gateway\.yml/, `the context lets in no secret: ${allowed}`)
  }
})

function runProbe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [at('deploy/healthcheck.mjs'), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.on('error', reject)
    child.on('exit', (code) => resolve({ code, stderr }))
  })
}

t.test('the container HEALTHCHECK probe', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-probe-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  await ensureDevCertificate(join(dir, 'tls.crt'), join(dir, 'tls.key'))
  let status = 200
  const server: Server = createServer({ cert: readFileSync(join(dir, 'tls.crt')), key: readFileSync(join(dir, 'tls.key')) }, (request, response) => {
    response.writeHead(request.url === '/health/live' ? status : 404, { 'content-type': 'application/json' }).end('{"status":"ok"}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.address() as AddressInfo
  const live = `https://127.0.0.1:${port}/health/live`

  t.equal((await runProbe([live])).code, 0, '200 over a self-signed certificate: healthy')
  t.equal((await runProbe([], { HEALTHCHECK_URL: live })).code, 0, 'the URL may come from HEALTHCHECK_URL')
  status = 503
  const unhealthy = await runProbe([live])
  t.equal(unhealthy.code, 1, '503: unhealthy')
  t.match(unhealthy.stderr, /HTTP 503/)
  t.equal((await runProbe([`https://127.0.0.1:${port}/elsewhere`])).code, 1, '404: unhealthy')
  server.closeAllConnections()
  const closed = await new Promise<number>((resolve) => {
    const probe = createServer()
    probe.listen(0, '127.0.0.1', () => {
      const free = (probe.address() as AddressInfo).port
      probe.close(() => resolve(free))
    })
  })
  t.equal((await runProbe([`https://127.0.0.1:${closed}/health/live`])).code, 1, 'nothing listening: unhealthy')
})

const promtool = process.env.PROMTOOL || 'promtool'
const promtoolSkip = spawnSync(promtool, ['--version'], { stdio: 'ignore' }).error === undefined
  ? false
  : 'promtool is not installed (set PROMTOOL to its path to run these checks)'

t.test('promtool checks, when promtool is here', { skip: promtoolSkip }, async (t) => {
  const run = (...args: string[]) => spawnSync(promtool, args, { cwd: at('deploy/prometheus'), encoding: 'utf8' })
  for (const args of [['check', 'config', 'prometheus.yml'], ['check', 'rules', 'alerts.yml'], ['test', 'rules', 'alerts.test.yml']]) {
    const result = run(...args)
    t.equal(result.status, 0, `promtool ${args.join(' ')}\n${result.stdout}${result.stderr}`)
  }
  // The dashboard's queries, with Grafana's variables filled in, as recording rules.
  const dashboard = JSON.parse(read('deploy/grafana/dashboards/gatehouse.json')) as { panels: Array<{ targets?: Array<{ expr: string }> }> }
  const exprs = dashboard.panels.flatMap((panel) => panel.targets ?? []).map((target) =>
    target.expr.replaceAll('$__rate_interval', '5m').replace(/\$(instance|route)\b/g, '.*'))
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-dashboard-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'dashboard-rules.yml')
  writeFileSync(file, yaml.dump({ groups: [{ name: 'dashboard', rules: exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }] }))
  const result = spawnSync(promtool, ['check', 'rules', file], { encoding: 'utf8' })
  t.equal(result.status, 0, `the dashboard's ${exprs.length} queries parse as PromQL\n${result.stdout}${result.stderr}`)
})

t.test('compose\'s Redis: the password from its config file, none on the command line, reached through |url', { skip: haveRedisServer('the compose Redis check') ? false : 'redis-server is not installed' }, async (t) => {
  const password = 'p@ss/w:rd?# with spaces'
  const compose = readYaml('compose.prod.yml') as { services: Record<string, ComposeService>; configs: Record<string, { content: string }> }
  const redisCommand = compose.services.redis?.command as string[]
  const source = compose.services.redis?.configs?.find((config) => config.target === redisCommand[1])?.source ?? ''
  // What compose writes: the content with ${REDIS_PASSWORD:?…} filled from .env.
  const content = compose.configs[source]?.content.replace(/\$\{REDIS_PASSWORD:\?[^}]*\}/, password) ?? ''
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-compose-redis-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'auth.conf'), content)
  const port = await freePort()
  const child = spawn('redis-server', [join(dir, 'auth.conf'), '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  })
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  await new Promise<void>((resolve, reject) => {
    let output = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('Ready to accept connections')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)))
  })
  t.notMatch(readFileSync(`/proc/${child.pid}/cmdline`, 'utf8'), /p@ss/, 'the password is not on the command line')

  const env = { PUBLIC_URL: 'https://gatehouse.localhost:8443', POSTGRES_USER: 'gatehouse', POSTGRES_PASSWORD: password, POSTGRES_DB: 'gatehouse', REDIS_PASSWORD: password }
  const config = parseConfig(read('deploy/gateway.prod.yml'), { source: '/etc/gatehouse/gateway.yml', env })
  const url = config.storage.sessions.replace('@redis:6379', `@127.0.0.1:${port}`)
  const store = await openKeyValueStore(url, { connectTimeoutMs: 5_000 })
  t.teardown(() => store.close())
  await t.resolves(store.ping(), 'the gateway\'s URL authenticates with the password, percent-encoded')
  const wrong = openKeyValueStore(`redis://:wrong@127.0.0.1:${port}/0`, { connectTimeoutMs: 1_000 })
  await t.rejects(wrong, 'a wrong password is refused: the config file is in force')
  t.equal(new URL(config.storage.database).hostname, 'postgres', 'the database URL keeps its host whatever the password holds')
})
