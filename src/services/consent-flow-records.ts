// Where the consent flow keeps its server-side state: the flow records (sealed, with a TTL), the
// "used" marker of each flow and the one-time results. The handles a browser holds (the flow id in
// the flow cookie, the result handle in the result cookie) are bearer secrets, so the store sees
// only their SHA-256: someone who reads Redis (and even knows COOKIE_SECRET, so could sign a
// cookie) learns no handle that would open a flow or a result.
import { type CloudName, isCloudName } from '../clouds.js'
import type { ConsentKind } from '../consent-kinds.js'
import { sha256Hex } from '../crypto/sha256.js'
import type { Store } from '../store/types.js'

/** What the callback of each phase expects. */
export type FlowPhase = 'sign-in' | 'admin-consent' | 'manage-sign-in'

/** A flow in progress, as stored (sealed) under the hash of its id. */
export interface FlowRecord {
  v: 1
  app: string
  cloud: CloudName
  kind: ConsentKind
  phase: FlowPhase
  state: string
  /** sign-in phase */
  nonce?: string
  codeVerifier?: string
  scopes?: string[]
  /** admin-consent phase: who signed in */
  tid?: string
  oid?: string
  userName?: string
  /** admin-consent phase: the `name` claim of who signed in */
  name?: string
  /** The tenant's own app, when it brought one (the record is sealed: the secret stays secret). */
  ownApp?: { tenantId: string; clientId: string; clientSecret?: string }
}

const FLOW_KEY = 'consent:flow:'
const FLOW_USED_KEY = 'consent:flow-used:'
const RESULT_KEY = 'consent:result:'
/**
 * A renewal's result (no Key) lives under its own prefix: an instance of the release before, met
 * during a rolling upgrade or a rollback, reads only RESULT_KEY and so answers "already shown"
 * instead of a result page with an empty Key field to paste over the integration's working Key.
 */
const RENEWAL_RESULT_KEY = 'consent:result-renewed:'
/**
 * A result whose delegated Key must be marked shown before the page shows it (`unshownKey`) lives
 * under its own prefix too: an instance of the release before would show that Key without marking
 * it, and the next consent would then replace a Key the integration may already hold. It answers
 * "already shown" instead; the Key stays unshown and the user's next consent issues a new one.
 */
const UNSHOWN_RESULT_KEY = 'consent:result-unshown:'
const RESULT_PREFIXES = [RESULT_KEY, UNSHOWN_RESULT_KEY, RENEWAL_RESULT_KEY]

function resultPrefix(result: { reused: boolean; unshownKey?: string }): string {
  if (result.reused) return RENEWAL_RESULT_KEY
  return result.unshownKey === undefined ? RESULT_KEY : UNSHOWN_RESULT_KEY
}

/**
 * The value one of the lookups under RESULT_PREFIXES found, or null. A lookup's error is thrown only
 * when none found it: a result already taken is handed out rather than lost to another prefix's
 * failure (on a Redis Cluster the prefixes' keys can live on different masters).
 */
function found(lookups: PromiseSettledResult<string | null>[]): string | null {
  for (const lookup of lookups) {
    if (lookup.status === 'fulfilled' && lookup.value !== null) return lookup.value
  }
  const failed = lookups.find((lookup) => lookup.status === 'rejected')
  if (failed !== undefined) throw failed.reason
  return null
}

function parseRecord(raw: string): FlowRecord | undefined {
  try {
    const value = JSON.parse(raw) as FlowRecord
    return value?.v === 1 && typeof value.state === 'string' && isCloudName(value.cloud) ? value : undefined
  } catch {
    return undefined
  }
}

/** The flow records and results of one store, every key named by a handle's hash. */
export class ConsentFlowRecords {
  readonly #store: Pick<Store, 'ephemeral'>
  readonly #ttlMs: number

  constructor(store: Pick<Store, 'ephemeral'>, ttlMs: number) {
    this.#store = store
    this.#ttlMs = ttlMs
  }

  /** Stores a flow record under its id's hash, for the flow's lifetime. */
  async putFlow(flowId: string, record: FlowRecord): Promise<void> {
    await this.#store.ephemeral.put(FLOW_KEY + sha256Hex(flowId), JSON.stringify(record), this.#ttlMs, {
      secret: true,
    })
  }

  /** The flow record without ending the flow (its `state` is checked before anything ends it). */
  async peekFlow(flowId: string): Promise<FlowRecord | undefined> {
    const raw = await this.#store.ephemeral.get(FLOW_KEY + sha256Hex(flowId), { secret: true })
    return raw === null ? undefined : parseRecord(raw)
  }

  /**
   * Ends the flow: claims its "used" marker, then takes its record. Only one caller wins the claim;
   * `replayed` for the others (a second callback of the same flow, even a concurrent one).
   */
  async endFlow(flowId: string): Promise<{ record: FlowRecord } | { replayed: true } | { expired: true }> {
    const id = sha256Hex(flowId)
    if (!(await this.#store.ephemeral.claim(FLOW_USED_KEY + id, this.#ttlMs))) return { replayed: true }
    const raw = await this.#store.ephemeral.take(FLOW_KEY + id, { secret: true })
    const record = raw === null ? undefined : parseRecord(raw)
    return record === undefined ? { expired: true } : { record }
  }

  /** Whether the flow already ended (its marker stays for the flow's lifetime): a replay, not an expiry. */
  async flowEnded(flowId: string): Promise<boolean> {
    return (await this.#store.ephemeral.get(FLOW_USED_KEY + sha256Hex(flowId))) !== null
  }

  /**
   * Stores a one-time result (a new registration's holds its Key: sealed) under the hash of its
   * handle; a renewal's (`reused`) under RENEWAL_RESULT_KEY, one with an unshown delegated Key under
   * UNSHOWN_RESULT_KEY.
   */
  async putResult(resultHandle: string, result: { reused: boolean; unshownKey?: string }): Promise<void> {
    await this.#store.ephemeral.put(
      resultPrefix(result) + sha256Hex(resultHandle),
      JSON.stringify(result),
      this.#ttlMs,
      {
        secret: true,
      },
    )
  }

  /**
   * Takes the one-time result (atomic read-and-delete); null when already taken or expired. Under
   * every prefix at once, one round trip: a handle is random and its result stored under one prefix
   * only, so the other takes find nothing to delete.
   */
  async takeResult(resultHandle: string): Promise<string | null> {
    const hash = sha256Hex(resultHandle)
    const lookups = await Promise.allSettled(
      RESULT_PREFIXES.map((prefix) => this.#store.ephemeral.take(prefix + hash, { secret: true })),
    )
    return found(lookups)
  }

  /** Whether the one-time result is still there, without taking it (HEAD /result); every prefix at once. */
  async hasResult(resultHandle: string): Promise<boolean> {
    const hash = sha256Hex(resultHandle)
    const lookups = await Promise.allSettled(
      RESULT_PREFIXES.map((prefix) => this.#store.ephemeral.get(prefix + hash)),
    )
    return found(lookups) !== null
  }
}
