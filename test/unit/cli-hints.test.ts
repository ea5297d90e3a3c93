// What consent-broker-admin tells an operator who got something slightly wrong: an id copied from a
// narrow table (cut to 8 characters), a misspelt option or command, a URL that is not the broker's,
// an --app filter naming no hosted app. Against scripted answers, like cli-admin.test.ts.
import { describe, expect, it } from 'vitest'
import { EXIT } from '../../cli/admin-commands.js'
import { CREDENTIALS_OF_TWO_APPS, runScriptedCli, type ScriptedAnswer } from '../support/cli-harness.js'

/** One command line against scripted answers (one per request, in order). */
const cli = (argv: string[], answers: ScriptedAnswer[] = [], env: Record<string, string> = {}) =>
  runScriptedCli(argv, answers, { env })

const error = (code: string, message: string) => ({ error: { code, message }, message, request_id: 'r' })

describe('an id copied from a narrow table', () => {
  const notFound = (id: string) => ({ status: 404, body: error('not_found', `registration ${id} not found`) })

  it('is not found (exit 3), with a hint when no longer than a table shows', async () => {
    for (const args of [
      ['registration', '9b979a34'],
      ['revoke', '9b979a34', '--reason', 'x'],
      ['registration', '9b9'],
    ]) {
      const run = await cli(args, [notFound(args[1]!)])
      expect(run.code, args.join(' ')).toBe(EXIT.notFound)
      expect(run.requests).toHaveLength(1)
      expect(run.stderr).toBe(
        `consent-broker-admin: the broker refused the request: not_found: registration ${args[1]} not found\n` +
          'tables show only the first 8 characters of an id: use --wide or --json for the full id\n',
      )
    }
  })

  it('gets no hint when longer, or when the broker answers otherwise', async () => {
    const id = '9b979a34-0000-4000-8000-000000000000'
    const full = await cli(['registration', id], [notFound(id)])
    expect(full.code).toBe(EXIT.notFound)
    expect(full.stderr).not.toContain('first 8 characters')
    const refused = await cli(['registration', '9b979a34'], [{ status: 403, body: error('forbidden', 'no') }])
    expect(refused.code).toBe(EXIT.auth)
    expect(refused.stderr).not.toContain('first 8 characters')
  })

  it('holding the table\'s "…" is refused before any request, with the hint', async () => {
    const run = await cli(['revoke', '9b979a34…', '--reason', 'x'])
    expect(run.code).toBe(EXIT.usage)
    expect(run.requests).toEqual([])
    expect(run.stderr).toContain('is not a registration id')
    expect(run.stderr).toContain('tables show only the first 8 characters of an id')
  })

  it('a message id copied from the deliveries table gets the hint too, before any request', async () => {
    const endpoint = `ep_${'0'.repeat(24)}`
    for (const message of ['1f2e3d4c', '1f2e3d4c…']) {
      const run = await cli(['webhooks', 'redeliver', endpoint, message])
      expect(run.code, message).toBe(EXIT.usage)
      expect(run.requests).toEqual([])
      expect(run.stderr, message).toContain(
        'webhooks redeliver: give the endpoint id and the message id\ntables show only the first 8 characters of an id',
      )
    }
    // a malformed id of another length: no hint
    const other = await cli(['webhooks', 'redeliver', endpoint, 'not-a-message-id'])
    expect(other.stderr).not.toContain('tables show only')
  })
})

describe('a misspelt option or command', () => {
  const usage = (message: string) => `consent-broker-admin: ${message}\nRun with --help for usage.\n`

  it.each([
    [['tenants', '--ap', 'ms-graph-mail'], 'unknown option --ap for "tenants" (did you mean --app?)'],
    [['tenants', '--ap=ms-graph-mail'], 'unknown option --ap for "tenants" (did you mean --app?)'],
    [
      ['registrations', '--staus', 'active'],
      'unknown option --staus for "registrations" (did you mean --status?)',
    ],
    [['rotate-keys', '--nowait'], 'unknown option --nowait for "rotate-keys" (did you mean --no-wait?)'],
    [['--jsn', 'tenants'], 'unknown option --jsn (did you mean --json?)'],
    [
      ['tenants', '--zzz'],
      'unknown option --zzz for "tenants" (it takes --app, --limit, --cursor, --all, --url, --json, --wide, --help; a value starting with "-" goes after "--")',
    ],
    [['tenant'], 'unknown command "tenant" (did you mean tenants?)'],
    [['tenant', '--ap', 'x'], 'unknown command "tenant" (did you mean tenants?)'],
    [['regstration', 'x'], 'unknown command "regstration" (did you mean registration?)'],
    [
      ['frobnicate'],
      'unknown command "frobnicate" (the commands: tenants, registrations, registration, revoke, audit, rotate-keys, rotation, webhooks, credentials, upgrade, finish-upgrade)',
    ],
    // names every object has are no commands (they crashed the hint, or reached the broker)
    ...['toString', 'constructor', '__proto__'].flatMap(
      (name): Array<[string[], string]> => [
        [
          [name],
          `unknown command "${name}" (the commands: tenants, registrations, registration, revoke, audit, rotate-keys, rotation, webhooks, credentials, upgrade, finish-upgrade)`,
        ],
        [
          [name, '--x'],
          `unknown command "${name}" (the commands: tenants, registrations, registration, revoke, audit, rotate-keys, rotation, webhooks, credentials, upgrade, finish-upgrade)`,
        ],
      ],
    ),
  ])('%j: the nearest name or the list, exit 1', async (argv, message) => {
    const run = await cli(argv)
    expect(run.code).toBe(EXIT.usage)
    expect(run.requests).toEqual([])
    expect(run.stderr).toBe(usage(message))
  })

  it("never echoes an option's value, nor a name that is not a plain one", async () => {
    const secret = 'eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.sig'
    for (const argv of [
      ['tenants', `--${secret}`],
      ['tenants', `--tokn=${secret}`],
      ['--tokn', secret],
      ['--tokn', secret, 'tenants'],
      ['tenants', `--${'a'.repeat(41)}`],
    ]) {
      const run = await cli(argv)
      expect(run.code, argv.join(' ')).toBe(EXIT.usage)
      expect(run.stderr, argv.join(' ')).not.toMatch(/eyJ|c2Vj|a{41}/)
      expect(run.stderr).not.toContain("place it at the end of the command after '--'")
    }
    expect((await cli(['tenants', `--${secret}`])).stderr).toContain(
      'an unknown option for "tenants" (it takes',
    )
    expect((await cli(['--tokn', secret])).stderr).toContain('unknown option --tokn (it takes --app,')
  })
})

describe('a --url that is not the broker', () => {
  // Fastify's default 404, as another Fastify service (the emulator) answers it
  const fastify404 = {
    message: 'Route GET:/admin/api/tenants not found',
    error: 'Not Found',
    statusCode: 404,
  }

  it('is named with the request, status and content type, exit 4 (not 3)', async () => {
    const run = await cli(
      ['tenants', '--cursor', 'c1'],
      [{ status: 404, body: fastify404, contentType: 'application/json; charset=utf-8' }],
      { CONSENT_BROKER_URL: 'http://127.0.0.1:3001' },
    )
    expect(run.code).toBe(EXIT.server)
    expect(run.stderr).toBe(
      "consent-broker-admin: http://127.0.0.1:3001 does not look like a consent-broker: GET http://127.0.0.1:3001/admin/api/tenants answered HTTP 404 (application/json; charset=utf-8) without the broker's JSON error\n",
    )
    expect(run.stderr).not.toContain('c1')
  })

  it.each([
    [
      'an HTML page',
      { status: 404, body: '<html>Not found</html>', contentType: 'text/html' },
      'HTTP 404 (text/html)',
    ],
    [
      "the broker's shape, but not as JSON",
      { status: 404, body: JSON.stringify(error('not_found', 'x')), contentType: 'text/plain' },
      'HTTP 404 (text/plain)',
    ],
    ['no body, no content type', { status: 401, body: '' }, 'HTTP 401 (no content type)'],
    [
      'a success without JSON',
      { status: 200, body: '<html>app</html>', contentType: 'text/html' },
      'HTTP 200 (text/html)',
    ],
  ])('%s is not the broker', async (_, answer, said) => {
    const run = await cli(['registration', '9b979a34'], [answer])
    expect(run.code).toBe(EXIT.server)
    expect(run.stderr).toContain(
      'https://broker.example does not look like a consent-broker: GET https://broker.example/admin/api/registrations/9b979a34 answered ' +
        said,
    )
    expect(run.stderr).not.toContain('first 8 characters')
  })

  it('a proxy in front of a broker that is down may be the one answering', async () => {
    const run = await cli(
      ['tenants'],
      [{ status: 502, body: '<html>Bad Gateway</html>', contentType: 'text/html' }],
    )
    expect(run.code).toBe(EXIT.server)
    expect(run.stderr).toContain(
      'does not look like a consent-broker (or a proxy in front of it could not reach it): GET',
    )
  })

  it.each([
    ['http://host:3000/admin/api', 'http://host:3000', '/admin/api'],
    ['http://host:3000/admin/', 'http://host:3000', '/admin'],
    ['https://example.com/broker/admin/api', 'https://example.com/broker', '/admin/api'],
  ])('a base URL %s is told to be the base URL', async (base, root, suffix) => {
    const hint = `\ngive the broker's base URL (${root}), without ${suffix}\n`
    // another service
    const other = await cli(['tenants'], [{ status: 404, body: 'no', contentType: 'text/html' }], {
      CONSENT_BROKER_URL: base,
    })
    expect(other.code).toBe(EXIT.server)
    expect(other.stderr).toMatch(
      /does not look like a consent-broker: GET .*\/admin\/api\/tenants answered HTTP 404/,
    )
    expect(other.stderr.endsWith(hint)).toBe(true)
    // the broker itself, which has no route at …/admin/api/admin/api/tenants: its 404, with the hint
    // and exit 4: nothing was looked up, so not 3 (a script would take the tenant as gone)
    const broker = await cli(
      ['tenants'],
      [{ status: 404, body: error('not_found', 'no route for GET at this path') }],
      { CONSENT_BROKER_URL: base },
    )
    expect(broker.code).toBe(EXIT.server)
    expect(broker.stderr).toBe(
      `consent-broker-admin: the broker refused the request: not_found: no route for GET at this path${hint}`,
    )
  })

  it("keeps the broker's own errors as they were", async () => {
    const run = await cli(
      ['tenants'],
      [{ status: 403, body: error('forbidden', 'no'), contentType: 'application/json; charset=utf-8' }],
    )
    expect(run.code).toBe(EXIT.auth)
    expect(run.stderr).toBe('consent-broker-admin: the broker refused the request: forbidden: no\n')
  })
})

describe('--app naming no hosted app', () => {
  const hosted = CREDENTIALS_OF_TWO_APPS

  it.each([
    [
      ['tenants', '--app', 'ms-graph-mai'],
      { tenants: [] },
      'tenants --app: "ms-graph-mai" is not a hosted app (did you mean ms-graph-mail?)',
    ],
    [
      ['--json', 'tenants', '--app', 'ms-graph-mai', '--all'],
      { tenants: [] },
      'tenants --app: "ms-graph-mai" is not a hosted app (did you mean ms-graph-mail?)',
    ],
    [['registrations', '--app', 'bogus'], { items: [] }, 'registrations --app: "bogus" is not a hosted app'],
  ])('%j: an empty listing is checked, exit 3', async (argv, empty, said) => {
    const run = await cli(argv, [{ body: empty }, { body: hosted }])
    expect(run.code).toBe(EXIT.notFound)
    expect(run.stdout).toBe('')
    expect(run.stderr).toBe(`consent-broker-admin: ${said}; hosted: ms-graph-mail, ms-graph-user\n`)
    expect(run.requests.at(-1)).toBe('https://broker.example/admin/api/credentials')
  })

  it('a hosted app without registrations keeps its empty listing, exit 0', async () => {
    const tenants = await cli(
      ['tenants', '--app', 'ms-graph-user'],
      [{ body: { tenants: [] } }, { body: hosted }],
    )
    expect(tenants.code).toBe(EXIT.ok)
    expect(tenants.stdout).toBe('no tenants\n')
    const registrations = await cli(
      ['registrations', '--app', 'ms-graph-user'],
      [{ body: { items: [] } }, { body: hosted }],
    )
    expect(registrations.code).toBe(EXIT.ok)
    expect(registrations.stdout).toBe('no registrations\n')
  })

  it('asks nothing more when the listing has items (an app no longer hosted still lists) or no --app', async () => {
    const removed = { id: 'r1', tenantId: 't', app: 'ms-graph-old', status: 'active' }
    const listed = await cli(['registrations', '--app', 'ms-graph-old'], [{ body: { items: [removed] } }])
    expect(listed.code).toBe(EXIT.ok)
    expect(listed.stdout).toContain('ms-graph-old')
    expect(listed.requests).toHaveLength(1)
    const unfiltered = await cli(['tenants'], [{ body: { tenants: [] } }])
    expect(unfiltered.code).toBe(EXIT.ok)
    expect(unfiltered.requests).toHaveLength(1)
  })

  it('keeps the empty listing when the check fails (a broker without the credentials route)', async () => {
    const run = await cli(
      ['tenants', '--app', 'ms-graph-mai'],
      [{ body: { tenants: [] } }, { status: 404, body: error('not_found', 'no route for GET at this path') }],
    )
    expect(run.code).toBe(EXIT.ok)
    expect(run.stdout).toBe('no tenants\n')
  })
})
