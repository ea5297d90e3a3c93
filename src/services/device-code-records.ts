// Where a device code flow (a tenant's own public-client app) keeps its state: one sealed record
// per flow in the ephemeral store, under the SHA-256 of the flow id, so every instance can serve
// its page and any instance can take over its polling. The record holds the device code (a bearer
// secret: sealed, never shown) and the SHA-256 of the secret of the browser that started the flow
// (its cookie): only that browser sees the user code and collects the result.
import { type CloudName, isCloudName } from '../clouds.js'
import { sha256Hex } from '../crypto/sha256.js'
import { tokensMatch } from '../crypto/tokens.js'
import type { ConsentFailureReason } from '../errors.js'
import type { Store } from '../store/types.js'

/** How a device code flow stands: waiting for the person, or ended one way or the other. */
export type DeviceFlowState = 'pending' | 'completed' | 'failed'

/** A device code flow, as stored (sealed). */
export interface DeviceFlowRecord {
  v: 1
  app: string
  cloud: CloudName
  tenantId: string
  clientId: string
  /** SHA-256 (hex) of the starting browser's secret. */
  browser: string
  /** Sent by the poller only; never on a page, never in a log. */
  deviceCode: string
  userCode: string
  verificationUri: string
  /** Epoch ms: the device code's end at Microsoft. */
  expiresAt: number
  /** Between two polls; grows by 5 s on each `slow_down`. */
  intervalMs: number
  /** Epoch ms: the earliest moment of the next poll (kept across instances). */
  nextPollAt: number
  state: DeviceFlowState
  /** `completed`: the one-time result's handle (the result page shows it once). */
  resultHandle?: string
  /** `failed`: why, and what Microsoft said (untrusted text). */
  failure?: { reason: ConsentFailureReason; providerCode?: string; providerMessage?: string }
}

const FLOW_KEY = 'device:flow:'
const DONE_KEY = 'device:flow-done:'
/** The result and failure pages stay collectable this long after the device code's end. */
const KEEP_AFTER_EXPIRY_MS = 10 * 60_000

function parseRecord(raw: string | null): DeviceFlowRecord | undefined {
  if (raw === null) return undefined
  try {
    const value = JSON.parse(raw) as DeviceFlowRecord
    return value?.v === 1 && typeof value.deviceCode === 'string' && isCloudName(value.cloud)
      ? value
      : undefined
  } catch {
    return undefined
  }
}

/** The lease name of a flow's poller (store locks), by the flow id's hash. */
export function pollLeaseName(flowId: string): string {
  return `device-poll:${sha256Hex(flowId)}`
}

/** Whether `browserSecret` is the secret of the browser that started the flow (constant time). */
export function startedBy(record: DeviceFlowRecord, browserSecret: string | undefined): boolean {
  return browserSecret !== undefined && tokensMatch(record.browser, sha256Hex(browserSecret))
}

/** The device code flows of one store. */
export class DeviceFlowRecords {
  readonly #store: Pick<Store, 'ephemeral'>
  readonly #clock: () => number

  constructor(store: Pick<Store, 'ephemeral'>, clock: () => number) {
    this.#store = store
    this.#clock = clock
  }

  /** Stores (or replaces) a flow's record, kept until a while after its device code ends. */
  async put(flowId: string, record: DeviceFlowRecord): Promise<void> {
    const ttlMs = Math.max(record.expiresAt - this.#clock(), 0) + KEEP_AFTER_EXPIRY_MS
    await this.#store.ephemeral.put(FLOW_KEY + sha256Hex(flowId), JSON.stringify(record), ttlMs, {
      secret: true,
    })
  }

  /** The flow's record, or undefined (unknown, expired or unreadable). */
  async get(flowId: string): Promise<DeviceFlowRecord | undefined> {
    return parseRecord(await this.#store.ephemeral.get(FLOW_KEY + sha256Hex(flowId), { secret: true }))
  }

  /** Takes the record (atomic read-and-delete): one page view collects an ended flow. */
  async take(flowId: string): Promise<DeviceFlowRecord | undefined> {
    return parseRecord(await this.#store.ephemeral.take(FLOW_KEY + sha256Hex(flowId), { secret: true }))
  }

  /**
   * Claims the flow's end: true for the one caller that may create its registration (even if two
   * pollers overlap after a lease lapsed), false for any other.
   */
  async claimEnd(flowId: string, ttlMs: number): Promise<boolean> {
    return this.#store.ephemeral.claim(DONE_KEY + sha256Hex(flowId), ttlMs)
  }
}
