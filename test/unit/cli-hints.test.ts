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
