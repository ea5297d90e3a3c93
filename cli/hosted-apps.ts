// The check behind a listing filtered by --app that came back empty: is the slug a hosted app at all?
// A misspelt one (ms-graph-mai) printed "no tenants", exit 0, like an app nobody consented to yet.
import { arrayField, type Client } from './broker-client.js'
import { CliError, EXIT } from './exit-codes.js'
import { nearest } from './suggestions.js'
import { printable } from './table.js'

/**
 * After a listing: throws `notFound` when it was filtered by an `app` that is not hosted and came
 * back empty as a whole (not one page of it), naming the nearest hosted app and all of them. One
 * request (GET /admin/api/credentials, which lists every hosted app: each has a credential), made
 * only in that case: registrations of an app the configuration no longer has are still listed, so
 * the slug is never refused up front. When the check itself fails (an older broker without the
 * route), the empty listing stands as it is.
 */
export async function refuseUnhostedApp(
  client: Client,
  listing: {
    count: number
    nextCursor: string | undefined
    cursor: string | undefined
    app: string | undefined
  },
  command: string,
): Promise<void> {
  const { app } = listing
  if (
    app === undefined ||
    listing.count > 0 ||
    listing.nextCursor !== undefined ||
    listing.cursor !== undefined
  )
    return
  let hosted: string[]
  try {
    const credentials = arrayField(await client.get('admin/api/credentials'), 'credentials')
    hosted = [...new Set(credentials.map((c) => c.app).filter((slug) => typeof slug === 'string'))]
  } catch (error) {
    if (error instanceof CliError) return
    throw error
  }
  if (hosted.includes(app)) return
  const meant = nearest(app, hosted)
  throw new CliError(
    `${command} --app: "${printable(app)}" is not a hosted app${meant === undefined ? '' : ` (did you mean ${printable(meant)}?)`}; hosted: ${
      hosted.length === 0 ? 'none listed' : hosted.map(printable).join(', ')
    }`,
    EXIT.notFound,
  )
}
