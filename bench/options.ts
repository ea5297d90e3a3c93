// The bench scripts' command lines, read one way by all of them: `--help` prints the script's usage
// and exits 0; an unknown option, a missing value or a number out of range is one line naming it,
// then the usage, and exit 2 — never a stack trace, and never a run on NaN (`--rounds abc` used to
// run no round and write NaN figures over the committed results).
import { type ParseArgsConfig, parseArgs } from 'node:util'

type OptionsConfig = NonNullable<ParseArgsConfig['options']>
/** What `parseArgs` gives for `options`, each option typed by its declaration. */
type OptionValues<O extends OptionsConfig> = ReturnType<typeof parseArgs<{ options: O }>>['values']

/** Stops the script: `message`, then its usage, on stderr; exit 2. */
export function usageError(usage: string, message: string): never {
  console.error(`${message}\n${usage}`)
  process.exit(2)
}

/** The command line read against `options` (and `--help`, which prints `usage` and exits). */
export function benchOptions<const O extends OptionsConfig>(usage: string, options: O): OptionValues<O> {
  const config = { options: { ...options, help: { type: 'boolean' as const, default: false } } }
  let values: Record<string, unknown>
  try {
    values = parseArgs(config).values
  } catch (error) {
    usageError(usage, (error as Error).message)
  }
  if (values.help === true) {
    console.log(usage)
    process.exit(0)
  }
  return values as OptionValues<O>
}

/** The whole number `value` of option `--name`, within [min, max], or a stop naming it. */
export function integerOption(
  usage: string,
  name: string,
  value: string | undefined,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const n = Number(value)
  if (value === undefined || !/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`
    usageError(usage, `--${name} must be a whole number ${range}, got ${JSON.stringify(value ?? '')}`)
  }
  return n
}

/** `value` of option `--name` when it is one of `choices`, or a stop naming them. */
export function choiceOption<const C extends string>(
  usage: string,
  name: string,
  value: string | undefined,
  choices: readonly C[],
): C {
  if (value !== undefined && (choices as readonly string[]).includes(value)) return value as C
  return usageError(
    usage,
    `--${name} must be one of ${choices.join(', ')}, got ${JSON.stringify(value ?? '')}`,
  )
}
