// The key rotation's re-seal of records' secrets under the current master key, a batch at a time,
// in the compact record layout whichever layout a record was read from (record-layout.ts).
//
// A batch costs a few round trips whatever its size: every record is read at once (HGETALL each,
// sent together: auto-pipelining makes it one write per node), re-sealed in process, and written
// back by one compare-and-set script per record, also sent together (on a Cluster the records are
// in different slots, so no script may span them). A record whose sealed value changed between
// the read and the write (a concurrent new refresh token) is left as the concurrent write made it
// and read again; only those are retried.
import type { KeyRing } from '../../crypto/envelope.js'
import { KeyRing as KeyRingClass } from '../../crypto/envelope.js'
import { CONFLICT, retryOnConflict } from '../compare-and-set.js'
import type { RedisClient } from '../redis-connection.js'
import { resealedFacts } from '../registration-hash.js'
import { openSecret, SECRET_FIELDS, sealSecret } from '../sealing.js'
import type { ResealedRegistration, ResealOutcome } from '../types.js'
import type { RedisKeys } from './keys.js'
import { CHUNK_PREFIX, chunksOf, fromStored } from './record-layout.js'
import { RESEAL_FIELDS, runScript } from './scripts.js'

/** Reads of a record that lost its write to a concurrent one before it counts as failed. */
const ATTEMPTS = 5

/** One record's pending rewrite: RESEAL_FIELDS's arguments and how many fields it replaces. */
interface Rewrite {
  index: number
  args: Array<string | number>
  fields: number
  registration: ResealedRegistration
}

/**
 * See RegistrationStore.resealBatch: every secret of each record not sealed under the current key
 * is re-sealed (written as chunks), only while the record still holds the value read.
 */
export async function resealRecords(
  redis: RedisClient,
  keys: RedisKeys,
  keyRing: KeyRing,
  ids: readonly string[],
): Promise<ResealOutcome[]> {
  const outcomes: Array<ResealOutcome | undefined> = ids.map(() => undefined)
  const facts: Array<ResealedRegistration | undefined> = ids.map(() => undefined)
  /** Records with a field already rewritten by an earlier attempt. */
  const rewritten = new Set<number>()
  let pending = ids.map((_, index) => index)
  const done = await retryOnConflict({ attempts: ATTEMPTS }, async () => {
    const stored = await Promise.all(pending.map((index) => redis.hgetall(keys.reg(ids[index]!))))
    const rewrites: Rewrite[] = []
    pending.forEach((index, n) => {
      const id = ids[index]!
      const found = stored[n]!
      if (found.status === undefined) {
        outcomes[index] = { id, outcome: 'missing' }
        return
      }
      const record = fromStored(id, found)
      const registration = resealedFacts(id, record)
      facts[index] = registration
      const args: Array<string | number> = []
      let fields = 0
      try {
        for (const field of SECRET_FIELDS) {
          const sealed = record[field]
          if (sealed === undefined || KeyRingClass.keyIdOf(sealed) === keyRing.current.id) continue
          const chunks = chunksOf(sealSecret(keyRing, id, field, openSecret(keyRing, id, field, sealed)))
          args.push(field, CHUNK_PREFIX[field], sealed, chunks.length, ...chunks)
          fields += 1
        }
      } catch (cause) {
        const error = cause instanceof Error ? cause : new Error('re-seal failed')
        outcomes[index] = { id, outcome: 'failed', error, registration }
        return
      }
      if (fields === 0) {
        outcomes[index] = { id, outcome: rewritten.has(index) ? 'resealed' : 'unchanged', registration }
        return
      }
      rewrites.push({ index, args, fields, registration })
    })
    const replaced = await Promise.all(
      rewrites.map(
        (rewrite) =>
          runScript(redis, RESEAL_FIELDS, [keys.reg(ids[rewrite.index]!)], rewrite.args) as Promise<number>,
      ),
    )
    pending = []
    rewrites.forEach((rewrite, n) => {
      const count = replaced[n]!
      if (count > 0) rewritten.add(rewrite.index)
      // fewer replaced: a field changed underneath (e.g. a new refresh token): read it again
      if (count === rewrite.fields) {
        outcomes[rewrite.index] = {
          id: ids[rewrite.index]!,
          outcome: 'resealed',
          registration: rewrite.registration,
        }
      } else pending.push(rewrite.index)
    })
    return pending.length === 0 ? true : CONFLICT
  })
  if (done === CONFLICT) {
    for (const index of pending) {
      const id = ids[index]!
      const registration = facts[index]
      outcomes[index] = {
        id,
        outcome: 'failed',
        error: new Error(`registration ${id}: reseal kept racing with concurrent writes`),
        ...(registration === undefined ? {} : { registration }),
      }
    }
  }
  return outcomes.map((outcome, index) => outcome ?? { id: ids[index]!, outcome: 'missing' })
}

/** See RegistrationStore.reseal: {@link resealRecords} of one record, its failure thrown. */
export async function resealRecord(
  redis: RedisClient,
  keys: RedisKeys,
  keyRing: KeyRing,
  id: string,
): Promise<boolean> {
  const [result] = await resealRecords(redis, keys, keyRing, [id])
  if (result?.outcome === 'failed') throw result.error
  return result?.outcome === 'resealed'
}
