// `npm start`: the compiled broker (dist/src/main.js). Without a build, say what to run instead of
// Node's "Cannot find module" stack.
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'

const main = fileURLToPath(new URL('../dist/src/main.js', import.meta.url))

if (existsSync(main)) {
  await import(pathToFileURL(main).href)
} else {
  console.error(
    [
      'consent-broker is not built (dist/src/main.js is missing).',
      '  npm run build && npm start   compile, then start the broker (configure it first: see .env.example)',
      '  npm run demo                 try it now with the Entra ID emulator, no build needed',
    ].join('\n'),
  )
  process.exit(1)
}
