// A real Redis Sentinel deployment for tests: one primary, one replica and three sentinels, each a
// redis-server process on a free port with its own temporary directory. The sentinels monitor the
// primary as `mymaster` with quorum 2 and short timeouts, so a killed primary is replaced within a
// few seconds.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { callNodeAs, findFreePort, type RedisServerHandle, startRedisServer } from './redis-server.js'

const HOST = '127.0.0.1'
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export interface RedisSentinelOptions {
  masterName?: string
  /** `sentinel down-after-milliseconds`; default 1000. */
  downAfterMs?: number
  /** `sentinel failover-timeout`; default 5000. */
  failoverTimeoutMs?: number
  /** `requirepass` (and `masterauth`) of the data nodes; the sentinels authenticate with it. */
  password?: string
  /** `requirepass` of the sentinels themselves (they use it with each other too). */
  sentinelPassword?: string
}

export interface RedisSentinelHandle {
  readonly masterName: string
  /** For `createRedisConnection({ sentinels, sentinelName })` / REDIS_SENTINELS. */
  readonly sentinels: ReadonlyArray<{ host: string; port: number }>
  /** The primary at start. */
  readonly primary: RedisServerHandle
  /** The replica at start (the primary after a failover). */
  readonly replica: RedisServerHandle
  readonly sentinelServers: readonly RedisServerHandle[]
  /** The master address every sentinel reports; throws when they disagree. */
  currentMaster(): Promise<{ host: string; port: number }>
  /** Resolves once every sentinel reports `port` as the master (after a failover). */
  waitForMaster(port: number, timeoutMs?: number): Promise<void>
  /**
   * Blocks until the replica has acknowledged every write made so far on the primary (`WAIT 1`):
   * replication is asynchronous, so only acknowledged writes are guaranteed to survive a failover.
   */
  waitForReplication(timeoutMs?: number): Promise<void>
  destroy(): Promise<void>
}

/** A flat `[k1, v1, k2, v2 …]` reply as a record. */
function pairs(reply: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (!Array.isArray(reply)) return out
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1])
  return out
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check().catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(50)
  }
}

export async function startRedisSentinel(options: RedisSentinelOptions = {}): Promise<RedisSentinelHandle> {
  const masterName = options.masterName ?? 'mymaster'
  const { password, sentinelPassword } = options
  const dataCall = (port: number, ...commands: string[][]) => callNodeAs({ port, password }, ...commands)
  const sentinelCall = (port: number, ...commands: string[][]) =>
    callNodeAs({ port, password: sentinelPassword }, ...commands)
  const dataAuth =
    password === undefined ? {} : { password, args: ['--requirepass', password, '--masterauth', password] }
  const servers: RedisServerHandle[] = []
  const sentinelDirs: string[] = []
  const destroy = async () => {
    // Sentinels first, so they don't react to the data nodes going away.
    await Promise.all(servers.slice(2).map((server) => server.destroy()))
    await Promise.all(servers.slice(0, 2).map((server) => server.destroy()))
    await Promise.all(sentinelDirs.map((dir) => rm(dir, { recursive: true, force: true })))
  }
  try {
    const primary = await startRedisServer(dataAuth)
    servers.push(primary)
    const replica = await startRedisServer({
      ...dataAuth,
      args: [...(dataAuth.args ?? []), '--replicaof', HOST, String(primary.port)],
    })
    servers.push(replica)
    await waitFor('the replica to sync', 15_000, async () => {
      const info = String(await dataCall(replica.port, ['INFO', 'replication']))
      return info.includes('master_link_status:up')
    })

    const sentinelServers: RedisServerHandle[] = []
    for (let i = 0; i < 3; i++) {
      // Sentinel rewrites its configuration file, so each gets its own, in its own directory.
      const port = await findFreePort()
      const dir = await mkdtemp(join(tmpdir(), 'consent-broker-sentinel-'))
      sentinelDirs.push(dir)
      const configFile = join(dir, 'sentinel.conf')
      await writeFile(
        configFile,
        [
          `sentinel monitor ${masterName} ${HOST} ${primary.port} 2`,
          `sentinel down-after-milliseconds ${masterName} ${options.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${masterName} ${options.failoverTimeoutMs ?? 5000}`,
          `sentinel parallel-syncs ${masterName} 1`,
          ...(password === undefined ? [] : [`sentinel auth-pass ${masterName} ${password}`]),
          ...(sentinelPassword === undefined
            ? []
            : [`requirepass ${sentinelPassword}`, `sentinel sentinel-pass ${sentinelPassword}`]),
          '',
        ].join('\n'),
      )
      const sentinel = await startRedisServer({
        port,
        dir,
        configFile,
        args: ['--sentinel'],
        ...(sentinelPassword === undefined ? {} : { password: sentinelPassword }),
      })
      servers.push(sentinel)
      sentinelServers.push(sentinel)
    }

    // Every sentinel knows the replica and the two other sentinels before a failover can work.
    for (const sentinel of sentinelServers) {
      await waitFor(`sentinel ${sentinel.port} to discover the deployment`, 20_000, async () => {
        const master = pairs(await sentinelCall(sentinel.port, ['SENTINEL', 'MASTER', masterName]))
        return master['num-slaves'] === '1' && master['num-other-sentinels'] === '2'
      })
    }

    const currentMaster = async () => {
      const answers = await Promise.all(
        sentinelServers.map(
          async (sentinel) =>
            (await sentinelCall(sentinel.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName])) as [
              string,
              string,
            ],
        ),
      )
      const ports = new Set(answers.map(([, port]) => port))
      if (ports.size !== 1) throw new Error(`sentinels disagree on the master: ${JSON.stringify(answers)}`)
      const [host, port] = answers[0]!
      return { host, port: Number(port) }
    }

    return {
      masterName,
      sentinels: sentinelServers.map((sentinel) => ({ host: HOST, port: sentinel.port })),
      primary,
      replica,
      sentinelServers,
      currentMaster,
      async waitForMaster(port, timeoutMs = 30_000) {
        await waitFor(`the sentinels to report master port ${port}`, timeoutMs, async () => {
          if ((await currentMaster()).port !== port) return false
          const role = String(await dataCall(port, ['ROLE']))
          return role.startsWith('master')
        })
      },
      async waitForReplication(timeoutMs = 5000) {
        // WAIT covers the writes of its own connection, so write a barrier first: the replication
        // stream is ordered, so once the barrier is acknowledged every earlier write is too.
        const acknowledged = Number(
          await dataCall(primary.port, ['INCR', '__replication_barrier__'], ['WAIT', '1', String(timeoutMs)]),
        )
        if (acknowledged < 1) throw new Error('the replica did not acknowledge the writes in time')
      },
      destroy,
    }
  } catch (error) {
    await destroy()
    throw error
  }
}
