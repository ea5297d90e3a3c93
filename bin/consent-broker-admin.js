#!/usr/bin/env node
// The package's `consent-broker-admin` executable (npx consent-broker-admin …): runs the compiled CLI
// (dist/cli/admin.js) when the package is built — as in the image —, otherwise the TypeScript
// source through tsx, so a fresh clone works right after `npm ci` without a build step.
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'

const built = fileURLToPath(new URL('../dist/cli/admin.js', import.meta.url))
const source = fileURLToPath(new URL('../cli/admin.ts', import.meta.url))

if (existsSync(built)) {
  await import(pathToFileURL(built).href)
} else {
  let register
  try {
    ;({ register } = await import('tsx/esm/api'))
  } catch {
    console.error(
      'consent-broker-admin: not built and tsx is not installed: run `npm ci` (development install) or `npm run build`',
    )
    process.exit(1)
  }
  register()
  await import(pathToFileURL(source).href)
}
