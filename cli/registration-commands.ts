// consent-broker-admin's registration commands: `registrations` (the list, page by page or --all),
// `registration <id>` (one, every field) and `revoke` (one registration, or a tenant's), and the
// registrations table that the list and a tenant's revocation print.
import { arrayField, type Client, type Json, objectField, query, readPages } from './broker-client.js'
import { type CliIo, type Options, positiveLimit, print, text } from './command-context.js'
import { CliError, EXIT, usageError } from './exit-codes.js'
import { refuseUnhostedApp } from './hosted-apps.js'
import { registrationIdArg, tenantIdArg } from './input-checks.js'
import { printable, SHORT_ID_HINT, SHORT_ID_LENGTH, table } from './table.js'

/**
 * `request`, with SHORT_ID_HINT added to its not-found error when `id` is no longer than the ids a
 * narrow table shows: an operator who typed one back gets told why it is not found.
 */
async function hintingShortId(id: string, request: Promise<Json>): Promise<Json> {
  try {
    return await request
  } catch (error) {
    if (error instanceof CliError && error.exitCode === EXIT.notFound && id.length <= SHORT_ID_LENGTH)
      throw new CliError(`${error.message}\n${SHORT_ID_HINT}`, error.exitCode)
    throw error
  }
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

export async function registrations(client: Client, options: Options, io: CliIo): Promise<number> {
  if (options.status !== undefined && !['active', 'needs_consent', 'revoked'].includes(options.status)) {
    throw usageError(`--status must be active, needs_consent or revoked, got "${printable(options.status)}"`)
  }
  if (options.tenant !== undefined) tenantIdArg(options.tenant, 'registrations --tenant')
  const limit = positiveLimit(options.limit) ?? (options.all ? '500' : undefined)
  const { items, nextCursor } = await readPages(
    client,
    (cursor) =>
      `admin/api/registrations${query({ tenant: options.tenant, app: options.app, status: options.status, limit, cursor })}`,
    'items',
    options,
  )
  // a whole listing empty: a misspelt --app, or an app with no registrations yet
  await refuseUnhostedApp(
    client,
    { count: items.length, nextCursor, cursor: options.cursor, app: options.app },
    'registrations',
  )
  if (options.json) return print(io, { items, ...(nextCursor === undefined ? {} : { nextCursor }) })
  io.stdout(items.length === 0 ? 'no registrations\n' : registrationTable(items, options))
  if (nextCursor !== undefined) io.stdout(`more: --cursor ${nextCursor} (or --all)\n`)
  return EXIT.ok
}

export async function registration(
  client: Client,
  id: string | undefined,
  options: Options,
  io: CliIo,
): Promise<number> {
  const checked = registrationIdArg(id, 'registration')
  const body = await hintingShortId(
    checked,
    client.get(`admin/api/registrations/${encodeURIComponent(checked)}`),
  )
  if (options.json) return print(io, body)
  const r = objectField(body, 'registration')
  const rows = Object.entries(r).map(([name, value]) => [
    name,
    typeof value === 'object' && value !== null ? JSON.stringify(value) : text(value),
  ])
  // One registration: every value whole (the place to copy a full id from).
  io.stdout(table(['FIELD', 'VALUE'], rows, { wide: true }))
  return EXIT.ok
}

export async function revoke(
  client: Client,
  id: string | undefined,
  options: Options,
  io: CliIo,
): Promise<number> {
  const reason = options.reason?.trim()
  if (reason === undefined || reason === '') throw usageError('revoke: --reason is required (it is recorded)')
  if ((id === undefined) === (options.tenant === undefined)) {
    throw usageError('revoke: give a registration id, or --tenant <tid> (not both)')
  }
  if (id !== undefined) {
    if (options.app !== undefined) throw usageError('revoke: --app goes with --tenant only')
    const checked = registrationIdArg(id, 'revoke')
    const body = await hintingShortId(
      checked,
      client.post(`admin/api/registrations/${encodeURIComponent(checked)}/revoke`, { reason }),
    )
    if (options.json) return print(io, body)
    const r = objectField(body, 'registration')
    const detail = objectField(r, 'statusDetail')
    io.stdout(
      body.alreadyRevoked === true
        ? `${text(r.id)} was already revoked on ${text(detail.at)} by ${text(detail.by)}: ${text(detail.reason)}\n`
        : `revoked ${text(r.id)} (${text(r.app)}, tenant ${text(r.tenantId)}) at ${text(detail.at)}\n`,
    )
    return EXIT.ok
  }
  const tenantId = tenantIdArg(options.tenant, 'revoke --tenant')
  const body = await client.post(`admin/api/tenants/${encodeURIComponent(tenantId)}/revoke`, {
    reason,
    ...(options.app === undefined ? {} : { app: options.app }),
  })
  if (options.json) return print(io, body)
  const revoked = arrayField(body, 'revoked')
  io.stdout(
    `tenant ${text(body.tenantId)}${options.app === undefined ? '' : ` (${options.app})`}: revoked ${revoked.length}, already revoked ${text(body.alreadyRevoked)}\n`,
  )
  if (revoked.length > 0) io.stdout(registrationTable(revoked, options))
  return EXIT.ok
}
