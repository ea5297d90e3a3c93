// The docs name real files: every repository path written in the contributor guide, the README and
// docs/ (src/…, test/…, emulator/…, scripts/…, bench/…, cli/…, docs/…) exists, so a file that moves
// or goes away takes its mentions with it. Paths under dist/ or absolute ones are not repository
// paths and are not looked at.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DOCUMENTS = [
  'DEVELOPERS.md',
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
]
/** A repository path: not preceded by a path character (so `dist/src/main.js` is skipped). */
const REPO_PATH = /(?<![\w./-])(?:src|test|emulator|scripts|bench|cli|docs)\/[\w./-]*\w/g

function pathsIn(document: string): string[] {
  const text = readFileSync(join(ROOT, document), 'utf8')
  return [...new Set(text.match(REPO_PATH) ?? [])]
}

/**
 * The entries of DEVELOPERS.md's map (the code block under "## Architecture"): top-level names at
 * column 0 (`emulator/`), and the names indented under `src/` as `src/<name>`.
 */
function mapEntries(): string[] {
  const text = readFileSync(join(ROOT, 'DEVELOPERS.md'), 'utf8')
  const block = /## Architecture\n[\s\S]*?```\n([\s\S]*?)```/.exec(text)?.[1] ?? ''
  const entries: string[] = []
  let parent = ''
  for (const line of block.split('\n')) {
    const top = /^([\w.-]+\/?)(?:\s|$)/.exec(line)
    const nested = /^ {2}([\w.-]+\/?)(?:\s|$)/.exec(line)
    if (top) {
      parent = top[1]!.endsWith('/') ? top[1]! : ''
      entries.push(top[1]!)
    } else if (nested && parent !== '') entries.push(`${parent}${nested[1]}`)
  }
  return entries
}

describe('paths named in the docs exist', () => {
  it('docs/architecture.md names the src/ files of every layer (the map a newcomer follows)', () => {
    const named = pathsIn('docs/architecture.md').filter((path) => path.startsWith('src/'))
    for (const layer of [
      'src/main.ts',
      'src/app.ts',
      'src/routes/',
      'src/services/',
      'src/store/',
      'src/entra/',
    ]) {
      expect(
        named.some((path) => path.startsWith(layer)),
        layer,
      ).toBe(true)
    }
  })

  it("every entry of DEVELOPERS.md's map exists", () => {
    const entries = mapEntries()
    expect(entries).toEqual(
      expect.arrayContaining(['src/', 'src/main.ts', 'src/app.ts', 'emulator/', 'test/']),
    )
    expect(entries.filter((entry) => !existsSync(join(ROOT, entry)))).toEqual([])
  })

  it.each(DOCUMENTS)('%s', (document) => {
    const missing = pathsIn(document).filter((path) => !existsSync(join(ROOT, path)))
    expect(missing).toEqual([])
  })
})
