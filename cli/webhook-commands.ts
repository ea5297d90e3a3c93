// consent-broker-admin's `webhooks` command: the notification endpoints (list, add, remove) and their
// deliveries (deliveries, redeliver), with the checks of each action's arguments and flags.
import { arrayField, type Client, query } from './broker-client.js'
import { type CliIo, type Options, positiveLimit, print, text } from './command-context.js'
import { EXIT, usageError } from './exit-codes.js'
import { printable, SHORT_ID_HINT, SHORT_ID_LENGTH, table } from './table.js'

const ENDPOINT_ID = /^ep_[0-9a-f]{24}$/
const MESSAGE_ID = /^[0-9a-f-]{36}$/

function endpointId(value: string | undefined, what: string): string {
  if (value === undefined) throw usageError(`webhooks ${what}: give an endpoint id (ep_…)`)
  if (!ENDPOINT_ID.test(value))
    throw usageError(`webhooks ${what}: "${printable(value)}" is not an endpoint id (ep_…)`)
  return value
}

/** `webhooks list|add|remove|deliveries|redeliver`. */
export async function webhooks(
  client: Client,
  args: readonly string[],
  options: Options,
  io: CliIo,
): Promise<number> {
  const [action, ...rest] = args
  const allowed: Record<string, { args: number; options: ReadonlyArray<keyof Options> }> = {
    list: { args: 0, options: [] },
    add: { args: 1, options: ['events'] },
    remove: { args: 1, options: [] },
    deliveries: { args: 1, options: ['limit'] },
    redeliver: { args: 2, options: [] },
  }
  const spec = action === undefined ? undefined : allowed[action]
  if (spec === undefined) throw usageError(`webhooks: give one of ${Object.keys(allowed).join(', ')}`)
  if (rest.length > spec.args)
    throw usageError(`webhooks ${action}: unexpected argument "${printable(rest.at(-1) ?? '')}"`)
  if (options.events !== undefined && !spec.options.includes('events'))
    throw usageError(`webhooks ${action}: --events does not apply`)
  if (options.limit !== undefined && !spec.options.includes('limit'))
    throw usageError(`webhooks ${action}: --limit does not apply`)
  switch (action) {
    case 'list': {
      const body = await client.get('admin/api/webhooks')
      if (options.json) return print(io, body)
      const rows = arrayField(body, 'endpoints').map((e) => [
        text(e.id),
        text(e.url),
        (Array.isArray(e.events) ? e.events.map(text).join(',') : '') || '*',
        text(e.createdAt),
        text(e.createdBy),
      ])
      io.stdout(table(['ID', 'URL', 'EVENTS', 'CREATED', 'BY'], rows))
      return EXIT.ok
    }
    case 'add': {
      const url = rest[0]
      if (url === undefined) throw usageError('webhooks add: give the endpoint URL')
      const events = options.events
        ?.split(',')
        .map((e) => e.trim())
        .filter(Boolean)
      const body = await client.post('admin/api/webhooks', {
        url,
        ...(events === undefined ? {} : { events }),
      })
      if (options.json) return print(io, body)
      io.stdout(
        `added ${text(body.id)}\nsecret: ${text(body.secret)}\n(shown only this once: store it where the receiver verifies signatures)\n`,
      )
      return EXIT.ok
    }
    case 'remove': {
      const id = endpointId(rest[0], 'remove')
      await client.delete(`admin/api/webhooks/${id}`)
      if (options.json) return print(io, { removed: id })
      io.stdout(`removed ${id}\n`)
      return EXIT.ok
    }
    case 'deliveries': {
      const id = endpointId(rest[0], 'deliveries')
      const limit = positiveLimit(options.limit, 200)
      const body = await client.get(`admin/api/webhooks/${id}/deliveries${query({ limit })}`)
      if (options.json) return print(io, body)
      const rows = arrayField(body, 'deliveries').map((d) => [
        text(d.messageId),
        text(d.type),
        text(d.status),
        text(d.attempts),
        text(d.nextAttemptAt ?? ''),
        text(d.lastStatusCode ?? ''),
        text(d.lastError ?? ''),
      ])
      io.stdout(table(['MESSAGE', 'TYPE', 'STATUS', 'ATTEMPTS', 'NEXT RETRY', 'CODE', 'LAST ERROR'], rows))
      return EXIT.ok
    }
    default: {
      const id = endpointId(rest[0], 'redeliver')
      const messageId = rest[1]
      if (messageId === undefined || !MESSAGE_ID.test(messageId)) {
        // The deliveries table cuts message ids too: one copied from it gets the same hint.
        const copied =
          messageId !== undefined && (messageId.length <= SHORT_ID_LENGTH || messageId.includes('…'))
        throw usageError(
          `webhooks redeliver: give the endpoint id and the message id${copied ? `\n${SHORT_ID_HINT}` : ''}`,
        )
      }
      const body = await client.post(`admin/api/webhooks/${id}/deliveries/${messageId}/redeliver`)
      if (options.json) return print(io, body)
      io.stdout(`queued ${messageId} for ${id} again\n`)
      return EXIT.ok
    }
  }
}
