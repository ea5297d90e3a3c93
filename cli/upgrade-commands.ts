// consent-broker-admin's store-upgrade commands (`upgrade`, `finish-upgrade`): the state of an
// upgrade from the previous release and its finish, over the operator API (routes/admin/upgrade-api.ts).
// Kept apart from admin-commands.ts, which wires them, by what they change for: the upgrade steps.
import type { Json } from './broker-client.js'

/** What these commands need of the CLI: its API client, output and clock. */
export interface UpgradeCommandContext {
  client: { get(path: string): Promise<Json>; post(path: string): Promise<Json> }
  io: { stdout: (text: string) => void; stderr: (text: string) => void; sleep: (ms: number) => Promise<void> }
  json: boolean
  wait: boolean
  /** Exit codes: ok, and server (a finish that failed or did not complete). */
  exit: { ok: number; server: number }
}

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

function outcome(upgrade: Json, context: UpgradeCommandContext): number {
  if (upgrade.state === 'failed') {
    context.io.stderr(`finishing the upgrade failed: ${String(upgrade.error ?? 'unknown error')}\n`)
    return context.exit.server
  }
  return context.exit.ok
}

/** `upgrade`: the store's upgrade state; exits `server` when the last finish failed. */
export async function showUpgrade(context: UpgradeCommandContext): Promise<number> {
  const body = await context.client.get('admin/api/upgrade')
  const upgrade = body.upgrade as Json
  context.io.stdout(context.json ? `${JSON.stringify(body, null, 2)}\n` : `${describe(upgrade)}\n`)
  return outcome(upgrade, context)
}

/** `finish-upgrade [--no-wait]`: starts the finish, then waits until the store is contracted. */
export async function finishUpgrade(context: UpgradeCommandContext): Promise<number> {
  const { client, io } = context
  const started = await client.post('admin/api/upgrade/finish')
  let upgrade = started.upgrade as Json
  if (!context.wait) {
    io.stdout(context.json ? `${JSON.stringify(started, null, 2)}\n` : `${describe(upgrade)}\n`)
    return outcome(upgrade, context)
  }
  if (!context.json) io.stdout(`${started.started === true ? 'started' : 'already running'}\n`)
  for (let expanded = 0; upgrade.state === 'finishing' || upgrade.state === 'expanded'; ) {
    expanded = upgrade.state === 'expanded' ? expanded + 1 : 0
    if (expanded > EXPANDED_POLLS) {
      io.stderr(
        'the store is still expanded: check `consent-broker-admin upgrade` later, or run finish-upgrade again\n',
      )
      return context.exit.server
    }
    await io.sleep(POLL_MS)
    upgrade = (await client.get('admin/api/upgrade')).upgrade as Json
  }
  io.stdout(context.json ? `${JSON.stringify({ upgrade }, null, 2)}\n` : `${describe(upgrade)}\n`)
  return outcome(upgrade, context)
}
