// The bench scripts' command lines (bench/options.ts): a bad option stops the script before it
// starts anything, naming the option, with exit 2 — `npm run bench -- --rounds abc` used to run no
// round and write NaN figures over bench/RESULTS.md — and `--help` prints the usage.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const root = new URL('../../', import.meta.url)
const results = new URL('bench/RESULTS.md', root)

function bench(script: string, ...args: string[]) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', `bench/${script}.ts`, ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { status: run.status, stdout: run.stdout, stderr: run.stderr }
}

describe('bench scripts', () => {
  it('refuse a bad option by name, exit 2, and leave the results file alone', () => {
    const before = readFileSync(results, 'utf8')
    const rounds = bench('obtain-token', '--rounds', 'abc')
    expect(rounds.status).toBe(2)
    expect(rounds.stderr).toMatch(
      /^--rounds must be a whole number from 1 to 1000, got "abc"\nusage: npm run bench/,
    )
    expect(readFileSync(results, 'utf8')).toBe(before)
    const pin = bench('obtain-token', '--pin', 'yes')
    expect(pin.status).toBe(2)
    expect(pin.stderr).toMatch(/^--pin must be one of off, auto, on, got "yes"/)
    const unknown = bench('cpu-per-request', '--rat', '100')
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toMatch(/^Unknown option '--rat'.*\nusage: npx tsx bench\/cpu-per-request\.ts/s)
    const level = bench('expiries', '--log-level', 'verbose')
    expect(level.status).toBe(2)
    expect(level.stderr).toContain(
      '--log-level must be one of fatal, error, warn, info, debug, trace, silent',
    )
  })

  it('print their usage for --help, exit 0', () => {
    for (const script of ['obtain-token', 'cpu-per-request', 'hit-cost', 'expiries']) {
      const help = bench(script, '--help')
      expect(help.status, script).toBe(0)
      expect(help.stdout, script).toMatch(/^usage: /)
      expect(help.stderr, script).toBe('')
    }
  })
})
