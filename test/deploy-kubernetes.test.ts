/**
 * The Kubernetes manifests under deploy/kubernetes, checked without a cluster.
 *
 * Checked: every YAML document is a Kubernetes object that kubernetes-models validates
 * against the API's schemas (types, required fields, enums, formats); kustomization.yaml
 * lists exactly the manifest files; and our own rules: two or more replicas; liveness on
 * /health/live and readiness on /health/ready, over HTTPS exactly when the ConfigMap's
 * gateway.yml has TLS, on the container port that is its server.port; the metrics port is
 * its metrics.port; the Services and the PodDisruptionBudget select the pod's labels and
 * name ports the container has; the budget leaves a replica to drain; a non-root, read-only,
 * capability-less container with CPU and memory requests and limits and no `latest` image;
 * GATEHOUSE_CONFIG names the mounted ConfigMap key; the gateway.yml passes the gateway's
 * own validation (each ${file:…} replaced by a placeholder: those files exist only in a
 * pod); every file it names (${file:…}, TLS, identity keys) is under a read-only Secret
 * mount, and a Secret volume that lists items lists that key; no Secret data is committed.
 *
 * Not checked (no cluster here): that the API server admits the objects (admission
 * plugins, Pod Security, quotas), that the image exists, that the Secrets, the PostgreSQL
 * and Redis Sentinel addresses exist, that the probes answer in a running pod, or what
 * `kustomize build` makes of the directory.
 */
import { readdirSync, readFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import yaml from 'js-yaml'
import { Deployment } from 'kubernetes-models/apps/v1'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1'
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1'
import type { IContainer, IVolume } from 'kubernetes-models/v1'
import t from 'tap'
import { parseConfig } from '../src/config/index.js'

const DIR = fileURLToPath(new URL('../../deploy/kubernetes/', import.meta.url))
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
}

interface Document {
  file: string
  apiVersion: string
  kind: string
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- raw YAML, typed by the model checks below
  [key: string]: any
}

const manifestFiles = readdirSync(DIR).filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml').sort()
const documents: Document[] = manifestFiles.flatMap((file) =>
  yaml.loadAll(readFileSync(join(DIR, file), 'utf8')).filter((doc) => doc !== null).map((doc) => ({ ...(doc as Document), file })))
const only = (kind: string): Document[] => documents.filter((doc) => doc.kind === kind)

t.test('every document is a Kubernetes object its schema accepts', async (t) => {
  t.ok(documents.length >= 5, `${documents.length} documents in ${manifestFiles.join(', ')}`)
  for (const doc of documents) {
    const { file, ...object } = doc
    const Model = MODELS[`${doc.apiVersion}/${doc.kind}`]
    if (Model === undefined) {
      t.fail(`${file}: no model for ${doc.apiVersion} ${doc.kind}`)
      continue
    }
    t.doesNotThrow(() => new Model(object as never).validate(), `${file}: ${doc.kind} ${doc.metadata?.name}`)
  }
  const kustomization = yaml.load(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8')) as { resources: string[] }
  t.same([...kustomization.resources].sort(), manifestFiles, 'kustomization.yaml lists every manifest')
})

t.test('the schema check catches a broken manifest', async (t) => {
  // The check above must be able to fail: a probe port that is neither a number nor a name.
  const { file: _deploymentFile, ...deployment } = structuredClone(only('Deployment')[0]!)
  deployment.spec.template.spec.containers[0].livenessProbe.httpGet.port = { not: 'a port' }
  t.throws(() => new Deployment(deployment as never).validate())
  const { file: _serviceFile, ...service } = structuredClone(only('Service')[0]!)
  service.spec.type = 'Sideways'
  t.throws(() => new Service(service as never).validate())
})

const [deployment] = only('Deployment')
const pod = deployment?.spec.template
const container: IContainer = pod?.spec.containers[0]
const podLabels: Record<string, string> = pod?.metadata.labels ?? {}
const selects = (selector: Record<string, string>) => Object.entries(selector).every(([key, value]) => podLabels[key] === value)

/** The ConfigMap's gateway.yml, as the gateway reads it, `${file:…}` references replaced. */
function gatewayConfig() {
  const configMaps = only('ConfigMap')
  const text: string = configMaps[0]?.data['gateway.yml']
  const placeholder = text.replace(/\$\{file:[^}]*\}/g, 'placeholder')
  return { text, config: parseConfig(placeholder, { source: join(os.tmpdir(), 'gatehouse-k8s', 'gateway.yml'), env: {} }) }
}

function containerPort(port: string | number): number | undefined {
  if (typeof port === 'number') return port
  return container.ports?.find((p) => p.name === port)?.containerPort
}

t.test('one Deployment of at least two replicas, its probes on the ports and paths gateway.yml serves', async (t) => {
  t.equal(only('Deployment').length, 1)
  t.ok(deployment!.spec.replicas >= 2, `replicas: ${deployment!.spec.replicas}`)
  t.ok(selects(deployment!.spec.selector.matchLabels), 'the selector matches the pod labels')
  t.equal(deployment!.spec.strategy.rollingUpdate.maxUnavailable, 0, 'a rolling update keeps every replica until its successor is ready')
  const { config } = gatewayConfig()
  const scheme = config.server.tls ? 'HTTPS' : 'HTTP'
  for (const [probe, path] of [['livenessProbe', '/health/live'], ['readinessProbe', '/health/ready'], ['startupProbe', '/health/live']] as const) {
    const get = container[probe]?.httpGet
    t.equal(get?.path, path, `${probe} path`)
    t.equal(get?.scheme, scheme, `${probe} scheme`)
    t.equal(get && containerPort(get.port), config.server.port, `${probe} port is server.port`)
  }
  t.equal(containerPort('metrics'), config.metrics.port, 'the metrics port is metrics.port')
  t.not(config.metrics.host, '127.0.0.1', 'metrics listen beyond loopback, for the metrics Service')
})

t.test('Services and the PodDisruptionBudget select the pods', async (t) => {
  const services = only('Service')
  t.ok(services.length >= 1)
  for (const service of services) {
    t.ok(selects(service.spec.selector), `${service.metadata.name} selects the pod labels`)
    for (const port of service.spec.ports) t.ok(containerPort(port.targetPort), `${service.metadata.name}: targetPort ${port.targetPort} is a container port`)
  }
  const metricsService = services.find((s) => s.spec.ports.some((p: { targetPort: string }) => containerPort(p.targetPort) === containerPort('metrics')))
  t.equal(metricsService?.spec.type ?? 'ClusterIP', 'ClusterIP', 'metrics are reachable inside the cluster only')
  const [pdb] = only('PodDisruptionBudget')
  t.ok(pdb, 'a PodDisruptionBudget')
  t.same(pdb!.spec.selector.matchLabels, deployment!.spec.selector.matchLabels, "the budget's selector is the Deployment's")
  t.ok(selects(pdb!.spec.selector.matchLabels), 'and matches the pod labels')
  t.ok(pdb!.spec.minAvailable >= 1 && pdb!.spec.minAvailable < deployment!.spec.replicas, 'it keeps a replica and still lets a node drain')
})

t.test('the container runs as non-root, read-only, without capabilities, within limits', async (t) => {
  t.equal(pod.spec.securityContext.runAsNonRoot, true, 'pod: runAsNonRoot')
  t.ok(pod.spec.securityContext.runAsUser > 0, 'pod: a non-zero uid')
  t.equal(container.securityContext?.runAsNonRoot, true, 'container: runAsNonRoot')
  t.equal(container.securityContext?.allowPrivilegeEscalation, false)
  t.equal(container.securityContext?.readOnlyRootFilesystem, true)
  t.same(container.securityContext?.capabilities?.drop, ['ALL'])
  t.equal(pod.spec.automountServiceAccountToken, false, 'no API token: the gateway never talks to the API server')
  for (const kind of ['requests', 'limits'] as const) {
    for (const resource of ['cpu', 'memory']) t.ok(container.resources?.[kind]?.[resource], `${kind}.${resource}`)
  }
  t.notMatch(container.image ?? '', /:latest$|^[^:]+$/, 'a pinned image tag')
})

t.test('gateway.yml comes from the ConfigMap and its secrets from read-only Secret mounts', async (t) => {
  const { text, config } = gatewayConfig()
  const volumes: IVolume[] = pod.spec.volumes
  const mounts = container.volumeMounts ?? []
  const configVolume = volumes.find((v) => v.configMap?.name === only('ConfigMap')[0]!.metadata.name)
  const configMount = mounts.find((m) => m.name === configVolume?.name)
  const configEnv = container.env?.find((e) => e.name === 'GATEHOUSE_CONFIG')?.value
  t.equal(configEnv, `${configMount?.mountPath}/gateway.yml`, 'GATEHOUSE_CONFIG names the mounted gateway.yml')

  /** The Secret volume and key a path in the container comes from, when it does. */
  const secretFile = (path: string) => {
    const mount = mounts.find((m) => path.startsWith(`${m.mountPath}/`))
    const volume = volumes.find((v) => v.name === mount?.name)
    const key = mount ? path.slice(mount.mountPath.length + 1) : ''
    const listed = volume?.secret?.items === undefined || volume.secret.items.some((item) => item.path === key)
    return { secret: volume?.secret?.secretName, readOnly: mount?.readOnly === true, listed }
  }
  const referenced = [...text.matchAll(/\$\{file:([^}|]+)(?:\|url)?\}/g)].map((m) => m[1]!)
  t.ok(referenced.length >= 2, `secrets read through \${file:…}: ${referenced.join(', ')}`)
  const files = [...referenced, config.server.tls?.cert ?? '', config.server.tls?.key ?? '', config.identity.signing_key_file]
  for (const file of files) {
    const found = secretFile(file)
    t.ok(found.secret, `${file} is in a Secret volume (${found.secret})`)
    t.ok(found.readOnly, `${file} is mounted read-only`)
    t.ok(found.listed, `${file}: the volume's items list its key`)
  }
  t.match(config.storage.database, /^postgres:\/\//, 'PostgreSQL by URL')
  t.match(config.storage.sessions, /^redis(-sentinel)?:\/\//, 'Redis by URL')
  t.notMatch(text, /password:\s*[^$\s]/i, 'no password written in the ConfigMap')
  for (const secret of only('Secret')) t.notOk(secret.data ?? secret.stringData, `${secret.file}: no Secret data is committed`)
})
