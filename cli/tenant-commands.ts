// consent-broker-admin's tenant commands: `tenants` (the tenant summaries, page by page or --all) and
// `tenants label <tid> <label>` (sets a tenant's label).
import { type Client, type Json, query, readPages } from './broker-client.js'
import { type CliIo, type Options, positiveLimit, print, text } from './command-context.js'
import { EXIT, usageError } from './exit-codes.js'
import { refuseUnhostedApp } from './hosted-apps.js'
import { tenantIdArg } from './input-checks.js'
import { printable, table } from './table.js'

export async function tenants(client: Client, options: Options, io: CliIo): Promise<number> {
  const limit = positiveLimit(options.limit) ?? (options.all ? '500' : undefined)
  const { items: list, nextCursor } = await readPages(
    client,
    (cursor) => `admin/api/tenants${query({ app: options.app, limit, cursor })}`,
    'tenants',
    options,
  )
  // a whole listing empty: a misspelt --app, or an app with no tenants yet
  await refuseUnhostedApp(
    client,
    { count: list.length, nextCursor, cursor: options.cursor, app: options.app },
    'tenants',
  )
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
        // an answer's missing field shows as '-', not as a TypeError
        const counts = (t.registrations ?? {}) as Json
        return [
          text(t.tenantId),
          text(t.label),
          Array.isArray(t.apps) ? t.apps.map(text).join(',') : '-',
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

export async function labelTenant(
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
  const checked = tenantIdArg(tenantId, 'tenants label')
  const body = await client.patch(`admin/api/tenants/${encodeURIComponent(checked)}`, { label })
  if (options.json) return print(io, body)
  io.stdout(
    `tenant ${text(body.tenantId)}: label "${text(body.label)}"${body.previous === undefined ? '' : ` (was "${text(body.previous)}")`}\n`,
  )
  return EXIT.ok
}
