// consent-broker-admin against scripted broker answers: the CliIo the unit tests hand to runCli,
// recording what it printed, asked and slept. One harness for cli-admin, cli-hints,
// cli-input-checks and cli-docs, so a change to CliIo is made once.
import { type CliIo, runCli } from '../../cli/admin-commands.js'

/** One scripted answer; they are served in order, one per request. */
export interface ScriptedAnswer {
  /** Default 200. */
  status?: number
  /** An object is sent as JSON; a string as it is. */
  body: unknown
  /** Default: application/json for a body that is not a string, none for a string. */
  contentType?: string
}

/** A request the CLI made, as fetch was called. */
export interface RecordedRequest {
  method: string
  url: string
  headers: Record<string, string>
  body?: string
}

/** What a scripted run of the CLI saw and did. */
export interface ScriptedCli {
  io: CliIo
  requests: RecordedRequest[]
  sleeps: number[]
  stdout: () => string
  stderr: () => string
}

/**
 * A CliIo whose fetch serves `answers` in order; a request past the last one fails as an
 * unreachable broker does (connection refused). `fetch` replaces the scripted one altogether.
 */
export function scriptedCli(
  answers: ScriptedAnswer[],
  options: { env?: Record<string, string>; fetch?: typeof fetch } = {},
): ScriptedCli {
  const queue = [...answers]
  const out: string[] = []
  const err: string[] = []
  const requests: RecordedRequest[] = []
  const sleeps: number[] = []
  const scripted = (async (input: URL, init: RequestInit = {}) => {
    requests.push({
      method: init.method ?? 'GET',
      url: String(input),
      headers: (init.headers ?? {}) as Record<string, string>,
      ...(typeof init.body === 'string' ? { body: init.body } : {}),
    })
    const answer = queue.shift()
    if (answer === undefined)
      throw new TypeError('fetch failed', {
        cause: Object.assign(new Error('connect ECONNREFUSED 10.0.0.9:443'), { code: 'ECONNREFUSED' }),
      })
    const status = answer.status ?? 200
    const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body)
    // a 204 has no body (the Response constructor refuses one)
    const response = new Response(status === 204 ? null : text, { status })
    const contentType =
      answer.contentType ?? (typeof answer.body === 'string' ? undefined : 'application/json')
    // a string body gets text/plain from the constructor: replaced, or removed when none is scripted
    if (contentType === undefined) response.headers.delete('content-type')
    else response.headers.set('content-type', contentType)
    return response
  }) as typeof fetch
  const io: CliIo = {
    env: {
      CONSENT_BROKER_URL: 'https://broker.example',
      CONSENT_BROKER_TOKEN: 'secret-operator-token',
      ...options.env,
    },
    stdout: (text) => {
      out.push(text)
    },
    stderr: (text) => {
      err.push(text)
    },
    sleep: async (ms) => {
      sleeps.push(ms)
    },
    now: () => Date.parse('2026-11-26T12:00:00.000Z'),
    fetch: options.fetch ?? scripted,
  }
  return { io, requests, sleeps, stdout: () => out.join(''), stderr: () => err.join('') }
}

/** One command line's outcome: its exit code, what it printed and the URLs it asked, in order. */
export interface CliRun {
  code: number
  stdout: string
  stderr: string
  requests: string[]
}

/** Runs one command line against `answers` (see scriptedCli). */
export async function runScriptedCli(
  argv: string[],
  answers: ScriptedAnswer[],
  options: { env?: Record<string, string>; fetch?: typeof fetch } = {},
): Promise<CliRun> {
  const run = scriptedCli(answers, options)
  const code = await runCli(argv, run.io)
  return { code, stdout: run.stdout(), stderr: run.stderr(), requests: run.requests.map((r) => r.url) }
}

/** `GET /admin/api/credentials` of a broker hosting ms-graph-mail (two clouds) and ms-graph-user. */
export const CREDENTIALS_OF_TWO_APPS = {
  credentials: [
    { app: 'ms-graph-mail', cloud: 'global', position: 1, kind: 'secret', credential: 'secret:A' },
    { app: 'ms-graph-mail', cloud: 'usgov', position: 1, kind: 'secret', credential: 'secret:B' },
    { app: 'ms-graph-user', cloud: 'global', position: 1, kind: 'secret', credential: 'secret:C' },
  ],
}
