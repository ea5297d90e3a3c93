// Creating a registration in Redis (registrations.ts's write order, step by step): 1. the
// delegated uniqueness claim and the index entries in one `{idx}` script, taking over a claim whose
// record never appeared within `claimGraceMs` or is revoked; 2. the record with its
// `registration.created` outbox entry, only if absent; 3. for a delegated one, a re-check that the
// claim is still ours (a create stalled past the grace period may have lost it), else undone.
import type { KeyRing } from '../../crypto/envelope.js'
import { CONFLICT, retryOnConflict } from '../compare-and-set.js'
import type { RedisClient } from '../redis-connection.js'
import {
  createdEntry,
  decodeRegistration,
  encodeNewRegistration,
  uniquenessField,
} from '../registration-hash.js'
import type { CreateResult, Registration, RegistrationSecrets, RegistrationUsage } from '../types.js'
import { isoToMs, validateNewRegistration } from '../validation.js'
import { type Claim, type ClaimSlot, claimSlot, parseClaim, readClaim } from './delegated-claims.js'
import { idleKeyOf } from './idle-buckets.js'
import { CLAIM_INDEX, UNCLAIM_INDEX } from './index-lua.js'
import { indexBlock, type RedisKeys, SUMMARY_VERSION } from './keys.js'
import { toStoredRecord } from './record-layout.js'
import { CREATE_RECORD, runScript } from './scripts.js'

const PENDING_POLLS = 10
const PENDING_POLL_MS = 20
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** `RegistrationStore.create` on Redis. */
export class RedisRegistrationCreation {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly keyRing: KeyRing,
    private readonly clock: () => number,
    private readonly claimGraceMs: number,
    /** Announces a subject about to get outbox entries (the webhook store's `announce`). */
    private readonly announce: (subject: string) => Promise<void>,
    /** Reads a claim holder's record (the store's `getMeta`). */
    private readonly getMeta: (id: string) => Promise<(Registration & RegistrationUsage) | null>,
  ) {}

  /** CLAIM_INDEX's keys (see index-lua.ts for their order). */
  #indexKeys(
    registration: Pick<Registration, 'id' | 'tenantId' | 'app'>,
    claim: ClaimSlot | undefined,
    stale: string,
  ): string[] {
    const k = this.keys
    return [
      claim?.key ?? k.legacyDelegated, // (untouched without a claim)
      idleKeyOf(k, registration.id),
      k.tenantIds,
      k.appTenants(registration.app),
      k.tenantSummary(registration.tenantId),
      ...indexBlock(k, registration.app, registration.tenantId),
      k.legacyDelegated,
      stale === '' ? k.legacyIdle : idleKeyOf(k, stale), // (untouched without a stale id)
      k.legacyIdle,
    ]
  }

  /** See `RegistrationStore.create` (the three steps above). */
  async create(input: Omit<Registration, 'version'>, secrets: RegistrationSecrets): Promise<CreateResult> {
    validateNewRegistration(input, secrets)
    const id = input.id
    const hash = encodeNewRegistration(this.keyRing, input, secrets)
    const recordKey = this.keys.reg(id)
    if ((await this.redis.exists(recordKey)) === 1) throw new Error(`registration ${id} already exists`)
    const field = input.status === 'revoked' ? undefined : uniquenessField(input)
    const slot = field === undefined ? undefined : claimSlot(this.keys, field)
    const score = isoToMs(input.createdAt, 'registration.createdAt')
    const claim = `${Math.trunc(this.clock())}:${id}`

    // 1. uniqueness claim + index entries (one slot, atomic)
    // (a compare-and-set on the claim: a stale holder is taken over only while it still holds it)
    let expected = ''
    let stale = ''
    let holder: Claim | undefined
    const claimed = await retryOnConflict({ attempts: 4 }, async () => {
      const reply = (await runScript(this.redis, CLAIM_INDEX, this.#indexKeys(input, slot, stale), [
        id,
        score,
        input.tenantId,
        slot?.field ?? '',
        claim,
        slot === undefined ? '' : score,
        expected,
        stale,
        input.status,
        input.app,
        input.cloud,
        isoToMs(input.consentedAt, 'registration.consentedAt'),
        SUMMARY_VERSION,
        slot?.legacyField ?? '',
      ])) as [number, string?]
      if (reply[0] === 1) return true
      const current = reply[1] ?? ''
      holder = parseClaim(current)
      const state = await this.#claimState(holder, field)
      if (state === 'live' || state === 'pending') return false
      // abandoned (record never written) or revoked without its claim released: take it over
      expected = current
      stale = state === 'abandoned' ? holder.id : ''
      return CONFLICT
    })
    if (claimed !== true && holder !== undefined) return { created: false, existingId: holder.id }

    // 2. the record, only if absent, with its `registration.created` outbox entry (announced first)
    const entry = createdEntry(hash, new Date(this.clock()).toISOString())
    await this.announce(id)
    const written = await runScript(
      this.redis,
      CREATE_RECORD,
      [recordKey, this.keys.outbox(id)],
      [entry.id, JSON.stringify(entry), ...toStoredRecord(hash)],
    )
    if (written !== 1) throw new Error(`registration ${id} already exists`)

    // 3. a create that stalled past the grace period may have lost its claim meanwhile
    if (slot !== undefined) {
      const current = await readClaim(this.redis, this.keys, slot)
      if (current !== claim) {
        // the record never counted: its outbox entry goes with it (same slot, one transaction)
        await this.redis.multi().del(recordKey).hdel(this.keys.outbox(id), entry.id).exec()
        await runScript(
          this.redis,
          UNCLAIM_INDEX,
          [
            slot.key,
            idleKeyOf(this.keys, id),
            this.keys.tenantSummary(input.tenantId),
            ...indexBlock(this.keys, input.app, input.tenantId),
            this.keys.legacyIdle,
          ],
          [id, '', '', input.app, input.cloud, SUMMARY_VERSION],
        )
        if (current === null) throw new Error(`registration ${id}: lost a concurrent create, retry`)
        return { created: false, existingId: parseClaim(current).id }
      }
    }
    return { created: true, registration: decodeRegistration(hash) }
  }

  async #claimState(holder: Claim, field?: string): Promise<'live' | 'revoked' | 'abandoned' | 'pending'> {
    // A claim without its record is usually a create between its steps 1 and 2 (a millisecond or
    // two): wait briefly so the caller gets an id it can read.
    for (let poll = 0; ; poll++) {
      const record = await this.getMeta(holder.id)
      if (record !== null) {
        // the claim's field is a digest (delegated-claims.ts): its holder must be the same grant
        if (uniquenessField(record) !== field)
          throw new Error(`registration ${holder.id} holds another grant's uniqueness claim`)
        return record.status === 'revoked' ? 'revoked' : 'live'
      }
      if (this.clock() - holder.claimedAt > this.claimGraceMs) return 'abandoned'
      if (poll >= PENDING_POLLS) return 'pending'
      await sleep(PENDING_POLL_MS)
    }
  }
}
