// Logs written to memory, one JSON line per entry, so tests can assert what was (never) logged.
import { Writable } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import { createLogger } from '../../src/logger.js'

/** A stream that keeps every line written to it in `lines` (appended to, never replaced). */
export function memoryLogStream(lines: string[] = []): { stream: Writable; lines: string[] } {
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter(Boolean))
      callback()
    },
  })
  return { stream, lines }
}

/** The process logger (`createLogger`: same options and redaction as production) writing to memory. */
export function memoryLogger(
  level = 'debug',
  lines: string[] = [],
): { logger: FastifyBaseLogger; lines: string[] } {
  const { stream } = memoryLogStream(lines)
  return { logger: createLogger(level, stream) as FastifyBaseLogger, lines }
}

/** Throws naming the line when any log line contains any of the secrets. */
export function assertNoSecretLogged(lines: readonly string[], secrets: Iterable<string>): void {
  const all = [...secrets].filter((secret) => secret.length > 0)
  for (const line of lines) {
    for (const secret of all) {
      if (line.includes(secret)) throw new Error(`a log line contains a secret: ${line.slice(0, 200)}`)
    }
  }
}
