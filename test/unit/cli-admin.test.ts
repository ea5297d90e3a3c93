// The CLI's exit codes and output against scripted broker answers (the real broker is exercised in
// test/integration/cli-admin.test.ts).
import { describe, expect, it } from 'vitest'
import { EXIT, runCli, table } from '../../cli/admin-commands.js'
import { type ScriptedAnswer, scriptedCli } from '../support/cli-harness.js'

/** Scripted answers for one run; `fake` is the CliIo handed to runCli. */
function io(answers: ScriptedAnswer[], env: Record<string, string> = {}) {
  const run = scriptedCli(answers, { env: { CONSENT_BROKER_URL: 'https://broker.example/', ...env } })
  return { ...run, fake: run.io }
}

const error = (code: string, message: string) => ({ error: { code, message }, message, request_id: 'r' })

describe('consent-broker-admin exit codes', () => {
  it.each([
    [401, error('unauthorized', 'operator token missing or invalid'), EXIT.auth],
    [403, error('forbidden', 'no'), EXIT.auth],
    [404, error('not_found', 'registration x not found'), EXIT.notFound],
    [400, error('invalid_request', 'querystring/limit must be <= 500'), EXIT.usage],
    [409, error('conflict', 'kept changing'), EXIT.server],
    [500, error('internal_error', 'internal error'), EXIT.server],
    [503, '<html>bad gateway</html>', EXIT.server],
  ])('maps HTTP %i to its exit code', async (status, body, code) => {
    const run = io([{ status, body }])
    expect(await runCli(['registration', 'x'], run.fake)).toBe(code)
    expect(run.stdout()).toBe('')
    expect(run.stderr()).toMatch(/^consent-broker-admin: /)
    expect(run.stderr()).not.toContain('secret-operator-token')
  })

  it('exits 4 on a network failure and on a success without JSON', async () => {
    const down = io([])
    expect(await runCli(['tenants'], down.fake)).toBe(EXIT.server)
    expect(down.stderr()).toContain('cannot reach the broker at https://broker.example: connection refused')
    const garbled = io([{ status: 200, body: 'not json' }])
    expect(await runCli(['tenants'], garbled.fake)).toBe(EXIT.server)
  })

  it('sends the token as a bearer header to the API under the given URL', async () => {
    const run = io([{ status: 200, body: { tenants: [] } }])
    expect(
      await runCli(['--url', 'https://other.example/base/', 'tenants', '--app', 'ms-graph-mail'], run.fake),
    ).toBe(EXIT.ok)
    expect(run.requests[0]).toMatchObject({
      method: 'GET',
      url: 'https://other.example/base/admin/api/tenants?app=ms-graph-mail',
      headers: { authorization: 'Bearer secret-operator-token' },
    })
    expect(run.stdout()).toBe('no tenants\n')
  })

  it('refuses revoke without a reason, with both an id and --tenant, and --app with an id', async () => {
    for (const args of [
      ['revoke', 'id-1'],
      ['revoke', 'id-1', '--reason', '  '],
      ['revoke', 'id-1', '--tenant', 't', '--reason', 'r'],
      ['revoke', '--reason', 'r'],
      ['revoke', 'id-1', '--app', 'ms-graph-mail', '--reason', 'r'],
    ]) {
      const run = io([])
      expect(await runCli(args, run.fake), args.join(' ')).toBe(EXIT.usage)
      expect(run.requests).toEqual([])
    }
  })

  it('posts the reason of a tenant revocation, with the app', async () => {
    const tid = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'
    const run = io([{ status: 200, body: { tenantId: tid, app: 'a', revoked: [], alreadyRevoked: 2 } }])
    expect(await runCli(['revoke', '--tenant', tid, '--app', 'a', '--reason', 'done'], run.fake)).toBe(
      EXIT.ok,
    )
    expect(run.requests[0]).toMatchObject({
      method: 'POST',
      url: `https://broker.example/admin/api/tenants/${tid}/revoke`,
    })
    expect(JSON.parse(run.requests[0]!.body!)).toEqual({ reason: 'done', app: 'a' })
    expect(run.stdout()).toBe(`tenant ${tid} (a): revoked 0, already revoked 2\n`)
  })

  it('waits for a key rotation, printing progress, and exits 4 when registrations failed', async () => {
    const rotation = (state: string, scanned: number, failed = 0) => ({
      rotation: {
        state,
        keyId: 'k2',
        currentKeyId: 'k2',
        oldKeyIds: ['k1'],
        scanned,
        resealed: scanned - failed,
        unchanged: 0,
        failed,
        failedIds: failed > 0 ? ['reg-9'] : [],
      },
    })
    const run = io([
      { status: 202, body: { ...rotation('running', 0), started: true } },
      { status: 200, body: rotation('running', 100) },
      { status: 200, body: rotation('completed', 150, 1) },
    ])
    expect(await runCli(['rotate-keys'], run.fake)).toBe(EXIT.server)
    expect(run.sleeps).toEqual([500, 500])
    expect(run.stdout()).toContain('started\n')
    expect(run.stdout()).toContain('running: key k2, scanned 100')
    expect(run.stdout()).toContain('completed: key k2, scanned 150, re-sealed 149, unchanged 0, failed 1')
    expect(run.stderr()).toContain('registrations: reg-9')
  })

  describe('rotation (the status alone)', () => {
    const status = (state: string, failed: number, extra: Record<string, unknown> = {}) => ({
      rotation: {
        state,
        keyId: 'k2',
        currentKeyId: 'k2',
        oldKeyIds: ['k1'],
        scanned: 10,
        resealed: 10 - failed,
        unchanged: 0,
        failed,
        failedIds: failed > 0 ? ['reg-3'] : [],
        ...extra,
      },
    })

    it.each([
      ['completed', 0, EXIT.ok, ''],
      ['running', 0, EXIT.ok, ''],
      ['idle', 0, EXIT.ok, ''],
      ['completed', 1, EXIT.server, 'key rotation completed with failures; registrations: reg-3\n'],
      ['running', 1, EXIT.server, 'key rotation has failures so far; registrations: reg-3\n'],
      [
        'interrupted',
        0,
        EXIT.server,
        'key rotation was interrupted (an instance stopped); run rotate-keys again to resume\n',
      ],
    ])('a %s pass with %i failed exits %i', async (state, failed, code, stderr) => {
      const run = io([{ status: 200, body: status(state, failed) }])
      expect(await runCli(['rotation'], run.fake)).toBe(code)
      expect(run.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
        'GET https://broker.example/admin/api/keys/rotation',
      ])
      expect(run.stdout()).toBe(
        `${state}: key k2, scanned 10, re-sealed ${10 - failed}, unchanged 0, failed ${failed}\n`,
      )
      expect(run.stderr()).toBe(stderr)
    })

    it('a failed pass exits 4 with its error, also with --json (which still prints the status)', async () => {
      const body = status('failed', 0, { error: 'store unavailable' })
      const run = io([{ status: 200, body }])
      expect(await runCli(['--json', 'rotation'], run.fake)).toBe(EXIT.server)
      expect(JSON.parse(run.stdout())).toEqual(body)
      expect(run.stderr()).toBe('key rotation failed: store unavailable\n')
    })
  })
})

describe('audit --since', () => {
  it('sends an age as the time it names, on the first page only', async () => {
    const run = io([
      { status: 200, body: { items: [{ id: '1-0', at: 'a', type: 't', actor: 'x' }], nextCursor: '1-0' } },
      { status: 200, body: { items: [] } },
    ])
    expect(await runCli(['--json', 'audit', '--since', '24h', '--all'], run.fake)).toBe(EXIT.ok)
    expect(run.requests.map((r) => r.url)).toEqual([
      'https://broker.example/admin/api/audit?since=2026-11-25T12%3A00%3A00.000Z&limit=500',
      'https://broker.example/admin/api/audit?cursor=1-0&limit=500',
    ])
  })

  it('--newest-first asks for order=desc and pages back with the cursor', async () => {
    const run = io([
      { status: 200, body: { items: [{ id: '9-0', at: 'a', type: 't', actor: 'x' }], nextCursor: '9-0' } },
      { status: 200, body: { items: [] } },
    ])
    expect(await runCli(['--json', 'audit', '--newest-first', '--all'], run.fake)).toBe(EXIT.ok)
    expect(run.requests.map((r) => r.url)).toEqual([
      'https://broker.example/admin/api/audit?limit=500&order=desc',
      'https://broker.example/admin/api/audit?cursor=9-0&limit=500&order=desc',
    ])
    const other = io([])
    expect(await runCli(['tenants', '--newest-first'], other.fake)).toBe(EXIT.usage)
    expect(other.stderr()).toContain('--newest-first does not apply')
  })

  it('refuses a time it cannot read and --since with --cursor', async () => {
    for (const args of [
      ['audit', '--since', 'yesterday'],
      ['audit', '--since', '24x'],
      ['audit', '--since', '1h', '--cursor', '1-0'],
      ['audit', '--since', '1h', '--newest-first'],
    ]) {
      const run = io([])
      expect(await runCli(args, run.fake), args.join(' ')).toBe(EXIT.usage)
      expect(run.requests).toEqual([])
    }
  })
})

describe('error messages', () => {
  it('never echo control characters from the command line or the broker to the terminal', async () => {
    const clear = '\u001b[2J'
    for (const args of [
      [`${clear}wipe`],
      ['tenants', `${clear}extra`],
      ['registrations', '--status', `${clear}active`],
      ['audit', '--since', `${clear}1h`],
      ['tenants', '--limit', `${clear}5`],
      ['tenants', '--url', `${clear}ftp://x`],
    ]) {
      const run = io([])
      expect(await runCli(args, run.fake), args.join(' ')).toBe(EXIT.usage)
      expect(run.stderr(), args.join(' ')).toContain('?[2J')
      expect(run.stderr(), args.join(' ')).not.toContain('\u001b')
    }
    const refused = io([{ status: 400, body: error('invalid_request', `bad ${clear}value`) }])
    expect(await runCli(['tenants'], refused.fake)).toBe(EXIT.usage)
    expect(refused.stderr()).toContain('bad ?[2Jvalue')
    expect(refused.stderr()).not.toContain('\u001b')
  })
})

describe('table output', () => {
  it('never lets control characters from stored values reach the terminal', () => {
    expect(table(['REASON'], [['\u001b[2Jwiped\nline\u009b']])).toBe('REASON\n?[2Jwiped?line?\n')
  })

  it('pads columns to the widest cell and trims trailing space', () => {
    expect(
      table(
        ['A', 'LONG HEADER'],
        [
          ['value', 'x'],
          ['v', ''],
        ],
      ),
    ).toBe('A      LONG HEADER\nvalue  x\nv\n')
  })
})

describe('narrow tables (the default) and --wide', () => {
  const guid = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'
  it('shortens UUIDs and ISO times, and cuts the widest column to fit 120 columns', () => {
    const long = 'x'.repeat(200)
    const out = table(['TENANT', 'AT', 'DETAIL'], [[guid, '2026-11-30T10:04:05.123Z', long]])
    const lines = out.trimEnd().split('\n')
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(120)
    expect(lines[1]).toMatch(/^7c3b1e5a… {2,}2026-11-30 10:04Z {2,}x+…$/)
  })

  it('keeps every cell whole with --wide', () => {
    const long = 'x'.repeat(200)
    const out = table(['TENANT', 'DETAIL'], [[guid, long]], { wide: true })
    expect(out).toContain(guid)
    expect(out).toContain(long)
  })
})

describe('consent-broker-admin webhooks', () => {
  const EP = 'ep_0123456789abcdef01234567'
  const MSG = '0b8e5d0c-3c38-4f0e-9d0b-5f1c1a2b3c4d'

  it('add posts the URL and events and prints the secret once', async () => {
    const run = io([{ status: 201, body: { id: EP, secret: 'whsec_abc', endpoint: {} } }])
    expect(
      await runCli(
        ['webhooks', 'add', 'https://hooks.example/x', '--events', 'registration.needs_consent'],
        run.fake,
      ),
    ).toBe(EXIT.ok)
    expect(run.requests[0]).toMatchObject({
      method: 'POST',
      url: 'https://broker.example/admin/api/webhooks',
    })
    expect(JSON.parse(run.requests[0]?.body ?? '')).toEqual({
      url: 'https://hooks.example/x',
      events: ['registration.needs_consent'],
    })
    expect(run.stdout()).toContain('secret: whsec_abc')
  })

  it('list, deliveries, remove and redeliver call their routes', async () => {
    const run = io([
      {
        status: 200,
        body: { endpoints: [{ id: EP, url: 'https://h/x', events: [], createdAt: 't', createdBy: 'o' }] },
      },
      {
        status: 200,
        body: {
          deliveries: [
            {
              messageId: MSG,
              type: 'registration.created',
              status: 'pending',
              attempts: 2,
              lastStatusCode: 500,
            },
          ],
        },
      },
      { status: 204, body: '' },
      { status: 202, body: { messageId: MSG, status: 'pending' } },
    ])
    expect(await runCli(['webhooks', 'list'], run.fake)).toBe(EXIT.ok)
    expect(await runCli(['webhooks', 'deliveries', EP, '--limit', '5'], run.fake)).toBe(EXIT.ok)
    expect(await runCli(['webhooks', 'remove', EP], run.fake)).toBe(EXIT.ok)
    expect(await runCli(['webhooks', 'redeliver', EP, MSG], run.fake)).toBe(EXIT.ok)
    expect(run.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'GET https://broker.example/admin/api/webhooks',
      `GET https://broker.example/admin/api/webhooks/${EP}/deliveries?limit=5`,
      `DELETE https://broker.example/admin/api/webhooks/${EP}`,
      `POST https://broker.example/admin/api/webhooks/${EP}/deliveries/${MSG}/redeliver`,
    ])
    expect(run.stdout()).toContain('registration.created')
    expect(run.stdout()).toContain(`removed ${EP}`)
  })

  it('refuses bad usage before calling the broker', async () => {
    for (const args of [
      ['webhooks'],
      ['webhooks', 'explode'],
      ['webhooks', 'remove', 'not-an-id'],
      ['webhooks', 'list', '--events', 'x'],
      ['webhooks', 'redeliver', EP],
      ['webhooks', 'deliveries', EP, '--limit', '201'],
      ['webhooks', 'deliveries', EP, '--limit', '0'],
    ]) {
      const run = io([])
      expect(await runCli(args, run.fake)).toBe(EXIT.usage)
      expect(run.requests).toHaveLength(0)
    }
    const over = io([])
    await runCli(['webhooks', 'deliveries', EP, '--limit', '201'], over.fake)
    expect(over.stderr()).toContain('--limit must be an integer from 1 to 200, got "201"')
  })
})

describe('store upgrade commands', () => {
  const upgrade = (state: string, error?: string) => ({ upgrade: { state, ...(error ? { error } : {}) } })

  it('shows the state, and exits 4 when the last finish failed', async () => {
    const expanded = io([{ status: 200, body: upgrade('expanded') }])
    expect(await runCli(['upgrade'], expanded.fake)).toBe(EXIT.ok)
    expect(expanded.requests[0]).toMatchObject({
      method: 'GET',
      url: 'https://broker.example/admin/api/upgrade',
    })
    expect(expanded.stdout()).toContain('expanded: the store keeps the previous release layout too')
    const failed = io([{ status: 200, body: upgrade('failed', 'store unavailable') }])
    expect(await runCli(['upgrade'], failed.fake)).toBe(EXIT.server)
    expect(failed.stderr()).toBe('finishing the upgrade failed: store unavailable\n')
    const json = io([{ status: 200, body: upgrade('contracted') }])
    expect(await runCli(['--json', 'upgrade'], json.fake)).toBe(EXIT.ok)
    expect(JSON.parse(json.stdout())).toEqual(upgrade('contracted'))
  })

  it('finishes and waits until contracted, or exits 4 when it fails', async () => {
    const run = io([
      { status: 202, body: { ...upgrade('finishing'), started: true } },
      { status: 200, body: upgrade('finishing') },
      { status: 200, body: upgrade('contracted') },
    ])
    expect(await runCli(['finish-upgrade'], run.fake)).toBe(EXIT.ok)
    expect(run.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'POST https://broker.example/admin/api/upgrade/finish',
      'GET https://broker.example/admin/api/upgrade',
      'GET https://broker.example/admin/api/upgrade',
    ])
    expect(run.stdout()).toBe(
      'started\ncontracted: finished (rolling back to the previous release is not supported now)\n',
    )
    const failing = io([
      { status: 202, body: { ...upgrade('finishing'), started: true } },
      { status: 200, body: upgrade('failed', 'boom') },
    ])
    expect(await runCli(['finish-upgrade'], failing.fake)).toBe(EXIT.server)
    expect(failing.stderr()).toBe('finishing the upgrade failed: boom\n')
    const noWait = io([{ status: 202, body: { ...upgrade('finishing'), started: true } }])
    expect(await runCli(['finish-upgrade', '--no-wait'], noWait.fake)).toBe(EXIT.ok)
    expect(noWait.requests).toHaveLength(1)
  })

  it('gives up with exit 4 when every poll answers expanded (no instance is finishing)', async () => {
    const answers: Array<{ status: number; body: unknown }> = [
      { status: 202, body: { ...upgrade('finishing'), started: false } },
    ]
    for (let i = 0; i < 30; i++) answers.push({ status: 200, body: upgrade('expanded') })
    const run = io(answers)
    expect(await runCli(['finish-upgrade'], run.fake)).toBe(EXIT.server)
    expect(run.stderr()).toContain('the store is still expanded')
    expect(run.requests.length).toBeLessThan(30)
  })

  it('refuses options that do not apply', async () => {
    const run = io([])
    expect(await runCli(['upgrade', '--no-wait'], run.fake)).toBe(EXIT.usage)
    expect(await runCli(['finish-upgrade', '--app', 'x'], run.fake)).toBe(EXIT.usage)
    expect(run.requests).toHaveLength(0)
  })
})
