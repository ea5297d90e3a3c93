// consent-broker-admin (commands; the executable is cli/admin.ts): the operator API from a shell. Talks HTTP only (no import from src/), reads
// the operator token from CONSENT_BROKER_TOKEN (never from an argument, which would land in shell
// history and process listings), prints tables by default and JSON with --json.
import { parseArgs } from 'node:util'
import { printable, table } from './table.js'
import { finishUpgrade, showUpgrade, type UpgradeCommandContext } from './upgrade-commands.js'

export { printable, table } from './table.js'

export const EXIT = {
  ok: 0,
  /** Bad command line, or the broker refused the request as invalid (400). */
  usage: 1,
  /** No token, or the broker refused it (401/403). */
  auth: 2,
  /** The registration or tenant does not exist (404). */
  notFound: 3,
  /**
   * Network failure, timeout, 5xx or an unexpected answer; a key rotation that failed, was
   * interrupted or has failures (rotate-keys, rotation); an upgrade finish that failed or did not
   * complete (upgrade, finish-upgrade).
   */
  server: 4,
} as const

const USAGE = `Usage: consent-broker-admin [--url <broker URL>] [--json | --wide] <command> [options]

Commands:
  tenants [--app <slug>] [--limit <1-500>] [--cursor <cursor>] [--all]
      Tenants with their label, apps, registration counts by status, last token and last
      consent, by tenant id; --all follows every page.
  tenants label <tid> <label>
      Set a tenant's label (quote it when it has spaces); replaces the default, the
      first consenting user's domain. Audited.
  registrations [--tenant <tid>] [--app <slug>] [--status active|needs_consent|revoked]
                [--limit <1-500>] [--cursor <cursor>] [--all]
      Registrations, oldest first; --all follows every page.
  registration <id>
      One registration (metadata only, never a secret).
  revoke <id> --reason <text>
  revoke --tenant <tid> [--app <slug>] --reason <text>
      Revoke one registration, or every registration of a tenant (of one app). Idempotent.
  audit [--cursor <id> | --since <time>] [--limit <1-500>] [--all] [--newest-first]
      The audit trail, oldest first; --since takes an ISO 8601 time or an age
      such as 30m, 24h or 7d. --newest-first: the latest events first, --cursor
      paging back in time (not with --since).
  rotate-keys [--no-wait]
      Re-seal every stored secret under the newest master key; waits and shows progress.
  rotation
      Progress of the latest key rotation; exits 4 when it failed, was
      interrupted or could not re-seal some registrations.
  webhooks list
  webhooks add <url> [--events <type,type…>]
  webhooks remove <endpoint id>
  webhooks deliveries <endpoint id> [--limit <1-200>]
  webhooks redeliver <endpoint id> <message id>
      Notification endpoints: add prints the signing secret (shown only once);
      deliveries shows status, attempts, next retry and the last answer.
  credentials [--app <slug>]
      The hosted apps' own credentials in the order they are tried: kind,
      thumbprint or name, expiry, last success, and a refusal by Microsoft.
  upgrade
      Whether the store still keeps the previous release's layout (expanded: a
      rolling upgrade, rollback possible) or not (contracted); exits 4 when the
      last finish failed.
  finish-upgrade [--no-wait]
      Once EVERY instance runs this release: re-sync the indexes from the
      records, move claims and idle entries, drop the previous release's
      layout; waits until contracted. Rolling back to the previous release is
      not supported afterwards. Idempotent; audited.

Options:
  --url <url>    broker base URL (default: $CONSENT_BROKER_URL)
  --json         print the broker's JSON instead of a table
  --wide         full ids and times in tables, and the registrations' cloud, kind,
                 consent time and own app's client id (default: fitted to 120
                 columns, ids shortened to their first 8 characters; an own app
                 registration's app is marked "own")
  -h, --help     this help

Environment:
  CONSENT_BROKER_TOKEN   operator token (required)
  CONSENT_BROKER_URL     broker base URL, when --url is not given

Exit codes: 0 ok, 1 usage or invalid request, 2 authentication, 3 not found,
            4 server or network error, or a key rotation that failed, was
              interrupted or left registrations it could not re-seal
              (rotate-keys, rotation), or an upgrade finish that failed or
              did not complete (upgrade, finish-upgrade).
`

class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message)
  }
}

const usageError = (message: string) => new CliError(`${message}\nRun with --help for usage.`, EXIT.usage)

export interface CliIo {
  env: Readonly<Record<string, string | undefined>>
  stdout: (text: string) => void
  stderr: (text: string) => void
  fetch: typeof fetch
  sleep: (ms: number) => Promise<void>
  now: () => number
}

type Json = Record<string, unknown>

interface Client {
  get(path: string): Promise<Json>
  post(path: string, body?: Json): Promise<Json>
  patch(path: string, body: Json): Promise<Json>
  delete(path: string): Promise<Json>
}

const REQUEST_TIMEOUT_MS = 30_000

function exitCodeFor(status: number): number {
  if (status === 401 || status === 403) return EXIT.auth
  if (status === 404) return EXIT.notFound
  if (status === 400 || status === 413) return EXIT.usage
  return EXIT.server
}

function makeClient(baseUrl: string, token: string, io: CliIo): Client {
  const call = async (
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    body?: Json,
  ): Promise<Json> => {
    let response: Response
    try {
      response = await io.fetch(new URL(path, `${baseUrl}/`), {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      })
    } catch (error) {
      const reason =
        error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : ''
      throw new CliError(`cannot reach the broker at ${baseUrl}: ${reason}`, EXIT.server)
    }
    const text = await response.text()
    let parsed: Json | undefined
    try {
      parsed = JSON.parse(text) as Json
    } catch {
      parsed = undefined
    }
    if (!response.ok) {
      const error = parsed?.error as { code?: string; message?: string } | undefined
      const detail =
        error?.code === undefined ? `HTTP ${response.status}` : `${error.code}: ${error.message ?? ''}`
      throw new CliError(`the broker refused the request: ${detail}`, exitCodeFor(response.status))
    }
    if (response.status === 204) return {}
    if (parsed === undefined)
      throw new CliError(`the broker answered HTTP ${response.status} without JSON`, EXIT.server)
    return parsed
  }
  return {
    get: (path) => call('GET', path),
    post: (path, body) => call('POST', path, body),
    patch: (path, body) => call('PATCH', path, body),
    delete: (path) => call('DELETE', path),
  }
}

// ---- output ----------------------------------------------------------------------------------

const text = (value: unknown): string =>
  value === undefined || value === null ? '-' : printable(String(value))

function query(params: Record<string, string | undefined>): string {
  const search = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) if (value !== undefined) search.set(name, value)
  const encoded = search.toString()
  return encoded === '' ? '' : `?${encoded}`
}

/** A tenant id with its label beside it, when it has one: `7c3b1e5a-… contoso.com`. */
function tenantCell(tenantId: unknown, label: unknown): string {
  return label === undefined || label === null ? text(tenantId) : `${text(tenantId)} ${text(label)}`
}

/**
 * The app's slug, marked `own` when the tenant brought its own app registration; --wide adds that
 * app's client id (narrow tables keep 120 columns; `registration <id>` and --json show it too).
 */
function appCell(app: unknown, ownClientId: unknown, wide: boolean): string {
  if (ownClientId === undefined || ownClientId === null) return text(app)
  return wide ? `${text(app)} own ${text(ownClientId)}` : `${text(app)} own`
}

/**
 * Registrations as a table. Narrow (the default) keeps what fits 120 columns: the id, the tenant
 * with its label, the app (`own` for a tenant's own app registration), status, who consented, the last token and the detail; --wide adds the
 * cloud, the kind (an app's kind is fixed by the apps file) and the consent time.
 */
function registrationTable(items: Json[], options: Options): string {
  const wideOnly = (cells: string[]) => (options.wide ? cells : [])
  const headers = [
    'ID',
    'TENANT',
    'APP',
    ...wideOnly(['CLOUD', 'KIND']),
    'STATUS',
    'USER',
    ...wideOnly(['CONSENTED']),
    'LAST TOKEN',
    'DETAIL',
  ]
  const rows = items.map((r) => {
    const detail = r.statusDetail as Json | undefined
    return [
      text(r.id),
      tenantCell(r.tenantId, r.tenantLabel),
      appCell(r.app, r.ownClientId, options.wide),
      ...wideOnly([text(r.cloud), text(r.kind)]),
      text(r.status),
      text((r.consentedBy as Json | undefined)?.upn ?? r.userName),
      ...wideOnly([text(r.consentedAt)]),
      text(r.lastIssuedAt),
      detail === undefined
        ? '-'
        : `${text(detail.code)}${detail.reason === undefined ? '' : `: ${text(detail.reason)}`}`,
    ]
  })
  return table(headers, rows, options)
}

function positiveLimit(value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 500) {
    throw usageError(`--limit must be an integer from 1 to 500, got "${value}"`)
  }
  return value
}

// ---- commands ----------------------------------------------------------------------------------

interface Options {
  json: boolean
  /** Full ids and times, no 120-column limit. */
  wide: boolean
  app?: string
  tenant?: string
  status?: string
  limit?: string
  cursor?: string
  since?: string
  all: boolean
  reason?: string
  wait: boolean
  newestFirst: boolean
  events?: string
}

const ALLOWED: Record<string, ReadonlyArray<keyof Options>> = {
  tenants: ['app', 'limit', 'cursor', 'all'],
  registrations: ['tenant', 'app', 'status', 'limit', 'cursor', 'all'],
  registration: [],
  revoke: ['tenant', 'app', 'reason'],
  audit: ['cursor', 'since', 'limit', 'all', 'newestFirst'],
  'rotate-keys': ['wait'],
  rotation: [],
  webhooks: ['events', 'limit'],
  credentials: ['app'],
  upgrade: [],
  'finish-upgrade': ['wait'],
}

async function tenants(client: Client, options: Options, io: CliIo): Promise<number> {
  const list: Json[] = []
  let cursor = options.cursor
  let nextCursor: string | undefined
  do {
    const page = await client.get(
      `admin/api/tenants${query({
        app: options.app,
        limit: positiveLimit(options.limit) ?? (options.all ? '500' : undefined),
        cursor,
      })}`,
    )
    list.push(...(page.tenants as Json[]))
    nextCursor = page.nextCursor as string | undefined
    cursor = nextCursor
  } while (options.all && cursor !== undefined)
  if (options.json) return print(io, { tenants: list, ...(nextCursor === undefined ? {} : { nextCursor }) })
  if (list.length === 0) {
    io.stdout(
      nextCursor === undefined
        ? 'no tenants\n'
        : `no tenants on this page\nmore: --cursor ${nextCursor} (or --all)\n`,
    )
    return EXIT.ok
  }
  io.stdout(
    table(
      // No last-token column: tenant summaries don't keep one (registrations do; see `registrations`).
      ['TENANT', 'LABEL', 'APPS', 'ACTIVE', 'NEEDS CONSENT', 'REVOKED', 'LAST CONSENT'],
      list.map((t) => {
        const counts = t.registrations as Json
        return [
          text(t.tenantId),
          text(t.label),
          (t.apps as string[]).join(','),
          text(counts.active),
          text(counts.needs_consent),
          text(counts.revoked),
          text(t.lastConsentAt),
        ]
      }),
      options,
    ),
  )
  if (nextCursor !== undefined) io.stdout(`more: --cursor ${nextCursor} (or --all)\n`)
  return EXIT.ok
}

async function labelTenant(
  client: Client,
  args: readonly string[],
  options: Options,
  io: CliIo,
): Promise<number> {
  const [tenantId, label, extra] = args
  if (tenantId === undefined || label === undefined)
    throw usageError('tenants label: give the tenant id and the label')
  if (extra !== undefined)
    throw usageError(`tenants label: unexpected argument "${printable(extra)}" (quote a label with spaces)`)
  for (const name of ['app', 'limit', 'cursor'] as const)
    if (options[name] !== undefined) throw usageError(`tenants label: --${name} does not apply`)
  if (options.all) throw usageError('tenants label: --all does not apply')
  const body = await client.patch(`admin/api/tenants/${encodeURIComponent(tenantId)}`, { label })
  if (options.json) return print(io, body)
  io.stdout(
    `tenant ${text(body.tenantId)}: label "${text(body.label)}"${body.previous === undefined ? '' : ` (was "${text(body.previous)}")`}\n`,
  )
  return EXIT.ok
}

async function registrations(client: Client, options: Options, io: CliIo): Promise<number> {
  if (options.status !== undefined && !['active', 'needs_consent', 'revoked'].includes(options.status)) {
    throw usageError(`--status must be active, needs_consent or revoked, got "${options.status}"`)
  }
  const items: Json[] = []
  let cursor = options.cursor
  let nextCursor: string | undefined
  do {
    const page = await client.get(
      `admin/api/registrations${query({
        tenant: options.tenant,
        app: options.app,
        status: options.status,
        limit: positiveLimit(options.limit) ?? (options.all ? '500' : undefined),
        cursor,
      })}`,
    )
    items.push(...(page.items as Json[]))
    nextCursor = page.nextCursor as string | undefined
    cursor = nextCursor
  } while (options.all && cursor !== undefined)
  if (options.json) return print(io, { items, ...(nextCursor === undefined ? {} : { nextCursor }) })
  io.stdout(items.length === 0 ? 'no registrations\n' : registrationTable(items, options))
  if (nextCursor !== undefined) io.stdout(`more: --cursor ${nextCursor} (or --all)\n`)
  return EXIT.ok
}

async function registration(client: Client, id: string, options: Options, io: CliIo): Promise<number> {
  const body = await client.get(`admin/api/registrations/${encodeURIComponent(id)}`)
  if (options.json) return print(io, body)
  const r = body.registration as Json
  const rows = Object.entries(r).map(([name, value]) => [
    name,
    typeof value === 'object' && value !== null ? JSON.stringify(value) : text(value),
  ])
  // One registration: every value whole (the place to copy a full id from).
  io.stdout(table(['FIELD', 'VALUE'], rows, { wide: true }))
  return EXIT.ok
}

async function revoke(client: Client, id: string | undefined, options: Options, io: CliIo): Promise<number> {
  const reason = options.reason?.trim()
  if (reason === undefined || reason === '') throw usageError('revoke: --reason is required (it is recorded)')
  if ((id === undefined) === (options.tenant === undefined)) {
    throw usageError('revoke: give a registration id, or --tenant <tid> (not both)')
  }
  if (id !== undefined) {
    if (options.app !== undefined) throw usageError('revoke: --app goes with --tenant only')
    const body = await client.post(`admin/api/registrations/${encodeURIComponent(id)}/revoke`, { reason })
    if (options.json) return print(io, body)
    const r = body.registration as Json
    const detail = r.statusDetail as Json
    io.stdout(
      body.alreadyRevoked === true
        ? `${text(r.id)} was already revoked on ${text(detail.at)} by ${text(detail.by)}: ${text(detail.reason)}\n`
        : `revoked ${text(r.id)} (${text(r.app)}, tenant ${text(r.tenantId)}) at ${text(detail.at)}\n`,
    )
    return EXIT.ok
  }
  const body = await client.post(`admin/api/tenants/${encodeURIComponent(options.tenant!)}/revoke`, {
    reason,
    ...(options.app === undefined ? {} : { app: options.app }),
  })
  if (options.json) return print(io, body)
  const revoked = body.revoked as Json[]
  io.stdout(
    `tenant ${text(body.tenantId)}${options.app === undefined ? '' : ` (${options.app})`}: revoked ${revoked.length}, already revoked ${text(body.alreadyRevoked)}\n`,
  )
  if (revoked.length > 0) io.stdout(registrationTable(revoked, options))
  return EXIT.ok
}

/** `--since`: an ISO 8601 time, or an age such as `30m`, `24h`, `7d` before `now`. */
export function sinceTime(value: string, now: number): string {
  const age = /^(\d+)([mhd])$/.exec(value)
  if (age !== null) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as 'm' | 'h' | 'd']
    return new Date(now - Number(age[1]) * unit).toISOString()
  }
  const ms = Date.parse(value)
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || !Number.isFinite(ms)) {
    throw usageError(`--since must be an ISO 8601 time or an age like 30m, 24h, 7d; got "${value}"`)
  }
  return new Date(ms).toISOString()
}

async function audit(client: Client, options: Options, io: CliIo): Promise<number> {
  if (options.since !== undefined && options.cursor !== undefined) {
    throw usageError('audit: give --cursor or --since, not both')
  }
  if (options.since !== undefined && options.newestFirst) {
    throw usageError('audit: --since reads oldest first; not with --newest-first')
  }
  const order = options.newestFirst ? 'desc' : undefined
  const items: Json[] = []
  let cursor = options.cursor
  let since = options.since === undefined ? undefined : sinceTime(options.since, io.now())
  let nextCursor: string | undefined
  do {
    const page = await client.get(
      `admin/api/audit${query({ cursor, since, limit: positiveLimit(options.limit) ?? (options.all ? '500' : undefined), order })}`,
    )
    since = undefined
    items.push(...(page.items as Json[]))
    nextCursor = page.nextCursor as string | undefined
    cursor = nextCursor
  } while (options.all && cursor !== undefined)
  if (options.json) return print(io, { items, ...(nextCursor === undefined ? {} : { nextCursor }) })
  io.stdout(
    items.length === 0
      ? 'no events\n'
      : table(
          // Narrow, the event id (a paging cursor, printed on the "more:" line) gives way.
          [...(options.wide ? ['ID'] : []), 'AT', 'TYPE', 'ACTOR', 'TENANT', 'APP', 'REGISTRATION', 'DETAIL'],
          items.map((e) => [
            ...(options.wide ? [text(e.id)] : []),
            text(e.at),
            text(e.type),
            text(e.actor),
            text(e.tenantId),
            text(e.app),
            text(e.registrationId),
            e.detail === undefined
              ? '-'
              : Object.entries(e.detail as Json)
                  .map(([name, value]) => `${name}=${text(value)}`)
                  .join(' '),
          ]),
          options,
        ),
  )
  if (nextCursor !== undefined) io.stdout(`more: --cursor ${nextCursor} (or --all)\n`)
  return EXIT.ok
}

function progress(rotation: Json): string {
  return `${text(rotation.state)}: key ${text(rotation.keyId)}, scanned ${text(rotation.scanned)}, re-sealed ${text(rotation.resealed)}, unchanged ${text(rotation.unchanged)}, failed ${text(rotation.failed)}`
}

/**
 * EXIT.server, with the reason on stderr, when a rotation status shows a problem: the pass failed,
 * was interrupted (an instance stopped), or left registrations it could not re-seal. Else EXIT.ok
 * (a pass still running without failures is no problem yet).
 */
function rotationOutcome(rotation: Json, io: CliIo): number {
  if (rotation.state === 'interrupted') {
    io.stderr('key rotation was interrupted (an instance stopped); run rotate-keys again to resume\n')
    return EXIT.server
  }
  if (rotation.state === 'failed' || Number(rotation.failed) > 0) {
    const ids = (rotation.failedIds as string[] | undefined) ?? []
    const what =
      rotation.state === 'failed'
        ? `failed: ${text(rotation.error)}`
        : rotation.state === 'running'
          ? 'has failures so far'
          : 'completed with failures'
    io.stderr(`key rotation ${what}${ids.length === 0 ? '' : `; registrations: ${ids.join(', ')}`}\n`)
    return EXIT.server
  }
  return EXIT.ok
}

async function rotateKeys(client: Client, options: Options, io: CliIo): Promise<number> {
  const started = await client.post('admin/api/keys/rotate')
  let rotation = started.rotation as Json
  if (!options.wait) {
    if (options.json) return print(io, started)
    io.stdout(`${started.started === true ? 'started' : 'already running'}: ${progress(rotation)}\n`)
    return EXIT.ok
  }
  if (!options.json) io.stdout(`${started.started === true ? 'started' : 'already running'}\n`)
  let last = ''
  while (rotation.state === 'running') {
    const line = progress(rotation)
    if (!options.json && line !== last) io.stdout(`${line}\n`)
    last = line
    await io.sleep(500)
    rotation = (await client.get('admin/api/keys/rotation')).rotation as Json
  }
  if (options.json) print(io, { rotation })
  else io.stdout(`${progress(rotation)}\n`)
  return rotationOutcome(rotation, io)
}

/** The latest rotation's status; exits EXIT.server when it shows a problem, so scripts can tell. */
async function showRotation(client: Client, options: Options, io: CliIo): Promise<number> {
  const body = await client.get('admin/api/keys/rotation')
  const rotation = body.rotation as Json
  if (options.json) print(io, body)
  else io.stdout(`${progress(rotation)}\n`)
  return rotationOutcome(rotation, io)
}

// ---- webhooks ----------------------------------------------------------------------------------

const ENDPOINT_ID = /^ep_[0-9a-f]{24}$/
const MESSAGE_ID = /^[0-9a-f-]{36}$/

function endpointId(value: string | undefined, what: string): string {
  if (value === undefined) throw usageError(`webhooks ${what}: give an endpoint id (ep_…)`)
  if (!ENDPOINT_ID.test(value))
    throw usageError(`webhooks ${what}: "${printable(value)}" is not an endpoint id (ep_…)`)
  return value
}

/** `webhooks list|add|remove|deliveries|redeliver`. */
async function webhooks(
  client: Client,
  args: readonly string[],
  options: Options,
  io: CliIo,
): Promise<number> {
  const [action, ...rest] = args
  const allowed: Record<string, { args: number; options: ReadonlyArray<keyof Options> }> = {
    list: { args: 0, options: [] },
    add: { args: 1, options: ['events'] },
    remove: { args: 1, options: [] },
    deliveries: { args: 1, options: ['limit'] },
    redeliver: { args: 2, options: [] },
  }
  const spec = action === undefined ? undefined : allowed[action]
  if (spec === undefined) throw usageError(`webhooks: give one of ${Object.keys(allowed).join(', ')}`)
  if (rest.length > spec.args)
    throw usageError(`webhooks ${action}: unexpected argument "${printable(rest.at(-1) ?? '')}"`)
  if (options.events !== undefined && !spec.options.includes('events'))
    throw usageError(`webhooks ${action}: --events does not apply`)
  if (options.limit !== undefined && !spec.options.includes('limit'))
    throw usageError(`webhooks ${action}: --limit does not apply`)
  switch (action) {
    case 'list': {
      const body = await client.get('admin/api/webhooks')
      if (options.json) return print(io, body)
      const rows = (body.endpoints as Json[]).map((e) => [
        text(e.id),
        text(e.url),
        (e.events as string[]).join(',') || '*',
        text(e.createdAt),
        text(e.createdBy),
      ])
      io.stdout(table(['ID', 'URL', 'EVENTS', 'CREATED', 'BY'], rows))
      return EXIT.ok
    }
    case 'add': {
      const url = rest[0]
      if (url === undefined) throw usageError('webhooks add: give the endpoint URL')
      const events = options.events
        ?.split(',')
        .map((e) => e.trim())
        .filter(Boolean)
      const body = await client.post('admin/api/webhooks', {
        url,
        ...(events === undefined ? {} : { events }),
      })
      if (options.json) return print(io, body)
      io.stdout(
        `added ${text(body.id)}\nsecret: ${text(body.secret)}\n(shown only this once: store it where the receiver verifies signatures)\n`,
      )
      return EXIT.ok
    }
    case 'remove': {
      const id = endpointId(rest[0], 'remove')
      await client.delete(`admin/api/webhooks/${id}`)
      if (options.json) return print(io, { removed: id })
      io.stdout(`removed ${id}\n`)
      return EXIT.ok
    }
    case 'deliveries': {
      const id = endpointId(rest[0], 'deliveries')
      if (
        options.limit !== undefined &&
        (!/^\d+$/.test(options.limit) || Number(options.limit) < 1 || Number(options.limit) > 200)
      )
        throw usageError(`--limit must be an integer from 1 to 200, got "${printable(options.limit)}"`)
      const body = await client.get(`admin/api/webhooks/${id}/deliveries${query({ limit: options.limit })}`)
      if (options.json) return print(io, body)
      const rows = (body.deliveries as Json[]).map((d) => [
        text(d.messageId),
        text(d.type),
        text(d.status),
        text(d.attempts),
        text(d.nextAttemptAt ?? ''),
        text(d.lastStatusCode ?? ''),
        text(d.lastError ?? ''),
      ])
      io.stdout(table(['MESSAGE', 'TYPE', 'STATUS', 'ATTEMPTS', 'NEXT RETRY', 'CODE', 'LAST ERROR'], rows))
      return EXIT.ok
    }
    default: {
      const id = endpointId(rest[0], 'redeliver')
      const messageId = rest[1]
      if (messageId === undefined || !MESSAGE_ID.test(messageId))
        throw usageError('webhooks redeliver: give the endpoint id and the message id')
      const body = await client.post(`admin/api/webhooks/${id}/deliveries/${messageId}/redeliver`)
      if (options.json) return print(io, body)
      io.stdout(`queued ${messageId} for ${id} again\n`)
      return EXIT.ok
    }
  }
}

/** The apps' credentials (GET /admin/api/credentials), optionally of one app. */
async function credentials(client: Client, options: Options, io: CliIo): Promise<number> {
  const body = await client.get('admin/api/credentials')
  const list = (body.credentials as Json[]).filter((c) => options.app === undefined || c.app === options.app)
  if (options.json) return print(io, { credentials: list })
  if (list.length === 0) {
    io.stdout('no credentials\n')
    return EXIT.ok
  }
  io.stdout(
    table(
      ['APP', 'CLOUD', '#', 'KIND', 'THUMBPRINT OR NAME', 'EXPIRES', 'LAST SUCCESS', 'REFUSED'],
      list.map((c) => [
        text(c.app),
        text(c.cloud),
        text(c.position),
        text(c.kind),
        text(c.thumbprint ?? c.credential),
        c.expiresAt === undefined
          ? 'unknown'
          : `${text(c.expiresAt)}${c.expiringSoon === true ? ' (SOON)' : ''}`,
        text(c.lastSuccessAt),
        text(c.failing),
      ]),
    ),
  )
  return EXIT.ok
}

function upgradeContext(client: Client, options: Options, io: CliIo): UpgradeCommandContext {
  return { client, io, json: options.json, wait: options.wait, exit: { ok: EXIT.ok, server: EXIT.server } }
}

function print(io: CliIo, value: unknown): number {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`)
  return EXIT.ok
}

// ---- entry point -----------------------------------------------------------------------------

/** Runs one command line; returns the exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    let parsed: ReturnType<typeof parse>
    try {
      parsed = parse(argv)
    } catch (error) {
      if (error instanceof CliError) throw error
      throw usageError((error as Error).message)
    }
    const { values, positionals } = parsed
    if (values.help === true) {
      io.stdout(USAGE)
      return EXIT.ok
    }
    const [command, ...rest] = positionals
    if (command === undefined) throw usageError('no command given')
    const allowed = ALLOWED[command]
    if (allowed === undefined) throw usageError(`unknown command "${command}"`)
    const options: Options = {
      json: values.json === true,
      wide: values.wide === true,
      all: values.all === true,
      wait: values['no-wait'] !== true,
      newestFirst: values['newest-first'] === true,
      ...(values.app === undefined ? {} : { app: values.app }),
      ...(values.tenant === undefined ? {} : { tenant: values.tenant }),
      ...(values.status === undefined ? {} : { status: values.status }),
      ...(values.limit === undefined ? {} : { limit: values.limit }),
      ...(values.cursor === undefined ? {} : { cursor: values.cursor }),
      ...(values.since === undefined ? {} : { since: values.since }),
      ...(values.reason === undefined ? {} : { reason: values.reason }),
      ...(values.events === undefined ? {} : { events: values.events }),
    }
    const given: Array<keyof Options> = (
      ['app', 'tenant', 'status', 'limit', 'cursor', 'since', 'reason', 'events'] as const
    ).filter((name) => values[name] !== undefined)
    if (values.all === true) given.push('all')
    if (values['no-wait'] === true) given.push('wait')
    if (values['newest-first'] === true) given.push('newestFirst')
    const flag: Partial<Record<keyof Options, string>> = { wait: 'no-wait', newestFirst: 'newest-first' }
    for (const name of given) {
      if (!allowed.includes(name)) throw usageError(`${command}: --${flag[name] ?? name} does not apply`)
    }
    const takesId = command === 'registration' || command === 'revoke'
    const labels = command === 'tenants' && rest[0] === 'label'
    if (command !== 'webhooks' && !labels && rest.length > (takesId ? 1 : 0))
      throw usageError(`${command}: unexpected argument "${rest.at(-1)}"`)
    if (command === 'registration' && rest[0] === undefined) throw usageError('registration: give an id')

    const url = (values.url ?? io.env.CONSENT_BROKER_URL)?.replace(/\/+$/, '')
    if (url === undefined || url === '')
      throw usageError('give the broker URL with --url or CONSENT_BROKER_URL')
    try {
      const parsedUrl = new URL(url)
      if (parsedUrl.protocol !== 'https:' && parsedUrl.protocol !== 'http:') throw new Error('not http(s)')
    } catch {
      throw usageError(`--url: "${url}" is not an http(s) URL`)
    }
    const token = io.env.CONSENT_BROKER_TOKEN?.trim()
    if (token === undefined || token === '') {
      throw new CliError('set CONSENT_BROKER_TOKEN to an operator token', EXIT.auth)
    }
    const client = makeClient(url, token, io)
    switch (command) {
      case 'tenants':
        return labels
          ? await labelTenant(client, rest.slice(1), options, io)
          : await tenants(client, options, io)
      case 'registrations':
        return await registrations(client, options, io)
      case 'registration':
        return await registration(client, rest[0]!, options, io)
      case 'revoke':
        return await revoke(client, rest[0], options, io)
      case 'audit':
        return await audit(client, options, io)
      case 'rotate-keys':
        return await rotateKeys(client, options, io)
      case 'webhooks':
        return await webhooks(client, rest, options, io)
      case 'credentials':
        return await credentials(client, options, io)
      case 'upgrade':
        return await showUpgrade(upgradeContext(client, options, io))
      case 'finish-upgrade':
        return await finishUpgrade(upgradeContext(client, options, io))
      default:
        return await showRotation(client, options, io)
    }
  } catch (error) {
    if (error instanceof CliError) {
      io.stderr(`consent-broker-admin: ${error.message}\n`)
      return error.exitCode
    }
    io.stderr(`consent-broker-admin: unexpected error: ${(error as Error).message}\n`)
    return EXIT.server
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      url: { type: 'string' },
      json: { type: 'boolean' },
      wide: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      app: { type: 'string' },
      tenant: { type: 'string' },
      status: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
      since: { type: 'string' },
      all: { type: 'boolean' },
      reason: { type: 'string' },
      'no-wait': { type: 'boolean' },
      'newest-first': { type: 'boolean' },
      events: { type: 'string' },
    },
  })
}
