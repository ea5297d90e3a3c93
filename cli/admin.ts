#!/usr/bin/env node
// consent-broker-admin: the operator CLI's executable (package bin → dist/cli/admin.js). The command
// line is read in admin-commands.ts, which runs the commands; this file only wires it to the process.
import { runCli } from './admin-commands.js'

process.exitCode = await runCli(process.argv.slice(2), {
  env: process.env,
  stdout: (chunk) => process.stdout.write(chunk),
  stderr: (chunk) => process.stderr.write(chunk),
  fetch: globalThis.fetch,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  now: Date.now,
})
