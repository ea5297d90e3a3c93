// consent-broker-admin's key rotation commands: `rotate-keys` (starts re-sealing every stored secret
// under the newest master key, and waits showing progress) and `rotation` (the latest rotation's
// progress); they exit `server` when the rotation they end on failed, was interrupted or has failures
// (rotate-keys --no-wait does not wait to see).
import { type Client, type Json, objectField } from './broker-client.js'
import { type CliIo, type Options, print, text } from './command-context.js'
import { EXIT } from './exit-codes.js'

function progress(rotation: Json): string {
  return `${text(rotation.state)}: key ${text(rotation.keyId)}, scanned ${text(rotation.scanned)}, re-sealed ${text(rotation.resealed)}, unchanged ${text(rotation.unchanged)}, failed ${text(rotation.failed)}`
}

/**
 * EXIT.server, with the reason on stderr, when a rotation status shows a problem: the pass failed,
 * was interrupted (an instance stopped), or left registrations it could not re-seal. Else EXIT.ok
 * (a pass still running without failures is no problem yet).
 */
function rotationOutcome(rotation: Json, io: CliIo): number {
  if (rotation.state === 'interrupted') {
    io.stderr('key rotation was interrupted (an instance stopped); run rotate-keys again to resume\n')
    return EXIT.server
  }
  if (rotation.state === 'failed' || Number(rotation.failed) > 0) {
    const ids = Array.isArray(rotation.failedIds) ? rotation.failedIds.map(text) : []
    const what =
      rotation.state === 'failed'
        ? `failed: ${text(rotation.error)}`
        : rotation.state === 'running'
          ? 'has failures so far'
          : 'completed with failures'
    io.stderr(`key rotation ${what}${ids.length === 0 ? '' : `; registrations: ${ids.join(', ')}`}\n`)
    return EXIT.server
  }
  return EXIT.ok
}

export async function rotateKeys(client: Client, options: Options, io: CliIo): Promise<number> {
  const started = await client.post('admin/api/keys/rotate')
  let rotation = objectField(started, 'rotation')
  if (!options.wait) {
    if (options.json) return print(io, started)
    io.stdout(`${started.started === true ? 'started' : 'already running'}: ${progress(rotation)}\n`)
    return EXIT.ok
  }
  if (!options.json) io.stdout(`${started.started === true ? 'started' : 'already running'}\n`)
  let last = ''
  while (rotation.state === 'running') {
    const line = progress(rotation)
    if (!options.json && line !== last) io.stdout(`${line}\n`)
    last = line
    await io.sleep(500)
    rotation = objectField(await client.get('admin/api/keys/rotation'), 'rotation')
  }
  if (options.json) print(io, { rotation })
  else io.stdout(`${progress(rotation)}\n`)
  return rotationOutcome(rotation, io)
}

/** The latest rotation's status; exits EXIT.server when it shows a problem, so scripts can tell. */
export async function showRotation(client: Client, options: Options, io: CliIo): Promise<number> {
  const body = await client.get('admin/api/keys/rotation')
  const rotation = objectField(body, 'rotation')
  if (options.json) print(io, body)
  else io.stdout(`${progress(rotation)}\n`)
  return rotationOutcome(rotation, io)
}
