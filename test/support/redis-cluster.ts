// A real three-master Redis Cluster for tests: three redis-server processes (free ports, their own
// temporary directories, explicit cluster-bus ports), joined by `redis-cli --cluster create` with no
// replicas. Slots are spread over the three masters, so keys of one registration, its indexes and
// the token cache live on different nodes and every MOVED redirection is real.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { callNode, findFreePort, type RedisServerHandle, startRedisServer } from './redis-server.js'

const run = promisify(execFile)
const HOST = '127.0.0.1'
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export interface RedisClusterHandle {
  /** Seed nodes for `createRedisConnection({ clusterNodes })`. */
  readonly nodes: ReadonlyArray<{ host: string; port: number }>
  readonly servers: readonly RedisServerHandle[]
  /** `CLUSTER INFO` of one node. */
  clusterInfo(index?: number): Promise<string>
  /** Which server index owns a key's slot. */
  ownerOf(key: string): Promise<number>
  /** Stops every node and removes their directories. */
  destroy(): Promise<void>
}

export interface RedisClusterOptions {
  /** Masters; default 3 (the minimum `redis-cli --cluster create` accepts). */
  masters?: number
  /** Milliseconds to wait for `cluster_state:ok` everywhere; default 30 000. */
  readyTimeoutMs?: number
}

const command = (port: number, ...args: string[]) => callNode(port, args)

export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const masters = options.masters ?? 3
  if (masters < 3) throw new Error('redis-cli --cluster create needs at least 3 masters')
  const servers: RedisServerHandle[] = []
  const destroy = async () => {
    await Promise.all(servers.map((server) => server.destroy()))
  }
  try {
    for (let i = 0; i < masters; i++) {
      // The bus port defaults to port + 10000, which may exceed 65535 or be taken: pick one.
      const busPort = await findFreePort()
      servers.push(
        await startRedisServer({
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-port',
            String(busPort),
            '--cluster-node-timeout',
            '2000',
            '--cluster-announce-ip',
            HOST,
          ],
        }),
      )
    }
    const addresses = servers.map((server) => `${HOST}:${server.port}`)
    await run(
      'redis-cli',
      ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'],
      {
        timeout: 30_000,
      },
    )

    const clusterInfo = async (index = 0) => String(await command(servers[index]!.port, 'CLUSTER', 'INFO'))
    const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000)
    for (;;) {
      const infos = await Promise.all(servers.map((_, index) => clusterInfo(index).catch(() => '')))
      const ready = infos.every(
        (info) =>
          info.includes('cluster_state:ok') &&
          info.includes(`cluster_known_nodes:${masters}`) &&
          info.includes('cluster_slots_assigned:16384'),
      )
      if (ready) break
      if (Date.now() > deadline) throw new Error(`cluster did not become ok:\n${infos.join('\n---\n')}`)
      await sleep(100)
    }

    return {
      nodes: servers.map((server) => ({ host: HOST, port: server.port })),
      servers,
      clusterInfo,
      async ownerOf(key) {
        const slot = Number(await command(servers[0]!.port, 'CLUSTER', 'KEYSLOT', key))
        const slots = (await command(servers[0]!.port, 'CLUSTER', 'SLOTS')) as Array<
          [number, number, [string, number]]
        >
        const range = slots.find(([from, to]) => slot >= from && slot <= to)
        if (range === undefined) throw new Error(`no node owns slot ${slot}`)
        return servers.findIndex((server) => server.port === range[2][1])
      },
      destroy,
    }
  } catch (error) {
    await destroy()
    throw error
  }
}
