// One Redis connection for the whole process, in one of three topologies: a single server (URL),
// Sentinel, or Cluster. Settings favour failing fast during an outage (a request errors after a
// couple of reconnect attempts instead of hanging) while reconnecting forever in the background.
import type { ConnectionOptions } from 'node:tls'
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis'

/** The client the Redis store runs on: one server (or Sentinel primary) or a Cluster. */
export type RedisClient = Redis | Cluster

/** One topology (url, sentinels or cluster nodes) and its credentials, TLS and error callback. */
export interface RedisConnectionOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS). */
  url?: string
  sentinels?: Array<{ host: string; port: number }>
  /** The master group name Sentinel monitors. */
  sentinelName?: string
  sentinelPassword?: string
  clusterNodes?: Array<{ host: string; port: number }>
  /** ACL password (overrides one in `url`). */
  password?: string
  /** ACL user (overrides one in `url`). */
  username?: string
  /** TLS to Redis (implied by `rediss://`). */
  tls?: boolean
  /** `CLIENT SETNAME`, visible in `CLIENT LIST`. */
  connectionName?: string
  /** Per-command timeout; default 5000 ms. */
  commandTimeoutMs?: number
  /** TCP connect timeout; default 5000 ms. */
  connectTimeoutMs?: number
  /**
   * Connection errors (reconnects are automatic): count and log them here. Without it they are
   * dropped — never printed as ioredis' "Unhandled error event" stack; the commands that fail
   * meanwhile still reject, and their callers report them.
   */
  onError?: (error: Error) => void
}

/** Reconnect delay: exponential from 50 ms, capped at 2 s, with jitter; never gives up. */
export function reconnectDelay(attempt: number): number {
  const base = Math.min(2000, 50 * 2 ** Math.min(attempt, 10))
  return Math.round(base / 2 + Math.random() * (base / 2))
}

/** After a failover the old master answers READONLY: reconnect (to the new master) and resend. */
function reconnectOnError(error: Error): boolean | 1 | 2 {
  return error.message.startsWith('READONLY') ? 2 : false
}

/** A failed command surfaces after this many reconnect attempts (callers fail fast). */
const MAX_RETRIES_PER_REQUEST = 2

/**
 * Auto-pipelining: the commands issued in one event-loop tick go out in one socket write (per node
 * on a Cluster) instead of one write each. The hot path (obtain-token) issues a few commands per
 * request from many concurrent requests, and the write syscalls were a third of its CPU. Ordering
 * per connection is unchanged for commands that are awaited in turn (everything in src/ is).
 */
const AUTO_PIPELINING = { enableAutoPipelining: true } as const

/** An ioredis client for the configured topology; it reconnects by itself, forever. */
export function createRedisConnection(options: RedisConnectionOptions): RedisClient {
  const topologies = [
    options.url !== undefined,
    options.sentinels !== undefined && options.sentinels.length > 0,
    options.clusterNodes !== undefined && options.clusterNodes.length > 0,
  ].filter(Boolean).length
  if (topologies !== 1) {
    throw new TypeError('createRedisConnection: give exactly one of url, sentinels, clusterNodes')
  }

  const common: RedisOptions = {
    enableReadyCheck: true,
    enableOfflineQueue: true,
    maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
    connectTimeout: options.connectTimeoutMs ?? 5000,
    commandTimeout: options.commandTimeoutMs ?? 5000,
    retryStrategy: reconnectDelay,
    reconnectOnError,
    ...AUTO_PIPELINING,
    ...(options.connectionName === undefined ? {} : { connectionName: options.connectionName }),
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(options.password === undefined ? {} : { password: options.password }),
  }

  let client: RedisClient
  if (options.url !== undefined) {
    client = new Redis({ ...common, ...fromUrl(options.url, options) })
  } else if (options.sentinels !== undefined && options.sentinels.length > 0) {
    if (options.sentinelName === undefined || options.sentinelName === '') {
      throw new TypeError('createRedisConnection: sentinelName is required with sentinels')
    }
    const tls: ConnectionOptions | undefined = options.tls ? {} : undefined
    client = new Redis({
      ...common,
      sentinels: options.sentinels.map(({ host, port }) => ({ host, port })),
      name: options.sentinelName,
      role: 'master',
      ...(options.sentinelPassword === undefined ? {} : { sentinelPassword: options.sentinelPassword }),
      sentinelRetryStrategy: reconnectDelay,
      ...(tls === undefined ? {} : { tls, enableTLSForSentinelMode: true, sentinelTLS: tls }),
    })
  } else {
    const {
      retryStrategy: _retry,
      reconnectOnError: _reconnect,
      enableOfflineQueue: _offline,
      enableAutoPipelining: _pipelining,
      ...redisOptions
    } = common
    // On a Cluster the option belongs to the Cluster client (it pipelines per node).
    const clusterOptions: ClusterOptions = {
      ...AUTO_PIPELINING,
      scaleReads: 'master',
      enableReadyCheck: true,
      enableOfflineQueue: true,
      maxRedirections: 16,
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 300,
      retryDelayOnTryAgain: 100,
      slotsRefreshTimeout: 2000,
      clusterRetryStrategy: (attempt) => reconnectDelay(attempt),
      redisOptions: { ...redisOptions, ...(options.tls ? { tls: {} } : {}) },
    }
    client = new Cluster(
      (options.clusterNodes ?? []).map(({ host, port }) => ({ host, port })),
      clusterOptions,
    )
  }
  // Always a listener: an 'error' event without one makes ioredis print a stack trace.
  client.on('error', options.onError ?? (() => undefined))
  return client
}

function fromUrl(url: string, options: RedisConnectionOptions): RedisOptions {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new TypeError('createRedisConnection: url is not a URL')
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new TypeError('createRedisConnection: url must be redis:// or rediss://')
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1'
  const result: RedisOptions = { host, port: parsed.port === '' ? 6379 : Number(parsed.port) }
  const db = parsed.pathname.replace(/^\//, '')
  if (db !== '') {
    if (!/^\d+$/.test(db)) throw new TypeError('createRedisConnection: url path must be a database number')
    result.db = Number(db)
  }
  if (parsed.username !== '' && options.username === undefined)
    result.username = decodeURIComponent(parsed.username)
  if (parsed.password !== '' && options.password === undefined)
    result.password = decodeURIComponent(parsed.password)
  if (parsed.protocol === 'rediss:' || options.tls) result.tls = { servername: host }
  return result
}

/** Resolves once the client is ready; rejects after `timeoutMs` or when the client ends. */
export function waitForReady(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve()
  if (client.status === 'end') return Promise.reject(new Error('redis connection is closed'))
  return new Promise((resolve, reject) => {
    let lastError: Error | undefined
    const cleanup = () => {
      clearTimeout(timer)
      client.off('ready', onReady)
      client.off('error', onError)
      client.off('end', onEnd)
    }
    const onReady = () => {
      cleanup()
      resolve()
    }
    const onError = (error: Error) => {
      lastError = error
    }
    const onEnd = () => {
      cleanup()
      reject(new Error('redis connection ended before it was ready', { cause: lastError }))
    }
    const timer = setTimeout(() => {
      cleanup()
      const reason = lastError === undefined ? '' : `: ${lastError.message}`
      reject(new Error(`redis not ready within ${timeoutMs} ms${reason}`, { cause: lastError }))
    }, timeoutMs)
    client.on('ready', onReady)
    client.on('error', onError)
    client.on('end', onEnd)
    if (client.status === 'wait') client.connect().catch(() => undefined)
    if (client.status === 'ready') onReady()
  })
}
