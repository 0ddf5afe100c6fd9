/**
 * A private Redis Sentinel deployment for failover tests: a master, one replica and three
 * sentinels (redis-server --sentinel), each on a free port of its own, killed at teardown.
 * The shared Redis (TEST_REDIS_URL) is never involved. Timings are short so that a failover
 * takes a few seconds: a master unanswered for 1 s is down, a failover may take 5 s.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { freePort, startRedisServer } from './private-redis.js'

export const MASTER_NAME = 'gatehouse'
const DOWN_AFTER_MS = 1_000
const FAILOVER_TIMEOUT_MS = 5_000

export interface SentinelSet {
  /** redis-sentinel://… naming the three sentinels and the master name. */
  url: string
  masterPort: number
  replicaPort: number
  /** A client of the master as it is now (for WAIT, inspection). */
  master(): Redis
  /** SIGKILL the master; resolves once the process has exited. */
  killMaster(): Promise<void>
  /** The master's port as the sentinels report it now. */
  reportedMasterPort(): Promise<number>
}

export async function startSentinelSet(t: Test): Promise<SentinelSet> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-sentinel-'))
  const processes: ChildProcess[] = []
  const clients: Redis[] = []
  t.teardown(async () => {
    for (const client of clients) client.disconnect()
    await Promise.all(processes.map(kill))
    await rm(dir, { recursive: true, force: true })
  })
  const client = (port: number): Redis => {
    const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null })
    redis.on('error', () => {})
    clients.push(redis)
    return redis
  }

  // Replication writes an RDB snapshot for the replica's first sync: into the test's directory.
  const masterPort = await freePort()
  processes.push(await startRedisServer(masterPort, ['--dir', dir]))
  const replicaPort = await freePort()
  processes.push(await startRedisServer(replicaPort, ['--dir', dir, '--replicaof', '127.0.0.1', String(masterPort)]))
  const replica = client(replicaPort)
  await until('the replica to sync', async () => /master_link_status:up/.test(await replica.info('replication')))

  const sentinelPorts: number[] = []
  for (let i = 0; i < 3; i++) {
    const port = await freePort()
    const file = path.join(dir, `sentinel-${port}.conf`)
    // Sentinel rewrites its file with what it learns, so each has a writable one of its own.
    await writeFile(file, [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 2`,
      `sentinel down-after-milliseconds ${MASTER_NAME} ${DOWN_AFTER_MS}`,
      `sentinel failover-timeout ${MASTER_NAME} ${FAILOVER_TIMEOUT_MS}`,
      `sentinel parallel-syncs ${MASTER_NAME} 1`,
      '',
    ].join('\n'))
    // SENTINEL_DEBUG=1 shows the sentinels' log (+sdown, +odown, +switch-master) when a failover misbehaves.
    const child = spawn('redis-server', [file, '--sentinel'], { stdio: ['ignore', process.env.SENTINEL_DEBUG ? 'inherit' : 'ignore', 'inherit'] })
    processes.push(child)
    sentinelPorts.push(port)
  }
  const sentinels = sentinelPorts.map(client)
  // A failover needs the quorum to agree and a replica to promote: each sentinel must know
  // the replica and the two others (they find each other through hello messages every 2 s).
  await until('the sentinels to know the replica and each other', async () => {
    for (const sentinel of sentinels) {
      const replicas = (await sentinel.call('SENTINEL', 'REPLICAS', MASTER_NAME)) as unknown[]
      const peers = (await sentinel.call('SENTINEL', 'SENTINELS', MASTER_NAME)) as unknown[]
      if (replicas.length !== 1 || peers.length !== 2) return false
    }
    return true
  }, 30_000)

  let master: Redis | null = null
  return {
    url: `redis-sentinel://${sentinelPorts.map((port) => `127.0.0.1:${port}`).join(',')}/${MASTER_NAME}/0`,
    masterPort,
    replicaPort,
    master() {
      master ??= client(masterPort)
      return master
    },
    killMaster: () => kill(processes[0]!),
    async reportedMasterPort() {
      for (const sentinel of sentinels) {
        try {
          const [, port] = (await sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME)) as [string, string]
          return Number(port)
        } catch {
          // try the next sentinel
        }
      }
      throw new Error('no sentinel answered')
    },
  }
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check().catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGKILL')
  await exited
}
