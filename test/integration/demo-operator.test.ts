// `npm run demo` as a new user runs it (through npm, as the README says): the banner names the
// consent pages, /admin, /{app}/manage and prints a per-start operator token on a line of its own,
// which opens /admin/api, and the README's CLI command with that token and the demo's URL, which
// runs; SIGTERM to npm stops the broker and the emulator and frees both ports; a busy port is
// reported with the variable to change, not as an EADDRINUSE stack.
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { REPO_ROOT } from '../support/broker-process.js'
import { findFreePort } from '../support/redis-server.js'
import { userShellEnv } from '../support/user-shell.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

interface DemoRun {
  child: ChildProcess
  output: () => string
  exited: Promise<number | null>
}

function runDemo(env: Record<string, string>): DemoRun {
  const child = spawn('npm', ['run', 'demo'], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { child, output: () => output, exited }
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !condition(); await sleep(100)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
  }
}

/** True when something accepts connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

let demo: DemoRun
let port: number
let emulatorPort: number

beforeAll(async () => {
  // Ports found free can be taken by another test file's process before the demo binds them: on
  // the demo's own busy-port message, start it again on new ones (as spawnBroker does).
  for (let attempt = 1; ; attempt++) {
    port = await findFreePort()
    emulatorPort = await findFreePort()
    demo = runDemo({ PORT: String(port), EMULATOR_PORT: String(emulatorPort) })
    await waitFor(
      () => /^Operator token: \S+$/m.test(demo.output()) || demo.child.exitCode !== null,
      60_000,
      'banner',
    )
    if (demo.child.exitCode === null || attempt >= 5 || !demo.output().includes('is already in use')) break
    await demo.exited
  }
  // The banner is printed once both listeners are up.
  expect(demo.child.exitCode, demo.output()).toBeNull()
}, 120_000)

afterAll(async () => {
  if (demo.child.exitCode === null && demo.child.signalCode === null) {
    demo.child.kill('SIGTERM')
    await demo.exited
  }
})

describe('npm run demo: operator side', () => {
  it('prints the consent pages, /admin, /{app}/manage and an operator token that opens /admin/api', async () => {
    const out = demo.output()
    expect(out).toContain(`http://127.0.0.1:${port}/ms-graph-mail`)
    expect(out).toContain(`http://127.0.0.1:${port}/admin`)
    expect(out).toContain(`http://127.0.0.1:${port}/{app}/manage`)
    expect(out).toContain('IN-MEMORY')
    expect(out).toContain('REDIS_URL')
    const token = /^Operator token: (\S+)$/m.exec(out)?.[1]
    expect(token).toMatch(/^[A-Za-z0-9_-]{24,}$/)
    const withToken = await fetch(`http://127.0.0.1:${port}/admin/api/tenants`, {
      headers: { authorization: `Bearer ${token}` },
    })
    expect(withToken.status).toBe(200)
    const without = await fetch(`http://127.0.0.1:${port}/admin/api/tenants`, {
      headers: { authorization: 'Bearer not-the-demo-token-0000000000' },
    })
    expect(without.status).toBe(401)
  })

  it("prints the README's CLI command with the token and the demo's URL, and it runs", async () => {
    const out = demo.output()
    const token = /^Operator token: (\S+)$/m.exec(out)?.[1]
    expect(token).toBeDefined()
    // The README's line (test/integration/cli-fresh-clone.test.ts runs it in a fresh clone).
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')
      .split('\n')
      .filter(
        (line) => line.includes('CONSENT_BROKER_TOKEN=<token>') && line.includes('npx consent-broker-admin'),
      )
    expect(readme).toHaveLength(1)
    const printed = out
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.includes('npx consent-broker-admin'))
    expect(printed).toEqual([
      readme[0]!
        .trim()
        .replace('<token>', token!)
        .replace('http://127.0.0.1:3000', `http://127.0.0.1:${port}`),
    ])
    const { stdout } = await promisify(execFile)('sh', ['-c', printed[0]!], {
      cwd: REPO_ROOT,
      env: userShellEnv(),
      timeout: 60_000,
    })
    // the demo's store starts empty
    expect(stdout).toBe('no tenants\n')
  }, 70_000)

  it('stops the broker and the emulator on SIGTERM to npm, freeing both ports', async () => {
    expect(await listening(port)).toBe(true)
    expect(await listening(emulatorPort)).toBe(true)
    demo.child.kill('SIGTERM')
    await demo.exited
    let freed = false
    for (let waited = 0; !freed && waited < 10_000; waited += 100) {
      freed = !(await listening(port)) && !(await listening(emulatorPort))
      if (!freed) await sleep(100)
    }
    expect(freed).toBe(true)
    // It says so, before and after.
    expect(demo.output()).toContain('SIGTERM: stopping the broker and the emulator …')
    expect(demo.output()).toContain('Stopped; the ports are free.')
  }, 20_000)

  it('names the variable to change when a port is busy, without a stack trace', async () => {
    const busy = createServer()
    const busyPort = await findFreePort()
    await new Promise<void>((resolve) => busy.listen(busyPort, '127.0.0.1', resolve))
    try {
      const run = runDemo({ PORT: String(busyPort), EMULATOR_PORT: String(await findFreePort()) })
      const code = await run.exited
      expect(code).toBe(1)
      expect(run.output()).toContain(`port ${busyPort} is already in use: set PORT to a free port`)
      expect(run.output()).not.toMatch(/^\s+at /m)
      expect(run.output()).not.toContain('Operator token:')
    } finally {
      await new Promise<void>((resolve) => busy.close(() => resolve()))
    }
  }, 60_000)

  it('names a port that is no port through the configuration, without a stack trace', async () => {
    const run = runDemo({ PORT: 'abc', EMULATOR_PORT: String(await findFreePort()) })
    expect(await run.exited).toBe(1)
    expect(run.output()).toContain(
      'demo failed to start: invalid configuration:\n  - PORT: expected an integer',
    )
    expect(run.output()).not.toMatch(/^\s+at /m)
  }, 60_000)

  it('names every busy port at once, before starting anything', async () => {
    const held = [createServer(), createServer()]
    const ports = [await findFreePort(), await findFreePort()]
    for (const [i, server] of held.entries()) {
      await new Promise<void>((resolve) => server.listen(ports[i], '127.0.0.1', resolve))
    }
    try {
      const run = runDemo({ PORT: String(ports[0]), EMULATOR_PORT: String(ports[1]) })
      expect(await run.exited).toBe(1)
      expect(run.output()).toContain(`port ${ports[1]} is already in use: set EMULATOR_PORT to a free port`)
      expect(run.output()).toContain(`port ${ports[0]} is already in use: set PORT to a free port`)
      expect(run.output()).not.toMatch(/^\s+at /m)
    } finally {
      for (const server of held) await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }, 60_000)
})
