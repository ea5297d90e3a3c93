// No import cycles in src/ and cli/ (a project rule): every relative import, type-only ones included,
// read from the source text, and a depth-first search over the resulting graph.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

const ROOT = resolve(import.meta.dirname, '../..')
const SRC = join(ROOT, 'src')
const CLI = join(ROOT, 'cli')

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sourceFiles(path)
    return path.endsWith('.ts') ? [path] : []
  })
}

// `import … from '…'`, `export … from '…'`, `import '…'` and `import('…')`, over several lines.
const SPECIFIER = /(?:\bfrom\s+|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g

/** The src/ and cli/ files a file imports (relative specifiers only; `x.js` is the source `x.ts`). */
function importsOf(file: string, text: string, known: ReadonlySet<string>): string[] {
  const out: string[] = []
  for (const match of text.matchAll(SPECIFIER)) {
    const target = resolve(dirname(file), match[1]!.replace(/\.js$/, '.ts'))
    const candidates = [target, `${target}.ts`, join(target, 'index.ts')]
    const found = candidates.find((candidate) => known.has(candidate))
    if (found === undefined) throw new Error(`${relative(ROOT, file)}: cannot resolve ${match[1]}`)
    out.push(found)
  }
  return out
}

/** Every cycle reachable in `graph`, each as the list of files around it (first one repeated). */
function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const cycles: string[][] = []
  const state = new Map<string, 'open' | 'done'>()
  const path: string[] = []
  const visit = (node: string) => {
    state.set(node, 'open')
    path.push(node)
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') cycles.push([...path.slice(path.indexOf(next)), next])
      else if (state.get(next) === undefined) visit(next)
    }
    path.pop()
    state.set(node, 'done')
  }
  for (const node of graph.keys()) if (state.get(node) === undefined) visit(node)
  return cycles
}

describe('import graph of src/ and cli/', () => {
  it('finds a cycle when there is one (the check can fail)', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ])
    expect(findCycles(graph)).toEqual([['a', 'b', 'c', 'a']])
    const files = new Set(['/x/routes/one.ts', '/x/routes/two.ts'])
    const text =
      "import type { A } from './two.js'\nexport {\n  B,\n} from './two.js'\nconst c = await import('./one.js')"
    expect(importsOf('/x/routes/one.ts', text, files)).toEqual([
      '/x/routes/two.ts',
      '/x/routes/two.ts',
      '/x/routes/one.ts',
    ])
  })

  it('has no cycle', () => {
    const files = [...sourceFiles(SRC), ...sourceFiles(CLI)]
    const known = new Set(files)
    const graph = new Map(files.map((file) => [file, importsOf(file, readFileSync(file, 'utf8'), known)]))
    // Sanity: the graph is the real one (app.ts reaches the routes, the CLI's command line its
    // commands), not an empty parse.
    expect(graph.get(join(SRC, 'app.ts'))).toContain(join(SRC, 'routes/consent/index.ts'))
    expect(graph.get(join(CLI, 'admin-commands.ts'))).toContain(join(CLI, 'tenant-commands.ts'))
    const cycles = findCycles(graph).map((cycle) => cycle.map((file) => relative(ROOT, file)).join(' → '))
    expect(cycles).toEqual([])
  })
})
