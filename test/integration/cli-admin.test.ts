// The consent-broker-admin CLI as a separate process (tsx cli/admin.ts) against a broker listening
// on a free port with real Redis and the emulator: every command, table and JSON output, exit codes.
import { spawn } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import { beforeAll, describe, expect, it } from 'vitest'
import { CONTOSO_TENANT_ID, FABRIKAM_TENANT_ID } from '../../emulator/demo-data.js'
import { upsertDelegatedRegistration } from '../../src/services/registrations.js'
import { obtainToken, operatorToken } from '../support/admin-helpers.js'
import { type ConsentValues, consentViaEmulator } from '../support/broker.js'
import { useBrokerOnRedis } from '../support/use-broker.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const TOKEN = operatorToken('cli')
const { broker } = useBrokerOnRedis({ env: { OPERATOR_TOKENS: `cli:${TOKEN}` } })
let url: string
let contoso: ConsentValues
let fabrikam: ConsentValues
let fabrikamUser: ConsentValues

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/admin.ts', ...args], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        CONSENT_BROKER_URL: url,
        CONSENT_BROKER_TOKEN: TOKEN,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8')
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8')
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

beforeAll(async () => {
  await broker.app.listen({ host: '127.0.0.1', port: 0 })
  url = `http://127.0.0.1:${(broker.app.server.address() as AddressInfo).port}`
  contoso = await consentViaEmulator(broker.app, { slug: 'ms-graph-mail', username: 'admin@contoso.example' })
  fabrikam = await consentViaEmulator(broker.app, {
    slug: 'ms-graph-mail',
    username: 'admin@fabrikam.example',
  })
  fabrikamUser = await consentViaEmulator(broker.app, {
    slug: 'ms-graph-user',
    username: 'admin@fabrikam.example',
  })
})

describe('consent-broker-admin', () => {
  it('prints usage with --help (exit 0) and refuses a bad command line (exit 1)', async () => {
    const [help, none, unknown, badOption, misspelt, badLimit, misplaced] = await Promise.all([
      cli(['--help']),
      cli([]),
      cli(['frobnicate']),
      cli(['tenants', '--bogus']),
      cli(['tenants', '--ap', 'ms-graph-mail']),
      cli(['registrations', '--limit', '0']),
      cli(['tenants', '--reason', 'x']),
    ])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('Usage: consent-broker-admin')
    expect(help.stdout).toContain('Exit codes')
    for (const run of [none, unknown, badOption, misspelt, badLimit, misplaced]) {
      expect(run.code, run.stderr).toBe(1)
      expect(run.stderr).toMatch(/^consent-broker-admin: /)
    }
    expect(unknown.stderr).toContain('unknown command "frobnicate"')
    expect(badOption.stderr).toContain('unknown option --bogus for "tenants" (it takes --app,')
    expect(misspelt.stderr).toContain('unknown option --ap for "tenants" (did you mean --app?)')
    expect(badLimit.stderr).toContain('--limit')
  })

  it('exits 2 without a token or with a wrong one, without printing the token', async () => {
    const [missing, wrong] = await Promise.all([
      cli(['tenants'], { CONSENT_BROKER_TOKEN: undefined }),
      cli(['tenants'], { CONSENT_BROKER_TOKEN: operatorToken('cli') }),
    ])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain('CONSENT_BROKER_TOKEN')
    expect(wrong.code).toBe(2)
    expect(wrong.stderr).toContain('unauthorized')
    expect(wrong.stdout).toBe('')
    expect(`${wrong.stdout}${wrong.stderr}`).not.toContain(TOKEN)
  })

  it('exits 4 when the broker cannot be reached', async () => {
    const run = await cli(['tenants', '--url', 'http://127.0.0.1:9'])
    expect(run.code).toBe(4)
    expect(run.stderr).toContain('cannot reach the broker')
  })

  it('says when --url is not the broker, or the broker under /admin/api', async () => {
    // another service: Fastify's own 404 (the emulator's, for one)
    const other = Fastify()
    await other.listen({ host: '127.0.0.1', port: 0 })
    try {
      const otherUrl = `http://127.0.0.1:${(other.server.address() as AddressInfo).port}`
      const run = await cli(['tenants', '--url', otherUrl])
      expect(run.code).toBe(4)
      expect(run.stderr).toContain(
        `${otherUrl} does not look like a consent-broker: GET ${otherUrl}/admin/api/tenants answered HTTP 404 (application/json`,
      )
    } finally {
      await other.close()
    }
    for (const suffix of ['/admin/api', '/admin']) {
      const run = await cli(['tenants', '--url', `${url}${suffix}`])
      // exit 4 either way: the broker's own 404 under /admin/api, its console's page under /admin
      expect(run.code, run.stderr).toBe(4)
      expect(run.stderr).toContain(`give the broker's base URL (${url}), without ${suffix}`)
    }
  })

  it('lists tenants as a table (120 columns, or --wide) and as JSON', async () => {
    const [narrow, tableRun, jsonRun] = await Promise.all([
      cli(['tenants']),
      cli(['--wide', 'tenants']),
      cli(['--json', 'tenants']),
    ])
    expect(narrow.code, narrow.stderr).toBe(0)
    const narrowLines = narrow.stdout.trimEnd().split('\n')
    for (const line of narrowLines) expect(line.length).toBeLessThanOrEqual(120)
    expect(narrowLines.some((line) => line.startsWith(`${CONTOSO_TENANT_ID.slice(0, 8)}…`))).toBe(true)
    expect(narrow.stdout).not.toContain(CONTOSO_TENANT_ID)
    expect(tableRun.code, tableRun.stderr).toBe(0)
    const lines = tableRun.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^TENANT\s+LABEL\s+APPS\s+ACTIVE\s+NEEDS CONSENT\s+REVOKED\s+LAST CONSENT$/)
    expect(lines.find((line) => line.startsWith(CONTOSO_TENANT_ID))).toMatch(
      new RegExp(`^${CONTOSO_TENANT_ID}\\s+contoso\\.example\\s`),
    )
    expect(lines.find((line) => line.startsWith(FABRIKAM_TENANT_ID))).toContain('ms-graph-mail,ms-graph-user')
    expect(jsonRun.code).toBe(0)
    const body = JSON.parse(jsonRun.stdout) as { tenants: Array<{ tenantId: string }> }
    expect(body.tenants.map((t) => t.tenantId).sort()).toEqual([CONTOSO_TENANT_ID, FABRIKAM_TENANT_ID].sort())
  })

  it('exits 3 when --app names no hosted app and nothing is listed; a hosted app lists nothing, exit 0', async () => {
    const [misspelt, bogus, hosted] = await Promise.all([
      cli(['tenants', '--app', 'ms-graph-mai']),
      cli(['--json', 'registrations', '--app', 'bogus']),
      cli(['registrations', '--app', 'ms-graph-calendar']),
    ])
    expect(misspelt.code, misspelt.stderr).toBe(3)
    expect(misspelt.stderr).toMatch(
      /^consent-broker-admin: tenants --app: "ms-graph-mai" is not a hosted app \(did you mean ms-graph-mail\?\); hosted: .*ms-graph-calendar/,
    )
    expect(bogus.code, bogus.stderr).toBe(3)
    expect(bogus.stdout).toBe('')
    expect(bogus.stderr).toContain('registrations --app: "bogus" is not a hosted app; hosted: ')
    expect(hosted.code, hosted.stderr).toBe(0)
    expect(hosted.stdout).toBe('no registrations\n')
  })

  it('pages tenants with --limit/--cursor and follows --all', async () => {
    const sorted = [CONTOSO_TENANT_ID, FABRIKAM_TENANT_ID].sort()
    const first = await cli(['--wide', 'tenants', '--limit', '1'])
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout).toContain(sorted[0])
    expect(first.stdout).not.toContain(sorted[1])
    const more = /more: --cursor (\S+) \(or --all\)/.exec(first.stdout)
    expect(more).not.toBeNull()
    const [second, all] = await Promise.all([
      cli(['--json', 'tenants', '--limit', '1', '--cursor', more![1]!]),
      cli(['--json', 'tenants', '--all', '--limit', '1']),
    ])
    expect(second.code, second.stderr).toBe(0)
    const page = JSON.parse(second.stdout) as { tenants: Array<{ tenantId: string }>; nextCursor?: string }
    expect(page.tenants.map((t) => t.tenantId)).toEqual([sorted[1]])
    expect(page.nextCursor).toBeUndefined()
    const body = JSON.parse(all.stdout) as { tenants: Array<{ tenantId: string }>; nextCursor?: string }
    expect(body.tenants.map((t) => t.tenantId)).toEqual(sorted)
    expect(body.nextCursor).toBeUndefined()
  })

  it('lists registrations with filters, pages with --limit/--cursor and follows --all', async () => {
    const [filtered, page, all] = await Promise.all([
      cli([
        '--wide',
        'registrations',
        '--tenant',
        FABRIKAM_TENANT_ID,
        '--app',
        'ms-graph-user',
        '--status',
        'active',
      ]),
      cli(['--json', 'registrations', '--limit', '1']),
      cli(['--json', 'registrations', '--all', '--limit', '1']),
    ])
    expect(filtered.code, filtered.stderr).toBe(0)
    expect(filtered.stdout).toContain(fabrikamUser.registrationId)
    expect(filtered.stdout).not.toContain(fabrikam.registrationId)
    expect(filtered.stdout.split('\n')[0]).toMatch(/^ID\s+TENANT\s+APP/)
    expect(filtered.stdout).not.toContain(fabrikamUser.key)
    const narrow = await cli(['registrations', '--all'])
    expect(narrow.code, narrow.stderr).toBe(0)
    for (const line of narrow.stdout.trimEnd().split('\n')) expect(line.length).toBeLessThanOrEqual(120)
    expect(narrow.stdout).toContain(`${fabrikamUser.registrationId.slice(0, 8)}…`)

    const first = JSON.parse(page.stdout) as { items: unknown[]; nextCursor?: string }
    expect(first.items).toHaveLength(1)
    expect(first.nextCursor).toMatch(/^[\w-]+$/) // an opaque base64url cursor
    const second = await cli(['--json', 'registrations', '--limit', '1', '--cursor', first.nextCursor!])
    expect((JSON.parse(second.stdout) as { items: Array<{ id: string }> }).items[0]!.id).not.toBe(
      (first.items[0] as { id: string }).id,
    )
    const everything = JSON.parse(all.stdout) as { items: Array<{ id: string }>; nextCursor?: string }
    expect(everything.nextCursor).toBeUndefined()
    expect(everything.items.map((r) => r.id)).toEqual(
      expect.arrayContaining([contoso.registrationId, fabrikam.registrationId, fabrikamUser.registrationId]),
    )

    const one = await cli(['registration', contoso.registrationId])
    expect(one.code).toBe(0)
    expect(one.stdout).toMatch(new RegExp(`tenantId\\s+${CONTOSO_TENANT_ID}`))
    const missing = await cli(['registration', '00000000-0000-4000-8000-000000000000'])
    expect(missing.code).toBe(3)
    expect(missing.stderr).toContain('not_found')
  })

  it('names a tenant’s own app registration (client id) in the registrations table', async () => {
    const ownClientId = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d'
    const own = await upsertDelegatedRegistration(broker.store, {
      app: 'ms-graph-mail-listener',
      cloud: 'global',
      tenantId: CONTOSO_TENANT_ID,
      now: new Date().toISOString(),
      ownApp: { clientId: ownClientId },
      userOid: '3f6c2a1e-8b4d-4c7a-9e15-0a1b2c3d4e77',
      userName: 'device@contoso.example',
      refreshToken: 'refresh-token-of-a-public-client',
    })
    const [narrow, wide] = await Promise.all([
      cli(['registrations', '--app', 'ms-graph-mail-listener']),
      cli(['--wide', 'registrations', '--app', 'ms-graph-mail-listener']),
    ])
    expect(narrow.code, narrow.stderr).toBe(0)
    const row = narrow.stdout.split('\n').find((line) => line.startsWith(own.registration.id.slice(0, 8)))
    expect(row).toMatch(/ms-graph-mail-listener own\s/)
    for (const line of narrow.stdout.trimEnd().split('\n')) expect(line.length).toBeLessThanOrEqual(120)
    expect(wide.stdout).toContain(`ms-graph-mail-listener own ${ownClientId}`)
  })

  it("sets a tenant's label, shown beside the tenant id in both tables", async () => {
    const set = await cli(['tenants', 'label', FABRIKAM_TENANT_ID, 'Fabrikam EU'])
    expect(set.code, set.stderr).toBe(0)
    expect(set.stdout).toBe(`tenant ${FABRIKAM_TENANT_ID}: label "Fabrikam EU" (was "fabrikam.example")\n`)
    const [tenantsRun, registrationsRun, json] = await Promise.all([
      cli(['tenants']),
      cli(['registrations', '--tenant', FABRIKAM_TENANT_ID]),
      cli(['--json', 'registrations', '--tenant', FABRIKAM_TENANT_ID]),
    ])
    expect(tenantsRun.stdout).toMatch(
      new RegExp(`^${FABRIKAM_TENANT_ID.slice(0, 8)}…\\s+Fabrikam EU\\s`, 'm'),
    )
    const rows = registrationsRun.stdout.trimEnd().split('\n').slice(1)
    expect(rows.length).toBeGreaterThan(0)
    for (const row of rows) {
      expect(row).toContain(`${FABRIKAM_TENANT_ID.slice(0, 8)}… Fabrikam EU`)
      expect(row).toContain('admin@fabrikam.example')
      expect(row.length).toBeLessThanOrEqual(120)
    }
    const items = (JSON.parse(json.stdout) as { items: Array<Record<string, unknown>> }).items
    expect(items[0]).toMatchObject({
      tenantLabel: 'Fabrikam EU',
      consentedBy: { upn: 'admin@fabrikam.example', name: 'Fabrikam Admin' },
    })

    const [noLabel, extra, withAll, blank, unknown] = await Promise.all([
      cli(['tenants', 'label', FABRIKAM_TENANT_ID]),
      cli(['tenants', 'label', FABRIKAM_TENANT_ID, 'Fabrikam', 'EU']),
      cli(['tenants', 'label', FABRIKAM_TENANT_ID, 'x', '--all']),
      cli(['tenants', 'label', FABRIKAM_TENANT_ID, '  ']),
      cli(['tenants', 'label', '00000000-0000-4000-8000-000000000000', 'Nobody']),
    ])
    expect(noLabel.code).toBe(1)
    expect(noLabel.stderr).toContain('give the tenant id and the label')
    expect(extra.code).toBe(1)
    expect(extra.stderr).toContain('quote a label with spaces')
    expect(withAll.code).toBe(1)
    expect(blank.code).toBe(1)
    expect(blank.stderr).toContain('invalid_request')
    expect(unknown.code).toBe(3)
    expect(unknown.stderr).toContain('not_found')
  })

  it('revokes a registration (idempotently) and a tenant, and exits 3 for an unknown one', async () => {
    const noReason = await cli(['revoke', contoso.registrationId])
    expect(noReason.code).toBe(1)
    expect(noReason.stderr).toContain('--reason')
    expect((await broker.store.registrations.getMeta(contoso.registrationId))?.status).toBe('active')

    const revoked = await cli(['revoke', contoso.registrationId, '--reason', 'rotated by script'])
    expect(revoked.code, revoked.stderr).toBe(0)
    expect(revoked.stdout).toContain(`revoked ${contoso.registrationId}`)
    const again = await cli(['revoke', contoso.registrationId, '--reason', 'again'])
    expect(again.code).toBe(0)
    expect(again.stdout).toContain('was already revoked')
    expect(again.stdout).toContain('by cli: rotated by script')
    const denied = await obtainToken(broker.app, contoso, 'ms-graph-mail')
    expect(denied.body.error?.code).toBe('revoked')

    const unknown = await cli(['revoke', '00000000-0000-4000-8000-000000000000', '--reason', 'x'])
    expect(unknown.code).toBe(3)
    expect(unknown.stderr).not.toContain('first 8 characters')
    // the id as a narrow table shows it: still not found, but the operator is told why
    const shortened = await cli(['registration', fabrikam.registrationId.slice(0, 8)])
    expect(shortened.code).toBe(3)
    expect(shortened.stderr).toContain('not_found')
    expect(shortened.stderr).toContain('tables show only the first 8 characters of an id')

    const tenant = await cli([
      '--json',
      'revoke',
      '--tenant',
      FABRIKAM_TENANT_ID,
      '--app',
      'ms-graph-user',
      '--reason',
      'contract ended',
    ])
    expect(tenant.code, tenant.stderr).toBe(0)
    const body = JSON.parse(tenant.stdout) as { revoked: Array<{ id: string }> }
    expect(body.revoked.map((r) => r.id)).toEqual([fabrikamUser.registrationId])
    expect((await broker.store.registrations.getMeta(fabrikam.registrationId))?.status).toBe('active')
  })

  it('reads the audit trail as a table and as JSON', async () => {
    const [narrow, tableRun, jsonRun] = await Promise.all([
      cli(['audit', '--all']),
      cli(['--wide', 'audit', '--all']),
      cli(['--json', 'audit', '--limit', '2']),
    ])
    expect(narrow.code).toBe(0)
    for (const line of narrow.stdout.trimEnd().split('\n')) expect(line.length).toBeLessThanOrEqual(120)
    expect(narrow.stdout).toMatch(/registration\.revoked\s+operator:cli/)
    expect(tableRun.code).toBe(0)
    expect(tableRun.stdout).toMatch(/registration\.revoked\s+operator:cli/)
    expect(tableRun.stdout).toContain('reason=rotated by script')
    const page = JSON.parse(jsonRun.stdout) as { items: Array<{ id: string }>; nextCursor?: string }
    expect(page.items).toHaveLength(2)
    const next = await cli(['--json', 'audit', '--cursor', page.nextCursor!, '--limit', '1'])
    expect(
      (JSON.parse(next.stdout) as { items: Array<{ id: string }> }).items[0]!.id > page.items[1]!.id,
    ).toBe(true)
  })

  it('rotates the master keys, waiting for the pass and showing its progress', async () => {
    const run = await cli(['rotate-keys'])
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/^(started|already running)\n/)
    expect(run.stdout.trimEnd().split('\n').at(-1)).toMatch(/^completed: key k1, scanned \d+, .* failed 0$/)
    const status = await cli(['--json', 'rotation'])
    expect(status.code, status.stderr).toBe(0)
    expect((JSON.parse(status.stdout) as { rotation: { state: string } }).rotation.state).toBe('completed')
  })

  it('shows the store upgrade state and finishes it, waiting until contracted', async () => {
    const state = await cli(['upgrade'])
    expect(state.code, state.stderr).toBe(0)
    expect(state.stdout).toMatch(/^contracted: finished/)
    const run = await cli(['finish-upgrade'])
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/^(started|already running)\n/)
    expect(run.stdout.trimEnd().split('\n').at(-1)).toMatch(/^contracted: /)
    const json = await cli(['--json', 'upgrade'])
    expect(JSON.parse(json.stdout)).toEqual({ upgrade: { state: 'contracted' } })
  })
})
