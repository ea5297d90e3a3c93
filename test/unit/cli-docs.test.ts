// The CLI's --help is what its docs follow: docs/operator-api.md's synopsis is exactly its command
// lines, the README's CLI summary names every command and every command that exits 4 for reasons of
// its own, what the docs say `--json … --all` prints is what it prints, and the tenants help
// promises only what the tenants table shows.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { runScriptedCli } from '../support/cli-harness.js'

const read = (path: string) => readFileSync(fileURLToPath(new URL(`../../${path}`, import.meta.url)), 'utf8')
const README = read('README.md')
const OPERATOR_API = read('docs/operator-api.md')

/** Runs one command line against scripted JSON answers (one per request, in order). */
const cli = (argv: string[], answers: unknown[] = []) =>
  runScriptedCli(
    argv,
    answers.map((body) => ({ body })),
  )

const help = (await cli(['--help'])).stdout
const helpLines = help.split('\n')
const usage = helpLines[0]!.replace(/^Usage: /, '')
const commandsSection = helpLines.slice(helpLines.indexOf('Commands:') + 1, helpLines.indexOf('Options:'))
/** The synopsis: command lines (indent 2) and their continuations (deeper), not descriptions (indent 6). */
const synopsis = commandsSection.filter((line) => line.trim() !== '' && !/^ {6}\S/.test(line))
const commandLines = commandsSection.filter((line) => /^ {2}\S/.test(line))
/** A synopsis's command name: its leading words, up to the first option or placeholder. */
const commandName = (line: string) => {
  const words: string[] = []
  for (const word of line.trim().split(/\s+/)) {
    if (/^[[<-]/.test(word)) break
    words.push(word)
  }
  return words.join(' ')
}
const commands = [...new Set(commandLines.map(commandName))]
/** Commands the help's exit codes name (in parentheses) for an exit 4 of their own. */
const exitFourCommands = [
  ...help.slice(help.indexOf('Exit codes:')).matchAll(/\(([a-z-]+(?:, [a-z-]+)*)\)/g),
].flatMap((match) => match[1]!.split(', '))

/** The README's CLI item: from `- **CLI**` to the next item. */
const readmeCli = (() => {
  const start = README.indexOf('- **CLI** `consent-broker-admin`')
  expect(start).toBeGreaterThan(-1)
  const end = README.indexOf('\n- **', start + 1)
  return README.slice(start, end)
})()

describe('the CLI docs follow its --help', () => {
  it('reads the help it is checked against', () => {
    expect(usage).toMatch(/^consent-broker-admin /)
    expect(commands).toEqual(
      expect.arrayContaining(['tenants', 'tenants label', 'webhooks list', 'credentials']),
    )
    expect(exitFourCommands).toEqual(['rotate-keys', 'rotation', 'upgrade', 'finish-upgrade'])
  })

  it("docs/operator-api.md's synopsis is the help's usage and command lines", () => {
    const block = /## The CLI: `consent-broker-admin`\n\n```\n([\s\S]*?)```/.exec(OPERATOR_API)?.[1]
    expect(block).toBeDefined()
    expect(block!.trimEnd().split('\n')).toEqual([usage, '', ...synopsis])
  })

  it("the README's CLI summary names every command", () => {
    const named = new Set<string>()
    for (const [, span] of readmeCli.matchAll(/`([^`]+)`/g)) {
      const name = commandName(span!)
      // `webhooks list|add|…` names each subcommand
      const [command, subcommands] = name.split(' ')
      if (subcommands?.includes('|')) for (const sub of subcommands.split('|')) named.add(`${command} ${sub}`)
      else named.add(name)
    }
    expect(commands.filter((command) => !named.has(command))).toEqual([])
  })

  it('the README and docs/operator-api.md name every command that exits 4 for a reason of its own', () => {
    const readmeExitCodes = readmeCli.slice(readmeCli.indexOf('exit codes'))
    const docsExitFour = /^\| 4 .*$/m.exec(OPERATOR_API)?.[0] ?? ''
    for (const command of exitFourCommands) {
      expect(readmeExitCodes, command).toContain(`\`${command}\``)
      expect(docsExitFour, command).toContain(`\`${command}\``)
    }
  })

  it('--json … --all prints each listing under the field docs/operator-api.md gives', async () => {
    const documented = [
      ...OPERATOR_API.matchAll(/`\{"(\w+)": \[…\]\}` for ((?:`[a-z-]+`(?:, | and )?)+)/g),
    ].flatMap((match) =>
      [...match[2]!.matchAll(/`([a-z-]+)`/g)].map((name) => [name[1]!, match[1]!] as const),
    )
    expect(documented.map(([command]) => command).sort()).toEqual(['audit', 'registrations', 'tenants'])
    for (const [command, field] of documented) {
      // Two pages, each answering under both fields a listing may read.
      const { code, stdout } = await cli(
        ['--json', command, '--all'],
        [
          { tenants: [{ n: 1 }], items: [{ n: 1 }], nextCursor: 'c1' },
          { tenants: [{ n: 2 }], items: [{ n: 2 }] },
        ],
      )
      expect(code, command).toBe(0)
      expect(JSON.parse(stdout), command).toEqual({ [field]: [{ n: 1 }, { n: 2 }] })
    }
  })

  it('the tenants help promises only columns the tenants table has', async () => {
    const description = help.slice(help.indexOf('  tenants ['), help.indexOf('  tenants label'))
    const { stdout } = await cli(
      ['tenants'],
      [
        {
          tenants: [
            {
              tenantId: '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13',
              label: 'contoso.example',
              apps: ['ms-graph-mail'],
              registrations: { active: 1, needs_consent: 0, revoked: 0, total: 1 },
              lastConsentAt: '2026-11-26T05:20:00.000Z',
            },
          ],
        },
      ],
    )
    const header = stdout.split('\n')[0]!
    expect(header).toMatch(/^TENANT\s+LABEL\s+APPS\s+ACTIVE\s+NEEDS CONSENT\s+REVOKED\s+LAST CONSENT$/)
    expect(description).toMatch(/label, apps, registration counts by status and last consent/)
    expect(description).not.toMatch(/last token/)
  })
})
