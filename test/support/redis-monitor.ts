// MONITOR on a raw connection, for tests that count the commands a request sends. ioredis's own
// `monitor()` loses a race on a busy server: monitor lines that arrive in the same read as MONITOR's
// +OK are taken as replies to commands never sent ("Command queue state error"), which fails the test.
// Here everything after the +OK is a monitor line, whatever read it came in.
import { once } from 'node:events'
import { connect } from 'node:net'

/** One command as MONITOR reports it. */
export interface MonitoredCommand {
  /** The command and its arguments, unquoted. */
  args: string[]
  /** Who sent it: `<ip>:<port>` of a client, or `lua` for a command a script ran. */
  source: string
}

/** A MONITOR line: `+<time> [<db> <source>] "<arg>" "<arg>"…`; undefined for anything else. */
export function parseMonitorLine(line: string): MonitoredCommand | undefined {
  const match = /^\+\S+ \[\d+ ([^\]]+)\] (.*)$/.exec(line)
  if (match === null) return undefined
  const args = [...match[2]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((quoted) =>
    quoted[1]!.replace(/\\(.)/g, '$1'),
  )
  return { args, source: match[1]! }
}

/** Starts MONITOR on `url` (redis://[:password@]host:port); `onCommand` sees every command after it. */
export async function monitorRedis(
  url: string,
  onCommand: (command: MonitoredCommand) => void,
): Promise<{ close(): void }> {
  const { hostname, port, password } = new URL(url)
  const socket = connect(Number(port), hostname)
  socket.setEncoding('utf8')
  await once(socket, 'connect')
  const oksNeeded = password === '' ? 1 : 2
  let oks = 0
  let buffer = ''
  const started = new Promise<void>((resolve, reject) => {
    socket.on('error', reject)
    socket.on('data', (chunk: string) => {
      buffer += chunk
      for (let end = buffer.indexOf('\r\n'); end >= 0; end = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        if (oks < oksNeeded) {
          if (line !== '+OK') reject(new Error(`MONITOR refused: ${line}`))
          else if (++oks === oksNeeded) resolve()
          continue
        }
        const command = parseMonitorLine(line)
        if (command !== undefined) onCommand(command)
      }
    })
  })
  if (password !== '') socket.write(`AUTH ${decodeURIComponent(password)}\r\n`)
  socket.write('MONITOR\r\n')
  await started
  return { close: () => socket.destroy() }
}
