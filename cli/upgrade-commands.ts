// consent-broker-admin's store-upgrade commands (`upgrade`, `finish-upgrade`): the state of an
// upgrade from the previous release and its finish, over the operator API (routes/admin/upgrade-api.ts).
import { type Client, type Json, objectField } from './broker-client.js'
import { type CliIo, type Options, print } from './command-context.js'
import { EXIT } from './exit-codes.js'

const POLL_MS = 500
/** Polls answering `expanded` in a row (another instance answered, or none is finishing) before giving up. */
const EXPANDED_POLLS = 20

const DESCRIPTION: Record<string, string> = {
  expanded:
    'expanded: the store keeps the previous release layout too; run finish-upgrade once every instance runs this release',
  finishing: 'finishing: the previous release layout is being retired',
  contracted: 'contracted: finished (rolling back to the previous release is not supported now)',
  failed: 'failed: the last finish failed; run finish-upgrade again',
}

function describe(upgrade: Json): string {
  const state = String(upgrade.state)
  const error = typeof upgrade.error === 'string' ? ` (${upgrade.error})` : ''
  return `${DESCRIPTION[state] ?? state}${error}`
}

/** Prints `body` (--json) or the state's description; exits `server` when the last finish failed. */
function report(body: Json, upgrade: Json, options: Options, io: CliIo): number {
  if (options.json) print(io, body)
  else io.stdout(`${describe(upgrade)}\n`)
  if (upgrade.state === 'failed') {
    io.stderr(`finishing the upgrade failed: ${String(upgrade.error ?? 'unknown error')}\n`)
    return EXIT.server
  }
  return EXIT.ok
}

/** `upgrade`: the store's upgrade state; exits `server` when the last finish failed. */
export async function showUpgrade(client: Client, options: Options, io: CliIo): Promise<number> {
  const body = await client.get('admin/api/upgrade')
  return report(body, objectField(body, 'upgrade'), options, io)
}

/** `finish-upgrade [--no-wait]`: starts the finish, then waits until the store is contracted. */
export async function finishUpgrade(client: Client, options: Options, io: CliIo): Promise<number> {
  const started = await client.post('admin/api/upgrade/finish')
  let upgrade = objectField(started, 'upgrade')
  if (!options.wait) return report(started, upgrade, options, io)
  if (!options.json) io.stdout(`${started.started === true ? 'started' : 'already running'}\n`)
  for (let expanded = 0; upgrade.state === 'finishing' || upgrade.state === 'expanded'; ) {
    expanded = upgrade.state === 'expanded' ? expanded + 1 : 0
    if (expanded > EXPANDED_POLLS) {
      io.stderr(
        'the store is still expanded: check `consent-broker-admin upgrade` later, or run finish-upgrade again\n',
      )
      return EXIT.server
    }
    await io.sleep(POLL_MS)
    upgrade = objectField(await client.get('admin/api/upgrade'), 'upgrade')
  }
  return report({ upgrade }, upgrade, options, io)
}
