// consent-broker-admin's command line (the executable is cli/admin.ts): the operator API from a
// shell. Talks HTTP only (no import from src/), reads the operator token from CONSENT_BROKER_TOKEN
// (never from an argument, which would land in shell history and process listings), prints tables
// by default and JSON with --json. Here: the help, the checks of the flags each command takes, the
// broker URL and token; command-line.ts reads the options, and each command lives in its own file
// (tenant-commands.ts, registration-commands.ts, …).
import { audit } from './audit-command.js'
import { makeClient } from './broker-client.js'
import type { CliIo, Options } from './command-context.js'
import { ALLOWED, flagOf, parse, unknownCommand } from './command-line.js'
import { credentials } from './credentials-command.js'
import { CliError, EXIT, usageError } from './exit-codes.js'
import { brokerUrl, operatorToken } from './input-checks.js'
import { rotateKeys, showRotation } from './key-rotation-commands.js'
import { registration, registrations, revoke } from './registration-commands.js'
import { printable } from './table.js'
import { labelTenant, tenants } from './tenant-commands.js'
import { finishUpgrade, showUpgrade } from './upgrade-commands.js'
import { webhooks } from './webhook-commands.js'

export type { CliIo } from './command-context.js'
export { EXIT } from './exit-codes.js'
export { printable, table } from './table.js'

const USAGE = `Usage: consent-broker-admin [--url <broker URL>] [--json | --wide] <command> [options]

Commands:
  tenants [--app <slug>] [--limit <1-500>] [--cursor <cursor>] [--all]
      Tenants with their label, apps, registration counts by status and last consent,
      by tenant id; --all follows every page. When nothing is listed, an --app
      that names no hosted app exits 3 (registrations too).
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
            4 server or network error or no broker at the URL, or a key
              rotation that failed, was interrupted or left registrations
              it could not re-seal (rotate-keys, rotation), or an upgrade
              finish that failed or did not complete (upgrade, finish-upgrade).
`

/** Runs one command line; returns the exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parse(argv)
    if (values.help === true) {
      io.stdout(USAGE)
      return EXIT.ok
    }
    const [command, ...rest] = positionals
    if (command === undefined) throw usageError('no command given')
    // (own properties only: `toString` or `constructor` is no command)
    const allowed = Object.hasOwn(ALLOWED, command) ? ALLOWED[command] : undefined
    if (allowed === undefined) throw unknownCommand(command)
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
    for (const name of given) {
      if (!allowed.includes(name)) throw usageError(`${command}: --${flagOf(name)} does not apply`)
    }
    const takesId = command === 'registration' || command === 'revoke'
    const labels = command === 'tenants' && rest[0] === 'label'
    if (command !== 'webhooks' && !labels && rest.length > (takesId ? 1 : 0))
      throw usageError(`${command}: unexpected argument "${printable(rest.at(-1) ?? '')}"`)

    const url = brokerUrl(values.url ?? io.env.CONSENT_BROKER_URL)
    const token = operatorToken(io.env.CONSENT_BROKER_TOKEN)
    const client = makeClient(url, token, io)
    switch (command) {
      case 'tenants':
        return labels
          ? await labelTenant(client, rest.slice(1), options, io)
          : await tenants(client, options, io)
      case 'registrations':
        return await registrations(client, options, io)
      case 'registration':
        return await registration(client, rest[0], options, io)
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
        return await showUpgrade(client, options, io)
      case 'finish-upgrade':
        return await finishUpgrade(client, options, io)
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
