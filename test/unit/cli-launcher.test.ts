// bin/consent-broker-admin.js picks what to run: the build in dist/ when it is current, the
// TypeScript source (through tsx) when there is no build or when cli/ changed after it —
// a `git pull` without `npm run build` must not run old code without a word. Each case runs the
// real launcher in a throw-away tree whose build and source only say which one ran.
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

const repo = fileURLToPath(new URL('../../', import.meta.url))
const trees: string[] = []

/** A tree with the launcher, a build and a source that print which ran; `built` false: no dist/. */
function tree(built: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'cli-launcher-'))
  trees.push(dir)
  mkdirSync(join(dir, 'bin'))
  copyFileSync(join(repo, 'bin/consent-broker-admin.js'), join(dir, 'bin/consent-broker-admin.js'))
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}')
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'))
  mkdirSync(join(dir, 'cli/deeper'), { recursive: true })
  mkdirSync(join(dir, 'src'))
  writeFileSync(join(dir, 'cli/admin.ts'), "const ran: string = 'source'\nconsole.log(ran)\n")
  writeFileSync(join(dir, 'cli/deeper/module.ts'), 'export {}\n')
  writeFileSync(join(dir, 'src/broker.ts'), 'export {}\n')
  if (built) {
    mkdirSync(join(dir, 'dist/cli'), { recursive: true })
    writeFileSync(join(dir, 'dist/cli/admin.js'), "console.log('built')\n")
  }
  return dir
}

function touch(path: string, secondsAgo: number): void {
  const at = new Date(Date.now() - secondsAgo * 1000)
  utimesSync(path, at, at)
}

function launch(dir: string) {
  const run = spawnSync(process.execPath, [join(dir, 'bin/consent-broker-admin.js')], {
    encoding: 'utf8',
    timeout: 30_000,
  })
  return { status: run.status, stdout: run.stdout.trim(), stderr: run.stderr.trim() }
}

afterEach(() => {
  for (const dir of trees.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe('consent-broker-admin launcher', () => {
  it('runs the build when it is newer than every CLI source file (src/ does not count: cli/ imports none of it)', () => {
    const dir = tree(true)
    touch(join(dir, 'cli/admin.ts'), 120)
    touch(join(dir, 'cli/deeper/module.ts'), 120)
    touch(join(dir, 'dist/cli/admin.js'), 60)
    touch(join(dir, 'src/broker.ts'), 10)
    expect(launch(dir)).toEqual({ status: 0, stdout: 'built', stderr: '' })
  })

  it('runs the source, saying why, when cli/ (at any depth) changed after the build', () => {
    for (const changed of ['cli/admin.ts', 'cli/deeper/module.ts']) {
      const dir = tree(true)
      touch(join(dir, 'cli/admin.ts'), 120)
      touch(join(dir, 'cli/deeper/module.ts'), 120)
      touch(join(dir, 'dist/cli/admin.js'), 60)
      touch(join(dir, changed), 10)
      const run = launch(dir)
      expect(run.stdout, changed).toBe('source')
      expect(run.stderr, changed).toBe(
        'consent-broker-admin: cli/ changed since dist/ was built: running the source (`npm run build` updates dist/)',
      )
    }
  })

  it('runs the build, as in the image, when there is no cli/ source at all', () => {
    const dir = tree(true)
    rmSync(join(dir, 'cli'), { recursive: true })
    expect(launch(dir)).toEqual({ status: 0, stdout: 'built', stderr: '' })
  })

  it('runs the source without a word when there is no build', () => {
    expect(launch(tree(false))).toEqual({ status: 0, stdout: 'source', stderr: '' })
  })
})
