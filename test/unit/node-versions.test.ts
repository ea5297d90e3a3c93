// README, DEVELOPERS.md, package.json `engines` and the Dockerfile agree on the supported Node
// versions (the prose, word for word the same in each, quotes `engines` and says what it admits), and
// no installed package asks for a Node those versions don't satisfy (npm ci would warn EBADENGINE).
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

// npm's own range semantics (semver is installed with the toolchain; it ships no types).
const semver = createRequire(import.meta.url)('semver') as {
  satisfies(version: string, range: string): boolean
}
const root = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url))
const pkg = JSON.parse(readFileSync(root('package.json'), 'utf8')) as { engines: { node: string } }
const lock = JSON.parse(readFileSync(root('package-lock.json'), 'utf8')) as {
  packages: Record<string, { engines?: { node?: string } | string[]; optional?: boolean; version?: string }>
}
// The oldest release of each supported line.
const SUPPORTED = ['22.13.0', '24.0.0']

describe('supported Node versions', () => {
  it('engines admits 22.13+ and 24, not the end-of-life 20, and the docs say so in the same words', () => {
    for (const version of SUPPORTED) expect(semver.satisfies(version, pkg.engines.node), version).toBe(true)
    expect(semver.satisfies('20.19.0', pkg.engines.node)).toBe(false)
    // what the prose promises: a later 22.x and anything from 24 on, not 22.12 or 23
    for (const version of ['22.99.0', '25.0.0', '26.1.0'])
      expect(semver.satisfies(version, pkg.engines.node), version).toBe(true)
    for (const version of ['22.12.0', '23.11.0'])
      expect(semver.satisfies(version, pkg.engines.node), version).toBe(false)
    const prose = `Node.js 22.13 or a later 22.x, or 24 or later (package.json engines: ${pkg.engines.node})`
    for (const file of ['README.md', 'DEVELOPERS.md', 'Dockerfile'])
      expect(readFileSync(root(file), 'utf8').replace(/\n(?:# )?/g, ' '), file).toContain(prose)
  })

  it('the Docker image runs a supported Node', () => {
    const image = /^ARG NODE_IMAGE=node:(\d+)-/m.exec(readFileSync(root('Dockerfile'), 'utf8'))
    expect(image).not.toBeNull()
    expect(semver.satisfies(`${image![1]}.13.0`, pkg.engines.node)).toBe(true)
  })

  it('every installed package accepts each supported version (no EBADENGINE)', () => {
    const refused: string[] = []
    for (const [path, meta] of Object.entries(lock.packages)) {
      const range = Array.isArray(meta.engines) ? undefined : meta.engines?.node
      if (path === '' || range === undefined) continue
      for (const version of SUPPORTED) {
        if (!semver.satisfies(version, range))
          refused.push(`${path}@${meta.version} (${range}) refuses ${version}`)
      }
    }
    expect(refused).toEqual([])
  })
})
