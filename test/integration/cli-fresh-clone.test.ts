// `npx consent-broker-admin …` in a fresh clone of the repository (git clone of the tested
// checkout's HEAD), first the README's own demo command, read out of the clone's README.md (only
// its <token> placeholder and the demo's address are replaced, so a change to the README is what
// gets tested): right after the install — no build, the package bin's launcher runs the TypeScript
// source through tsx; `npm start` then explains that a build is needed —, then after
// `npm run build`, when the launcher runs the compiled dist/cli/admin.js, which the build leaves
// executable. Installing: the clone's node_modules is a symlink to this checkout's (the same lock
// file, already installed by `npm ci`); a real `npm ci` per test run would download and unpack
// several hundred MB for nothing it tests.
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CONTOSO_TENANT_ID } from '../../emulator/demo-data.js'
import { operatorToken } from '../support/admin-helpers.js'
import { consentViaEmulator } from '../support/broker.js'
import { REPO_ROOT } from '../support/broker-process.js'
import { useBrokerOnRedis } from '../support/use-broker.js'
import { userShellEnv } from '../support/user-shell.js'

const run = promisify(execFile)
const TOKEN = operatorToken('clone')
const { broker } = useBrokerOnRedis({ env: { OPERATOR_TOKENS: `clone:${TOKEN}` } })
let clone: string
let url: string

interface Result {
  code: number
  stdout: string
  stderr: string
}

function outcome(running: Promise<{ stdout: string; stderr: string }>): Promise<Result> {
  return running.then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({
      code: typeof error.code === 'number' ? error.code : -1,
      stdout: error.stdout ?? '',
      stderr: error.stderr ?? '',
    }),
  )
}

async function npx(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return outcome(
    run('npx', ['--no-install', 'consent-broker-admin', ...args], {
      cwd: clone,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
      timeout: 60_000,
    }),
  )
}

/** The demo's address in the README's commands; the test's broker listens elsewhere. */
const README_BROKER_URL = 'http://127.0.0.1:3000'

/** The README's CLI command for the demo: its one line that runs the CLI with a `<token>`. */
async function readmeCliCommand(): Promise<string> {
  const readme = await readFile(join(clone, 'README.md'), 'utf8')
  const lines = readme
    .split('\n')
    .filter(
      (line) => line.includes('CONSENT_BROKER_TOKEN=<token>') && line.includes('npx consent-broker-admin'),
    )
  expect(lines).toHaveLength(1)
  expect(lines[0]).toContain(`CONSENT_BROKER_URL=${README_BROKER_URL} `)
  return lines[0]!.trim()
}

/** A README command line as a user pastes it into a shell, in the clone. */
async function shell(command: string): Promise<Result> {
  return outcome(
    run('sh', ['-c', command], {
      cwd: clone,
      env: userShellEnv(),
      timeout: 60_000,
    }),
  )
}

beforeAll(async () => {
  clone = await mkdtemp(join(tmpdir(), 'consent-broker-clone-'))
  await run('git', ['clone', '--quiet', '--no-hardlinks', REPO_ROOT, clone], { timeout: 60_000 })
  await symlink(join(REPO_ROOT, 'node_modules'), join(clone, 'node_modules'), 'dir')
  await broker.app.listen({ host: '127.0.0.1', port: 0 })
  url = `http://127.0.0.1:${(broker.app.server.address() as AddressInfo).port}`
  await consentViaEmulator(broker.app, { slug: 'ms-graph-mail', username: 'admin@contoso.example' })
}, 90_000)

afterAll(async () => {
  if (clone !== undefined) await rm(clone, { recursive: true, force: true })
})

describe('npx consent-broker-admin in a fresh clone', () => {
  it("runs without a build: --help, the README's command and --wide against the broker", async () => {
    await expect(stat(join(clone, 'dist'))).rejects.toThrow()
    const help = await npx(['--help'])
    expect(help.code, help.stderr).toBe(0)
    expect(help.stdout).toContain('Usage: consent-broker-admin')
    const readme = await shell(
      (await readmeCliCommand()).replace('<token>', TOKEN).replace(README_BROKER_URL, url),
    )
    expect(readme.code, readme.stderr).toBe(0)
    expect(readme.stdout.split('\n')[0]).toMatch(/^TENANT\s+LABEL\s+APPS/)
    // the default table shortens ids to their first 8 characters
    expect(readme.stdout).toContain(CONTOSO_TENANT_ID.slice(0, 8))
    const tenants = await npx(['--url', url, '--wide', 'tenants'], { CONSENT_BROKER_TOKEN: TOKEN })
    expect(tenants.code, tenants.stderr).toBe(0)
    expect(tenants.stdout.split('\n')[0]).toMatch(/^TENANT\s+LABEL\s+APPS/)
    expect(tenants.stdout).toContain(CONTOSO_TENANT_ID)
  }, 120_000)

  it('npm start without a build says what to run instead of a stack trace', async () => {
    const start = await run('npm', ['start'], {
      cwd: clone,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' },
      timeout: 30_000,
    }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code?: number; stderr?: string }) => ({ code: error.code, stderr: error.stderr ?? '' }),
    )
    expect(start.code).toBe(1)
    expect(start.stderr).toContain('consent-broker is not built')
    expect(start.stderr).toContain('npm run build && npm start')
    expect(start.stderr).toContain('npm run demo')
    expect(start.stderr).not.toContain('Cannot find module')
    expect(start.stderr).not.toMatch(/^\s+at /m)
  }, 60_000)

  it('after npm run build: dist/cli/admin.js is executable and npx runs it', async () => {
    await run('npm', ['run', 'build'], { cwd: clone, timeout: 180_000 })
    const mode = (await stat(join(clone, 'dist/cli/admin.js'))).mode
    expect(mode & 0o111).toBe(0o111)
    const direct = await run(join(clone, 'dist/cli/admin.js'), ['--help'], { cwd: clone })
    expect(direct.stdout).toContain('Usage: consent-broker-admin')
    const tenants = await npx(['--url', url, '--json', 'tenants'], { CONSENT_BROKER_TOKEN: TOKEN })
    expect(tenants.code, tenants.stderr).toBe(0)
    const body = JSON.parse(tenants.stdout) as { tenants: Array<{ tenantId: string }> }
    expect(body.tenants.map((t) => t.tenantId)).toContain(CONTOSO_TENANT_ID)
  }, 200_000)
})
