// Starts a throwaway redis-server for tests: a free 127.0.0.1 port, its own temporary directory,
// no RDB snapshots. Never the machine's shared Redis on 6379. Kept general (extra arguments, an
// optional config file) so Cluster and Sentinel harnesses can be built on top of it.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'

export interface RedisServerOptions {
  /** `--appendonly yes` (with `--appendfsync everysec`); default false. */
  appendOnly?: boolean
  /** Working directory (AOF, nodes.conf …); a fresh temporary directory when absent. */
  dir?: string
  /** Fixed port; a free one when absent. 6379 is refused. */
  port?: number
  /** Extra command-line arguments, e.g. `['--cluster-enabled', 'yes']` or `['--requirepass', 'x']`. */
  args?: string[]
  /** A config file passed as the first argument (e.g. a sentinel.conf together with `--sentinel`). */
  configFile?: string
  /** Password for the readiness PING, when `args` set `--requirepass`. */
  password?: string
  /** Milliseconds to wait for the first PONG; default 10 000. */
  startTimeoutMs?: number
  /** Binary; default `redis-server` from PATH. */
  binary?: string
}

export interface RedisServerHandle {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly dir: string
  /** True when the harness created `dir` (and `destroy()` removes it). */
  readonly ownsDir: boolean
  /** Graceful shutdown (SIGTERM: no RDB save since `--save ""`, AOF flushed); waits for exit. */
  stop(): Promise<void>
  /** Sends a signal (default SIGKILL) and waits for exit: a crash. */
  kill(signal?: NodeJS.Signals): Promise<void>
  /** Starts the server again on the same port and directory (stopping it first if running). */
  restart(): Promise<void>
  /** Stops the server and removes the directory when the harness created it. */
  destroy(): Promise<void>
  /** The last lines the server logged (for failure messages). */
  logTail(): string
}

const HOST = '127.0.0.1'
const SHARED_PORT = 6379
const LOG_LINES = 200

/** Ports this process has handed out: the kernel may offer a just-closed port again. */
const handedOut = new Set<number>()

/** A port held until the process that will own it starts (see holdFreePort). */
export interface HeldPort {
  readonly port: number
  /** Frees the port (idempotent); start its owner right after. */
  release(): Promise<void>
}

/**
 * A free port held by a listener that resets every connection: a Redis that is down, as a client
 * sees it (ECONNRESET), for as long as a test needs one. A port found free and left unbound instead
 * could be taken meanwhile by another test file's process; this one is freed only by `release()`,
 * just before the server that will own it binds it.
 */
export async function holdFreePort(): Promise<HeldPort> {
  const server = createServer((socket) => socket.resetAndDestroy())
  server.listen(0, HOST)
  await once(server, 'listening')
  const address = server.address()
  if (typeof address !== 'object' || address === null) throw new Error('no port to hold')
  handedOut.add(address.port)
  let released: Promise<void> | undefined
  return {
    port: address.port,
    release() {
      released ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
      })
      return released
    },
  }
}

/**
 * A port nobody listens on right now (listen on 0, read it, close), never one this process handed
 * out before: callers take several in a row before starting anything on them, and the kernel gave
 * the same port twice in one such row (a demo test saw METRICS_PORT equal to PORT).
 */
export async function findFreePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const server = createServer()
    server.unref()
    server.listen(0, HOST)
    await once(server, 'listening')
    const address = server.address()
    const port = typeof address === 'object' && address !== null ? address.port : 0
    await new Promise<void>((resolve) => server.close(() => resolve()))
    if (port !== 0 && !handedOut.has(port)) {
      handedOut.add(port)
      return port
    }
  }
  throw new Error('could not find a free port')
}

/** Sends one inline command and resolves with the first reply line (e.g. `+PONG`). */
/** Runs commands in order on one fresh connection to a local node; resolves with the last reply. */
export async function callNode(port: number, ...commands: string[][]): Promise<unknown> {
  return callNodeAs({ port }, ...commands)
}

/** callNode, authenticating first when the node has a password (`requirepass`). */
export async function callNodeAs(
  node: { port: number; password?: string | undefined },
  ...commands: string[][]
): Promise<unknown> {
  const { port, password } = node
  const client = new Redis({
    host: HOST,
    port,
    ...(password === undefined ? {} : { password }),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  })
  client.on('error', () => undefined)
  try {
    await client.connect()
    let reply: unknown
    for (const [name, ...args] of commands) reply = await client.call(name!, ...args)
    return reply
  } finally {
    client.disconnect()
  }
}

export async function sendRawCommand(port: number, command: string, timeoutMs = 1000): Promise<string> {
  const reply = await exchange(port, command, timeoutMs, (buffer) => buffer.includes('\r\n'))
  return reply.slice(0, reply.indexOf('\r\n'))
}

/** Writes `command` and collects the reply until `isComplete(buffer)`. */
function exchange(port: number, command: string, timeoutMs: number, isComplete: (buffer: string) => boolean) {
  return new Promise<string>((resolve, reject) => {
    const socket = createConnection({ host: HOST, port })
    let buffer = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no reply from ${HOST}:${port} within ${timeoutMs} ms`))
    }, timeoutMs)
    socket.setEncoding('utf8')
    socket.on('connect', () => socket.write(`${command}\r\n`))
    socket.on('data', (chunk: string) => {
      buffer += chunk
      if (isComplete(buffer)) {
        clearTimeout(timer)
        socket.destroy()
        resolve(buffer)
      }
    })
    socket.on('error', (error) => {
      clearTimeout(timer)
      socket.destroy()
      reject(error)
    })
  })
}

function quoteArg(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

class ServerProcess implements RedisServerHandle {
  readonly host = HOST
  readonly url: string
  #child: ChildProcess | undefined
  #exited: Promise<void> = Promise.resolve()
  #log: string[] = []
  readonly #onProcessExit = () => this.#child?.kill('SIGKILL')

  constructor(
    readonly port: number,
    readonly dir: string,
    readonly ownsDir: boolean,
    private readonly options: RedisServerOptions,
  ) {
    this.url = `redis://${HOST}:${port}`
  }

  logTail(): string {
    return this.#log.join('\n')
  }

  async start(): Promise<void> {
    const options = this.options
    const argv = [
      ...(options.configFile === undefined ? [] : [options.configFile]),
      '--port',
      String(this.port),
      '--bind',
      HOST,
      '--dir',
      this.dir,
      '--save',
      '',
      '--appendonly',
      options.appendOnly ? 'yes' : 'no',
      '--appendfsync',
      'everysec',
      '--daemonize',
      'no',
      ...(options.args ?? []),
    ]
    this.#log = []
    const child = spawn(options.binary ?? 'redis-server', argv, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.#child = child
    this.#exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve())
      child.once('error', (error) => {
        this.#append(`spawn error: ${error.message}`)
        resolve()
      })
    })
    const collect = (chunk: Buffer) => this.#append(chunk.toString('utf8'))
    child.stdout?.on('data', collect)
    child.stderr?.on('data', collect)
    process.once('exit', this.#onProcessExit)

    const deadline = Date.now() + (options.startTimeoutMs ?? 10_000)
    const ping = options.password === undefined ? 'PING' : `AUTH ${quoteArg(options.password)}`
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
        await this.#exited
        process.removeListener('exit', this.#onProcessExit)
        throw new Error(`redis-server on port ${this.port} exited during start-up:\n${this.logTail()}`)
      }
      const reply = await sendRawCommand(this.port, ping, 500).catch(() => undefined)
      if ((reply === '+PONG' || reply === '+OK') && this.running) return
      if (reply !== undefined && !reply.startsWith('-LOADING')) {
        await this.kill('SIGKILL')
        throw new Error(`redis-server on port ${this.port} answered ${reply}:\n${this.logTail()}`)
      }
      if (Date.now() > deadline) {
        await this.kill('SIGKILL')
        throw new Error(`redis-server on port ${this.port} did not answer PING in time:\n${this.logTail()}`)
      }
      await sleep(25)
    }
  }

  #append(text: string): void {
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue
      this.#log.push(line)
    }
    if (this.#log.length > LOG_LINES) this.#log.splice(0, this.#log.length - LOG_LINES)
  }

  get running(): boolean {
    const child = this.#child
    return child !== undefined && child.exitCode === null && child.signalCode === null
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child
    if (child === undefined) return
    if (this.running) child.kill(signal)
    await this.#exited
    process.removeListener('exit', this.#onProcessExit)
  }

  async stop(): Promise<void> {
    const child = this.#child
    if (child === undefined || !this.running) {
      await this.#exited
      process.removeListener('exit', this.#onProcessExit)
      return
    }
    child.kill('SIGTERM')
    const timedOut = await Promise.race([this.#exited.then(() => false), sleep(10_000).then(() => true)])
    if (timedOut) await this.kill('SIGKILL')
    process.removeListener('exit', this.#onProcessExit)
  }

  async restart(): Promise<void> {
    await this.stop()
    await this.start()
  }

  async destroy(): Promise<void> {
    await this.stop()
    if (this.ownsDir) await rm(this.dir, { recursive: true, force: true })
  }
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServerHandle> {
  if (options.port === SHARED_PORT)
    throw new Error('refusing to start a test redis-server on the shared port 6379')
  const ownsDir = options.dir === undefined
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'consent-broker-redis-')))
  // A free port can be taken between probing and binding: retry a few times when we chose it.
  const attempts = options.port === undefined ? 5 : 1
  let lastError: unknown
  for (let attempt = 0; attempt < attempts; attempt++) {
    let port = options.port ?? (await findFreePort())
    while (port === SHARED_PORT) port = await findFreePort()
    const server = new ServerProcess(port, dir, ownsDir, options)
    try {
      await server.start()
      return server
    } catch (error) {
      lastError = error
      if (!server.logTail().includes('Address already in use')) break
    }
  }
  if (ownsDir) await rm(dir, { recursive: true, force: true })
  throw lastError
}

/**
 * A one-node Redis Cluster owning all 16384 slots: enough to prove that every multi-key command
 * and script stays in one hash slot (the server answers CROSSSLOT otherwise).
 */
export async function startSingleNodeCluster(options: RedisServerOptions = {}): Promise<RedisServerHandle> {
  const server = await startRedisServer({
    ...options,
    args: [
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      '--cluster-announce-ip',
      HOST,
      ...(options.args ?? []),
    ],
  })
  try {
    const added = await sendRawCommand(server.port, 'CLUSTER ADDSLOTSRANGE 0 16383')
    if (added !== '+OK') throw new Error(`CLUSTER ADDSLOTSRANGE answered ${added}`)
    const deadline = Date.now() + 15_000
    for (;;) {
      const info = await sendClusterInfo(server.port)
      if (info.includes('cluster_state:ok')) return server
      if (Date.now() > deadline) throw new Error(`cluster did not become ok:\n${info}`)
      await sleep(50)
    }
  } catch (error) {
    await server.destroy()
    throw error
  }
}

/** CLUSTER INFO is a bulk reply: read until the `cluster_state` line is complete. */
function sendClusterInfo(port: number): Promise<string> {
  return exchange(port, 'CLUSTER INFO', 1000, (buffer) => /cluster_state:\w+\r\n/.test(buffer))
}
