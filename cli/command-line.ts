// consent-broker-admin's command line as parseArgs reads it: the options, the commands with the
// options each takes, and the usage errors for an option or command it does not know, which name
// the nearest one (or list those there are) instead of Node's own text, whose advice ("place it
// after '--'") fits no command here.
import { parseArgs } from 'node:util'
import type { Options } from './command-context.js'
import { usageError } from './exit-codes.js'
import { nearest } from './suggestions.js'
import { printable } from './table.js'

const OPTIONS = {
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
} as const

/** The options every command takes. */
const GLOBAL_FLAGS = ['url', 'json', 'wide', 'help'] as const

/** The options (as Options names) each command takes besides the global ones. */
export const ALLOWED: Record<string, ReadonlyArray<keyof Options>> = {
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

/** An Options name as the command line spells it, without its dashes. */
export function flagOf(name: keyof Options): string {
  return name === 'wait' ? 'no-wait' : name === 'newestFirst' ? 'newest-first' : name
}

/** An option name the user typed that may be echoed: a plain name, never what could be a secret. */
const PLAIN_OPTION = /^--?[A-Za-z0-9-]{1,40}$/

/** The command line read strictly; an unknown option is a usage error naming the nearest one. */
export function parse(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], allowPositionals: true, strict: true, options: OPTIONS })
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw unknownOption(argv)
    // Node's other messages name the option only (its value is never repeated)
    throw usageError((error as Error).message)
  }
}

/** The usage error for an unknown command: the nearest command, else the list of them. */
export function unknownCommand(command: string): Error {
  const meant = nearest(command, Object.keys(ALLOWED))
  return usageError(
    `unknown command "${printable(command)}"${
      meant === undefined
        ? ` (the commands: ${Object.keys(ALLOWED).join(', ')})`
        : ` (did you mean ${meant}?)`
    }`,
  )
}

/**
 * The usage error for the first unknown option of `argv` (which parseArgs refused): named when it is
 * a plain name, with the nearest option the command takes within two edits, else the list of them.
 * An unknown command is reported first: the options it takes can't be known.
 */
function unknownOption(argv: readonly string[]): Error {
  // Read leniently to find it: an unknown option is then a boolean, so it takes no value.
  const { tokens } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: false,
    tokens: true,
    options: OPTIONS,
  })
  const unknownAt = (i: number) => {
    const token = tokens[i]
    return token?.kind === 'option' && !Object.hasOwn(OPTIONS, token.name) ? token : undefined
  }
  // An argument right after an unknown option may be its value: never the command, never echoed.
  let command: string | undefined
  for (const [i, token] of tokens.entries()) {
    if (token.kind !== 'positional') continue
    const before = unknownAt(i - 1)
    if (before !== undefined && !before.inlineValue) continue
    command = token.value
    break
  }
  // (own properties only: `toString` or `constructor` is no command)
  if (command !== undefined && !Object.hasOwn(ALLOWED, command)) return unknownCommand(command)
  const unknown = tokens.map((_, i) => unknownAt(i)).find((token) => token !== undefined)
  const typed = unknown?.rawName ?? ''
  const taken = [
    ...new Set([...(command === undefined ? Object.values(ALLOWED).flat() : ALLOWED[command]!).map(flagOf)]),
    ...GLOBAL_FLAGS,
  ]
  const meant = unknown === undefined ? undefined : nearest(unknown.name, taken)
  const named = PLAIN_OPTION.test(typed) ? `unknown option ${typed}` : 'an unknown option'
  const where = command === undefined ? '' : ` for "${command}"`
  // No near miss: it may be a value that starts with "-" (a label such as -Contoso-), which goes
  // after "--".
  return usageError(
    `${named}${where} (${
      meant === undefined
        ? `it takes ${taken.map((flag) => `--${flag}`).join(', ')}; a value starting with "-" goes after "--"`
        : `did you mean --${meant}?`
    })`,
  )
}
