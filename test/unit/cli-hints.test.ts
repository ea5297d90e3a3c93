// What consent-broker-admin tells an operator who got something slightly wrong: an id copied from a
// narrow table (cut to 8 characters), a misspelt option or command, a URL that is not the broker's,
// an --app filter naming no hosted app. Against scripted answers, like cli-admin.test.ts.
import { describe, expect, it } from 'vitest'
import { type CliIo, EXIT, runCli } from '../../cli/admin-commands.js'

interface Answer {
  status?: number
  body: unknown
  /** Default: application/json for a body that is not a string, none for a string. */
  contentType?: string
}

/** One command line against scripted answers (one per request, in order). */
async function cli(argv: string[], answers: Answer[] = [], env: Record<string, string> = {}) {
  let stdout = ''
  let stderr = ''
  const requests: string[] = []
  const io: CliIo = {
    env: {
      CONSENT_BROKER_URL: 'https://broker.example',
      CONSENT_BROKER_TOKEN: 'secret-operator-token',
      ...env,
    },
    stdout: (text) => {
      stdout += text
    },
    stderr: (text) => {
      stderr += text
    },
    sleep: async () => undefined,
    now: () => Date.parse('2026-11-26T12:00:00.000Z'),
    fetch: (async (input: URL) => {
      requests.push(String(input))
      const answer = answers.shift()
      if (answer === undefined) throw new TypeError('fetch failed')
      const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body)
      const contentType =
        answer.contentType ?? (typeof answer.body === 'string' ? undefined : 'application/json')
      const response = new Response(text, { status: answer.status ?? 200 })
      // a string body gets text/plain from the constructor: replaced, or removed when none is scripted
      if (contentType === undefined) response.headers.delete('content-type')
      else response.headers.set('content-type', contentType)
      return response
    }) as typeof fetch,
  }
  return { code: await runCli(argv, io), stdout, stderr, requests }
}

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
      'unknown option --zzz for "tenants" (it takes --app, --limit, --cursor, --all, --url, --json, --wide, --help)',
    ],
    [['tenant'], 'unknown command "tenant" (did you mean tenants?)'],
    [['tenant', '--ap', 'x'], 'unknown command "tenant" (did you mean tenants?)'],
    [['regstration', 'x'], 'unknown command "regstration" (did you mean registration?)'],
    [
      ['frobnicate'],
      'unknown command "frobnicate" (the commands: tenants, registrations, registration, revoke, audit, rotate-keys, rotation, webhooks, credentials, upgrade, finish-upgrade)',
    ],
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
