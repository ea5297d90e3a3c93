// What consent-broker-admin does with bad input before and around a request: a token or URL that
// could never work is refused locally with the documented exit code, a failed request is described
// from its cause without repeating fetch's message (which can hold the token or a URL's password),
// and the forms the CLI checks are the server's (the CLI imports nothing from src/, so they are
// restated in cli/input-checks.ts and held to the originals here).
import { createServer } from 'node:net'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { EXIT } from '../../cli/admin-commands.js'
import { fetchFailure } from '../../cli/broker-client.js'
import { operatorToken, REGISTRATION_ID, TENANT_ID } from '../../cli/input-checks.js'
import { isOperatorTokenForm } from '../../src/operator-token-form.js'
import { REGISTRATION_ID_PATTERN, TENANT_ID_PATTERN } from '../../src/routes/admin/schemas.js'
import { CREDENTIALS_OF_TWO_APPS, runScriptedCli, type ScriptedAnswer } from '../support/cli-harness.js'

const TOKEN = 'fuzz-rYCtiIGUwhN4CC7oFrTzE68jXwv_5e3c'

/** One command line against scripted answers (one per request); `fetch` replaces the fake. */
async function cli(
  argv: string[],
  options: { env?: Record<string, string>; answers?: ScriptedAnswer[]; fetch?: typeof fetch } = {},
) {
  return runScriptedCli(argv, options.answers ?? [], {
    env: { CONSENT_BROKER_TOKEN: TOKEN, ...options.env },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  })
}

describe('the operator token', () => {
  it.each([
    ['a line break and a second secret', `${TOKEN}\nother-secret`, 'a line break (character 38)'],
    ['a character outside Latin-1', `${TOKEN}€`, 'a character outside ASCII (character 38)'],
    ['a space', `${TOKEN} other-secret`, 'white space (character 38)'],
    ['a control character', `${TOKEN}\u0007`, 'a control character (character 38)'],
  ])('with %s is refused before any request, without echoing it (exit 2)', async (_, token, where) => {
    const run = await cli(['tenants'], { env: { CONSENT_BROKER_TOKEN: token } })
    expect(run.code).toBe(EXIT.auth)
    expect(run.requests).toEqual([])
    expect(run.stderr).toBe(
      `consent-broker-admin: CONSENT_BROKER_TOKEN is not an operator token: it holds ${where}; a token is printable ASCII without spaces\n`,
    )
    expect(run.stderr).not.toContain('fuzz-')
    expect(run.stderr).not.toContain('other-secret')
  })

  it('longer than the broker compares is refused (exit 2)', async () => {
    const run = await cli(['tenants'], { env: { CONSENT_BROKER_TOKEN: 'x'.repeat(513) } })
    expect(run.code).toBe(EXIT.auth)
    expect(run.stderr).toContain('it has 513 characters, at most 512 are allowed')
    expect(run.requests).toEqual([])
  })

  it('is accepted exactly when the server accepts its form (src/operator-token-form.ts)', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 600 }), fc.string({ unit: 'binary', maxLength: 40 })),
        (raw) => {
          const trimmed = raw.trim()
          let accepted = true
          try {
            operatorToken(raw)
          } catch {
            accepted = false
          }
          expect(accepted).toBe(trimmed !== '' && isOperatorTokenForm(trimmed))
        },
      ),
      { numRuns: 500 },
    )
  })
})

describe('the broker URL', () => {
  it.each([
    ['http://u:secretpw@127.0.0.1:1'],
    ['https://operator:secretpw@broker.example/'],
    ['https://secretpw@broker.example'],
  ])('%s: credentials are refused as a usage error, not echoed', async (url) => {
    const run = await cli(['--url', url, 'tenants'])
    expect(run.code).toBe(EXIT.usage)
    expect(run.requests).toEqual([])
    expect(run.stderr).toContain('--url: the URL holds a user name or password')
    expect(run.stderr).not.toContain('secretpw')
  })

  it.each([
    ['http://u:secretpw@[broken/'],
    // a password holding '#', '/' or '?': no longer a URL with user information to strip
    ['https://admin:s3cr#tsecretpw@broker.example'],
    ['https://admin:p/secretpw@broker.example'],
    ['https://admin:p?secretpw@broker.example'],
  ])('%s: an unparsable URL with an @ is not echoed at all', async (url) => {
    const run = await cli(['--url', url, 'tenants'])
    expect(run.code).toBe(EXIT.usage)
    expect(run.stderr).toContain('--url: (not shown: it holds "@", maybe a password) is not an http(s) URL')
    expect(run.stderr).not.toContain('secretpw')
  })

  it('an unparsable URL without an @ is echoed, to show what was wrong', async () => {
    const run = await cli(['--url', 'http://[broken/', 'tenants'])
    expect(run.code).toBe(EXIT.usage)
    expect(run.stderr).toContain('--url: "http://[broken" is not an http(s) URL')
  })

  it('a query or fragment is refused (every request would drop it)', async () => {
    for (const url of ['https://broker.example/?key=secretpw', 'https://broker.example/#x']) {
      const run = await cli(['--url', url, 'tenants'])
      expect(run.code, url).toBe(EXIT.usage)
      expect(run.stderr).not.toContain('secretpw')
    }
  })
})

describe('a failed request', () => {
  const failure = (code: string, message = `${code} Bearer ${TOKEN}`) =>
    new TypeError('fetch failed', { cause: Object.assign(new Error(message), { code }) })

  it.each([
    [failure('ECONNREFUSED'), 'connection refused (is the broker running, on that host and port?)'],
    [failure('ENOTFOUND'), 'the host name does not resolve (DNS)'],
    [failure('UND_ERR_SOCKET'), 'the connection closed before an answer'],
    [
      failure('CERT_HAS_EXPIRED'),
      "TLS failed (CERT_HAS_EXPIRED): check the URL's scheme and the broker's certificate",
    ],
    [
      failure('ERR_SSL_WRONG_VERSION_NUMBER'),
      "TLS failed (ERR_SSL_WRONG_VERSION_NUMBER): check the URL's scheme and the broker's certificate",
    ],
    [
      failure('HPE_INVALID_CONSTANT'),
      "the answer is not HTTP (HPE_INVALID_CONSTANT): check the URL's scheme and port",
    ],
    [failure('EPROTO'), 'the request failed (EPROTO)'],
    [failure(`Bearer ${TOKEN}`), 'the request failed'],
    [new DOMException('The operation was aborted due to timeout', 'TimeoutError'), 'no answer within 30 s'],
    [
      new TypeError('fetch failed', { cause: new Error('bad port') }),
      'fetch refuses to connect to this port (one reserved for other protocols)',
    ],
    [
      new TypeError('fetch failed', { cause: new AggregateError([failure('ECONNREFUSED').cause], 'x') }),
      'connection refused (is the broker running, on that host and port?)',
    ],
    [
      new TypeError(`Headers.append: "Bearer ${TOKEN}\nother-secret" is an invalid header value.`),
      'the request failed',
    ],
  ])('is described from its cause, never by its message (case %#)', (error, words) => {
    expect(fetchFailure(error)).toBe(words)
  })

  it('prints no part of fetch’s message (exit 4)', async () => {
    const run = await cli(['tenants'], {
      fetch: (async () => {
        throw new TypeError(`Headers.append: "Bearer ${TOKEN}" is an invalid header value.`)
      }) as typeof fetch,
    })
    expect(run.code).toBe(EXIT.server)
    expect(run.stderr).toBe(
      'consent-broker-admin: cannot reach the broker at https://broker.example: the request failed\n',
    )
  })

  it('to a closed port, with the real fetch, says the connection was refused (exit 4)', async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    await new Promise((resolve) => server.close(resolve))
    const url = `http://127.0.0.1:${port}`
    const run = await cli(['--url', url, 'tenants'], { fetch: globalThis.fetch })
    expect(run.code).toBe(EXIT.server)
    expect(run.stderr).toBe(
      `consent-broker-admin: cannot reach the broker at ${url}: connection refused (is the broker running, on that host and port?)\n`,
    )
  })
})

describe('ids that become a path segment', () => {
  const tid = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'

  it('have the forms of the API routes’ parameters', () => {
    expect(REGISTRATION_ID.source).toBe(REGISTRATION_ID_PATTERN)
    expect(TENANT_ID.source).toBe(TENANT_ID_PATTERN)
  })

  it.each([
    ['registration: "." is not a registration id', ['registration', '.']],
    ['registration: ".." is not a registration id', ['registration', '..']],
    ['registration: give a registration id', ['registration', '']],
    ['registration: give a registration id', ['registration']],
    ['registration: "a/b" is not a registration id', ['registration', 'a/b']],
    [`registration: "${'x'.repeat(80)}…" is not a registration id`, ['registration', 'x'.repeat(5000)]],
    ['revoke: "." is not a registration id', ['revoke', '.', '--reason', 'x']],
    ['revoke: ".." is not a registration id', ['revoke', '..', '--reason', 'x']],
    ['revoke --tenant: "." is not a tenant id', ['revoke', '--tenant', '.', '--reason', 'x']],
    ['revoke --tenant: give a tenant id', ['revoke', '--tenant', '', '--reason', 'x']],
    ['tenants label: "." is not a tenant id', ['tenants', 'label', '.', 'x']],
    ['tenants label: ".." is not a tenant id', ['tenants', 'label', '..', 'x']],
    ['tenants label: give a tenant id', ['tenants', 'label', '', 'x']],
    ['registrations --tenant: "contoso" is not a tenant id', ['registrations', '--tenant', 'contoso']],
  ])('%s: a usage error before any request', async (message, argv) => {
    const run = await cli(argv)
    expect(run.code).toBe(EXIT.usage)
    expect(run.requests).toEqual([])
    expect(run.stderr.split('\n')[0]).toContain(`consent-broker-admin: ${message}`)
  })

  it('of the accepted forms are sent (a tenant id in either case)', async () => {
    const run = await cli(['tenants', 'label', tid.toUpperCase(), 'x'], {
      answers: [{ body: { tenantId: tid, label: 'x' } }],
    })
    expect(run.code).toBe(EXIT.ok)
    expect(run.requests).toEqual([`https://broker.example/admin/api/tenants/${tid.toUpperCase()}`])
  })
})

describe('an answer of an unexpected shape', () => {
  const tid = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'
  it.each([
    [['registration', 'x'], {}, '"registration" is not an object'],
    [['registration', 'x'], { registration: null }, '"registration" is not an object'],
    [['revoke', 'x', '--reason', 'r'], { registration: { id: 'x' } }, '"statusDetail" is not an object'],
    [['revoke', '--tenant', tid, '--reason', 'r'], { revoked: 3 }, '"revoked" is not a list of objects'],
    [['tenants'], { tenants: null }, '"tenants" is not a list of objects'],
    [['registrations'], { items: [null] }, '"items" is not a list of objects'],
    [['audit'], {}, '"items" is not a list of objects'],
    [['credentials'], { credentials: {} }, '"credentials" is not a list of objects'],
    [['webhooks', 'list'], {}, '"endpoints" is not a list of objects'],
    [['rotation'], {}, '"rotation" is not an object'],
    [['upgrade'], { upgrade: 'x' }, '"upgrade" is not an object'],
  ])('%j answered %j is a clear error (exit 4)', async (argv, body, what) => {
    const run = await cli(argv, { answers: [{ body }] })
    expect(run.code).toBe(EXIT.server)
    expect(run.stderr).toBe(`consent-broker-admin: unexpected answer from the broker: ${what}\n`)
  })

  it('JSON that is not an object is a clear error (exit 4)', async () => {
    for (const body of [null, [], 'text', 3]) {
      const run = await cli(['registration', 'x'], { answers: [{ body: JSON.stringify(body) }] })
      expect(run.code).toBe(EXIT.server)
      expect(run.stderr).toBe('consent-broker-admin: the broker answered HTTP 200 without a JSON object\n')
    }
  })

  it('a tenant summary without its lists shows "-"', async () => {
    const run = await cli(['tenants'], { answers: [{ body: { tenants: [{ tenantId: tid }] } }] })
    expect(run.code).toBe(EXIT.ok)
    expect(run.stdout.split('\n')[1]).toMatch(/^7c3b1e5a… +- +- +- +- +- +-$/)
  })
})

describe('audit --since', () => {
  it.each(['99999999999d', '9999999999999h', `${'9'.repeat(30)}m`])(
    'an age past what a date holds (%s) is a usage error',
    async (age) => {
      const run = await cli(['audit', '--since', age])
      expect(run.code).toBe(EXIT.usage)
      expect(run.requests).toEqual([])
      expect(run.stderr.split('\n')[0]).toBe(
        `consent-broker-admin: --since: the age "${age}" reaches back before any time a date can hold`,
      )
    },
  )

  it('a long age that a date still holds is sent', async () => {
    const run = await cli(['audit', '--since', '99999999d'], { answers: [{ body: { items: [] } }] })
    expect(run.code).toBe(EXIT.ok)
    expect(run.requests[0]).toContain('since=-')
  })
})

describe('a request the broker finds too large', () => {
  it.each([413, 414, 431])('HTTP %i is a usage error, like a 400', async (status) => {
    const run = await cli(['registration', 'x'], { answers: [{ status, body: '' }] })
    expect(run.code).toBe(EXIT.usage)
    expect(run.stderr).toBe(`consent-broker-admin: the broker refused the request: HTTP ${status}\n`)
  })
})

describe('credentials --app', () => {
  const listed = CREDENTIALS_OF_TWO_APPS

  it('naming no hosted app is "not found", naming the hosted apps (exit 3)', async () => {
    for (const argv of [
      ['credentials', '--app', 'nope'],
      ['--json', 'credentials', '--app', 'nope'],
    ]) {
      const run = await cli(argv, { answers: [{ body: listed }] })
      expect(run.code).toBe(EXIT.notFound)
      expect(run.stdout).toBe('')
      expect(run.stderr).toBe(
        'consent-broker-admin: credentials: no hosted app "nope" (hosted: ms-graph-mail, ms-graph-user)\n',
      )
    }
  })

  it('naming a hosted app lists its credentials only', async () => {
    const run = await cli(['--json', 'credentials', '--app', 'ms-graph-user'], {
      answers: [{ body: listed }],
    })
    expect(run.code).toBe(EXIT.ok)
    expect(JSON.parse(run.stdout)).toEqual({ credentials: [listed.credentials[2]] })
  })
})
