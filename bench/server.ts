// A benchmark target (bench/targets.ts), forked by bench/obtain-token.ts so every target runs alone
// in its own process with the same Node flags and logger level. The parent sends { mode, env } over
// IPC and gets { port } back.
import { buildTarget, type Start } from './targets.js'

async function start(message: Start): Promise<number> {
  // Logs go to stdout, discarded by the parent.
  const app = await buildTarget(message)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as { port: number }).port
}

// A normal exit (so `--cpu-prof` writes its profile) on SIGTERM.
process.once('SIGTERM', () => process.exit(0))

process.once('message', (message: Start) => {
  // (the Key arrives over IPC, never on a command line)
  start(message).then(
    (port) => process.send?.({ port }),
    (error: unknown) => {
      console.error(error)
      process.exit(1)
    },
  )
})
