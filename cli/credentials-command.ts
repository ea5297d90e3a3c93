// consent-broker-admin's `credentials` command: the hosted apps' own credentials in the order they
// are tried, with expiry, last success and a refusal by Microsoft.
import { arrayField, type Client } from './broker-client.js'
import { type CliIo, type Options, print, text } from './command-context.js'
import { CliError, EXIT } from './exit-codes.js'
import { printable, table } from './table.js'

/**
 * The apps' credentials (GET /admin/api/credentials), optionally of one app. An --app that is not
 * hosted is `notFound`, naming the hosted apps: an empty list would read as an app without
 * credentials. Every hosted app has at least one (the apps file requires it), so the list names them all.
 */
export async function credentials(client: Client, options: Options, io: CliIo): Promise<number> {
  const body = await client.get('admin/api/credentials')
  const all = arrayField(body, 'credentials')
  if (options.app !== undefined && !all.some((c) => c.app === options.app)) {
    const hosted = [...new Set(all.map((c) => text(c.app)))].join(', ')
    throw new CliError(
      `credentials: no hosted app "${printable(options.app)}" (hosted: ${hosted === '' ? 'none listed' : hosted})`,
      EXIT.notFound,
    )
  }
  const list = all.filter((c) => options.app === undefined || c.app === options.app)
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
