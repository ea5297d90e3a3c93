#!/usr/bin/env node
// The package's `consent-broker-admin` executable (npx consent-broker-admin …): runs the compiled CLI
// (dist/cli/admin.js) when the package is built — as in the image, which ships no TypeScript —,
// otherwise the TypeScript source through tsx, so a fresh clone works right after `npm ci` without
// a build step. In a checkout whose cli/ changed since the last build (a `git pull` without
// `npm run build`), the build would run old code without a word: the source runs instead, and
// stderr says why. (cli/ imports nothing from src/: a change there leaves the CLI's build current.)
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const built = join(root, 'dist/cli/admin.js')
const source = join(root, 'cli/admin.ts')

/** The newest modification time (ms) of the .ts files under `dir` (0 when there is none). */
function newestTypeScript(dir) {
  let newest = 0
  if (!existsSync(dir)) return newest
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) newest = Math.max(newest, newestTypeScript(path))
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs)
  }
  return newest
}

async function runSource() {
  let register
  try {
    ;({ register } = await import('tsx/esm/api'))
  } catch {
    return false
  }
  register()
  await import(pathToFileURL(source).href)
  return true
}

const stale =
  existsSync(built) && existsSync(source) && newestTypeScript(join(root, 'cli')) > statSync(built).mtimeMs

if (existsSync(built) && !stale) {
  await import(pathToFileURL(built).href)
} else if (stale) {
  console.error(
    'consent-broker-admin: cli/ changed since dist/ was built: running the source (`npm run build` updates dist/)',
  )
  if (!(await runSource())) {
    console.error('consent-broker-admin: tsx is not installed: running the older build in dist/')
    await import(pathToFileURL(built).href)
  }
} else if (!(await runSource())) {
  console.error(
    'consent-broker-admin: not built and tsx is not installed: run `npm ci` (development install) or `npm run build`',
  )
  process.exit(1)
}
