// The broker as the image runs it: `node dist/src/main.js` in a child process, configured only
// through its environment, reached only over HTTP. Used by the production tests (install smoke,
// configuration errors, graceful shutdown, logs of the real process).
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, statSync } from 'node:fs'
import { mkdir, readdir, readFile, readlink, rmdir, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { LightMyRequestResponse } from 'fastify'
import type { CloudName } from '../../src/clouds.js'
import type { Env } from '../../src/config.js'
import { type ConsentValues, CookieJar, pageTitle, parseConsentValues } from './broker.js'
import { DEMO_APPS_FILE, DEMO_CLIENT_SECRET_ENV, randomMasterKeys } from './config.js'
import { completeAtEmulator } from './emulator-driver.js'
import { findFreePort } from './redis-server.js'

const run = promisify(execFile)
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

async function newestMtime(dir: string): Promise<number> {
  let newest = 0
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) newest = Math.max(newest, await newestMtime(path))
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, (await stat(path)).mtimeMs)
  }
  return newest
}

/**
 * Makes sure `dist/` holds a build of the current sources (CI builds before testing; a developer's
 * dist may be missing or older than src/). Test files run in parallel: a directory lock keeps two
 * of them from compiling at once.
 */
export async function ensureBuilt(): Promise<string> {
  const entry = join(REPO_ROOT, 'dist/src/main.js')
  const stale = async () =>
    !existsSync(entry) ||
    statSync(entry).mtimeMs <
      Math.max(await newestMtime(join(REPO_ROOT, 'src')), await newestMtime(join(REPO_ROOT, 'emulator')))
  if (!(await stale())) return entry
  const lock = join(
    tmpdir(),
    `consent-broker-build-${createHash('sha256').update(REPO_ROOT).digest('hex').slice(0, 12)}.lock`,
  )
  const deadline = Date.now() + 120_000
  for (;;) {
    try {
      await mkdir(lock)
      break
    } catch {
      if (Date.now() > deadline) throw new Error(`could not take ${lock} (left over? remove it)`)
      await sleep(200)
    }
  }
  try {
    if (await stale()) {
      // tsc emits despite type errors (the typecheck is its own CI step); only a missing or still
      // stale output is a failure here.
      const failure = await run('npx', ['tsc', '-p', 'tsconfig.build.json'], {
        cwd: REPO_ROOT,
        timeout: 120_000,
      }).then(
        () => undefined,
        (error: unknown) => error,
      )
      if (failure !== undefined && (await stale())) throw failure
    }
  } finally {
    await rmdir(lock)
  }
  return entry
}

/** Environment of a production broker on 127.0.0.1 with the demo apps and the emulator as authority. */
export function productionEnv(options: {
  port: number
  redisUrl: string
  authorityUrl: string
  env?: Env
}): Env {
  return {
    PUBLIC_URL: `http://127.0.0.1:${options.port}`,
    HOST: '127.0.0.1',
    PORT: String(options.port),
    REDIS_URL: options.redisUrl,
    REDIS_KEY_PREFIX: `proc:${randomBytes(6).toString('hex')}:`,
    MASTER_KEYS: randomMasterKeys(),
    COOKIE_SECRET: randomBytes(32).toString('hex'),
    APPS_FILE: DEMO_APPS_FILE,
    AUTHORITY_URL_GLOBAL: options.authorityUrl,
    AUTHORITY_URL_USGOV: options.authorityUrl,
    LOG_LEVEL: 'info',
    // No drain by default: most tests stop brokers they're done with (the shutdown tests set one).
    SHUTDOWN_DRAIN_MS: '0',
    ...DEMO_CLIENT_SECRET_ENV,
    ...options.env,
  }
}

export interface BrokerProcess {
  readonly url: string
  readonly port: number
  /** The environment it was started with (with `env` as a function: the one built for its port). */
  readonly env: Env
  readonly child: ChildProcess
  /** stdout lines so far (pino JSON). */
  readonly stdout: string[]
  /** stderr text so far. */
  stderr(): string
  /** Resolves with the exit code and signal once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
  signal(signal: NodeJS.Signals): void
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>
}

export interface SpawnBrokerOptions {
  /**
   * The full environment of the process (PATH is added); nothing is inherited. As a function it is
   * given a free port for PORT (and may take more, e.g. METRICS_PORT, with findFreePort): when
   * another process takes a port between its probe and the child's bind (EADDRINUSE), the broker
   * is started again with new ones. A plain environment's ports are the caller's: no retry.
   */
  env: Env | ((port: number) => Env | Promise<Env>)
  /** Entry file; default the repository's dist/src/main.js. */
  entry?: string
  /** Node options before the entry, e.g. `['--import', 'tsx']` to run a TypeScript script. */
  nodeArgs?: string[]
  cwd?: string
  /**
   * true (default): wait until the child itself listens on PORT (and METRICS_PORT) and /readyz
   * answers 200; 'listening': until it listens (e.g. its Redis is down on purpose); false: return at
   * once (for start-up failures).
   */
  waitReady?: boolean | 'listening'
  readyTimeoutMs?: number
}

/** Attempts when `env` is a function and a port turns out taken (as startRedisServer's). */
const PORT_ATTEMPTS = 5

/** Starts the built broker. With `waitReady: false` it returns at once (for start-up failures). */
export async function spawnBroker(options: SpawnBrokerOptions): Promise<BrokerProcess> {
  const entry = options.entry ?? (await ensureBuilt())
  const { env } = options
  const waitReady = options.waitReady ?? true
  const attempts = typeof env === 'function' && waitReady !== false ? PORT_ATTEMPTS : 1
  for (let attempt = 1; ; attempt++) {
    const started = startChild(
      entry,
      typeof env === 'function' ? await env(await findFreePort()) : env,
      options,
    )
    const { handle } = started
    if (waitReady === false) return handle
    const outcome = await untilReady(started, waitReady, options.readyTimeoutMs ?? 30_000)
    if (outcome === 'ready') return handle
    if (attempt >= attempts) {
      throw new Error(
        `broker exited during start-up (a port in use, ${attempt} attempts):\n${handle.stderr()}\n${handle.stdout.join('\n')}`,
      )
    }
  }
}

interface StartedChild {
  handle: BrokerProcess
  /** Resolves once its stdout and stderr are closed too (after `exit`, all output is read). */
  closed: Promise<void>
}

function startChild(entry: string, env: Env, options: SpawnBrokerOptions): StartedChild {
  const childEnv: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' }
  for (const [name, value] of Object.entries(env)) if (value !== undefined) childEnv[name] = value
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), entry], {
    cwd: options.cwd ?? REPO_ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const stdout: string[] = []
  let partial = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8')
  child.stdout?.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n')
    partial = lines.pop() ?? ''
    stdout.push(...lines.filter((line) => line.length > 0))
  })
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>(
    (resolve) => {
      child.once('exit', (code, signal) => {
        if (partial.length > 0) stdout.push(partial)
        resolve({ code, signal, at: Date.now() })
      })
    },
  )
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()))
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  void exited.then(() => process.removeListener('exit', killOnExit))

  const port = Number(env.PORT ?? 3000)
  const handle: BrokerProcess = {
    url: `http://127.0.0.1:${port}`,
    port,
    env,
    child,
    stdout,
    stderr: () => stderr,
    exited,
    signal: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    },
    async stop(graceMs = 30_000) {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    },
  }
  return { handle, closed }
}

/**
 * Waits until the child itself listens on its ports, then (`true`) until /readyz answers 200.
 * 'port-taken' when it exited because a port was in use; throws on any other exit or the timeout.
 * An answer on the port alone proves nothing: another process may hold a port found free earlier.
 */
async function untilReady(
  { handle, closed }: StartedChild,
  waitReady: true | 'listening',
  timeoutMs: number,
): Promise<'ready' | 'port-taken'> {
  const { child, env } = handle
  const ports = [handle.port, ...(env.METRICS_PORT === undefined ? [] : [Number(env.METRICS_PORT)])]
  const deadline = Date.now() + timeoutMs
  let listens = false
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await closed
      // main.ts prints Node's "EADDRINUSE"; the demo says "port N is already in use".
      if (/EADDRINUSE|already in use/.test(handle.stderr())) return 'port-taken'
      throw new Error(
        `broker exited during start-up (${child.exitCode ?? child.signalCode}):\n${handle.stderr()}\n${handle.stdout.join('\n')}`,
      )
    }
    if (!listens && child.pid !== undefined) listens = await listensOnAll(child.pid, ports)
    if (listens) {
      if (waitReady === 'listening') return 'ready'
      const status = await fetch(`${handle.url}/readyz`)
        .then((response) => response.status)
        .catch(() => 0)
      // (checked again: a 200 counts only while the child that listens is still there)
      if (status === 200 && child.exitCode === null && child.signalCode === null) return 'ready'
    }
    if (Date.now() > deadline) {
      await handle.stop(1000)
      throw new Error(`broker not ready within the timeout:\n${handle.stderr()}\n${handle.stdout.join('\n')}`)
    }
    await sleep(50)
  }
}

/**
 * Whether process `pid` has a listening TCP socket on each of `ports` (Linux: the LISTEN sockets
 * of /proc/net/tcp and tcp6 on those ports, matched by inode against the process's descriptors).
 */
async function listensOnAll(pid: number, ports: number[]): Promise<boolean> {
  // Without /proc (not Linux) only the answer on the port is left: trusted, as before.
  if (!existsSync('/proc/net/tcp')) return true
  const inodesByPort = new Map<number, Set<string>>(ports.map((port) => [port, new Set()]))
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '')
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st … inode: "0100007F:1F90", state 0A is LISTEN
      const fields = line.trim().split(/\s+/)
      const local = fields[1]
      if (local === undefined || fields[3] !== '0A') continue
      inodesByPort.get(Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16))?.add(fields[9]!)
    }
  }
  const own = new Set<string>()
  const descriptors = await readdir(`/proc/${pid}/fd`).catch(() => [])
  for (const fd of descriptors) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1]
    if (inode !== undefined) own.add(inode)
  }
  return [...inodesByPort.values()].every((inodes) => [...inodes].some((inode) => own.has(inode)))
}

export { findFreePort }

// ---- a browser over real HTTP -------------------------------------------------------------------

/** Adapts a fetch Response for CookieJar.update (which reads only the Set-Cookie headers). */
function asInjectResponse(response: Response): LightMyRequestResponse {
  return { headers: { 'set-cookie': response.headers.getSetCookie() } } as unknown as LightMyRequestResponse
}

async function browseHttp(
  baseUrl: string,
  jar: CookieJar,
  request: { method?: 'GET' | 'POST'; path: string; form?: Record<string, string> },
  transport: typeof fetch = fetch,
): Promise<{ status: number; location: string | undefined; body: string }> {
  const cookie = jar.header(request.path)
  const response = await transport(`${baseUrl}${request.path}`, {
    method: request.method ?? 'GET',
    redirect: 'manual',
    headers: {
      accept: 'text/html',
      ...(cookie === undefined ? {} : { cookie }),
      ...(request.form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
    },
    ...(request.form === undefined ? {} : { body: new URLSearchParams(request.form).toString() }),
  })
  jar.update(asInjectResponse(response))
  return {
    status: response.status,
    location: response.headers.get('location') ?? undefined,
    body: await response.text(),
  }
}

/**
 * A whole consent over HTTP against a running broker, the emulator playing Microsoft: start form →
 * sign-in (and, for admin consent, the tenant-wide consent step) → callbacks → result page.
 * `fetch` carries the requests to the broker (e.g. one trusting a test CA, for https); the
 * emulator is reached with the global fetch.
 */
export async function consentOverHttp(
  baseUrl: string,
  options: { slug: string; username: string; cloud?: CloudName; fetch?: typeof fetch },
): Promise<ConsentValues> {
  const jar = new CookieJar()
  const transport = options.fetch ?? fetch
  // The start page first, as a browser: its form carries a CSRF token matching a cookie it sets.
  const page = await browseHttp(baseUrl, jar, { path: `/${options.slug}` }, transport)
  const csrf = /<input type="hidden" name="csrf" value="([^"]+)">/.exec(page.body)?.[1]
  if (page.status !== 200 || csrf === undefined) {
    throw new Error(`start page of ${options.slug} answered ${page.status}: ${pageTitle(page.body)}`)
  }
  const started = await browseHttp(
    baseUrl,
    jar,
    {
      method: 'POST',
      path: `/${options.slug}/start`,
      form: { csrf, ...(options.cloud === undefined ? {} : { cloud: options.cloud }) },
    },
    transport,
  )
  if (started.status !== 303 || started.location === undefined) {
    throw new Error(`start of ${options.slug} answered ${started.status}: ${pageTitle(started.body)}`)
  }
  let atMicrosoft = started.location
  for (let step = 0; step < 3; step++) {
    const back = new URL(await completeAtEmulator(atMicrosoft, { username: options.username }))
    const answer = await browseHttp(baseUrl, jar, { path: `${back.pathname}${back.search}` }, transport)
    if (answer.status === 303 && answer.location === '/result') {
      const result = await browseHttp(baseUrl, jar, { path: '/result' }, transport)
      const values = parseConsentValues(result.body)
      if (values === undefined) throw new Error(`result page without values: ${pageTitle(result.body)}`)
      return values
    }
    if (answer.status !== 303 || answer.location === undefined) {
      throw new Error(`consent callback answered ${answer.status}: ${pageTitle(answer.body)}`)
    }
    atMicrosoft = answer.location
  }
  throw new Error('consent did not finish within three round trips to the authority')
}
