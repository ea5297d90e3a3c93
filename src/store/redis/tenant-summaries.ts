// Reading the per-tenant summaries of the `{idx}` slot (keys.ts): one HGETALL per tenant of a page,
// in one pipeline. The scripts that create registrations and move their index entries keep
// the counts (index-lua.ts); a tenant whose summary is not complete (written before summaries
// existed) is counted once by walking its registrations and its summary written then, only if no
// change came meanwhile (its generation `g` is unchanged), so start-up never scans anything.
import { listAllRegistrations } from '../list-all.js'
import type { RedisClient } from '../redis-connection.js'
import {
  REGISTRATION_STATUSES,
  type RegistrationStatus,
  type RegistrationStore,
  type TenantCounts,
} from '../registration-types.js'
import { type CountedRegistrations, foldTenantCounts } from '../tenant-counts.js'
import { isoToMs } from '../validation.js'
import { REPAIR_SUMMARY } from './index-lua.js'
import { type RedisKeys, SUMMARY_VERSION } from './keys.js'
import { readNames } from './record-layout.js'
import { runScript } from './scripts.js'
import { isStatus, type SummaryFacts } from './secondary-indexes.js'

/** HMGET names of tenantId, app and cloud, in either record layout: [short, long] each. */
const SUMMARY_NAMES = [...readNames('tenantId'), ...readNames('app'), ...readNames('cloud')]

/**
 * A record's tenant, app and cloud (fixed for its life) and a new consent time (ms, '' = none): what
 * a status change needs to move its tenant summary's counts. Undefined when the record is missing.
 */
export async function readSummaryFacts(
  redis: RedisClient,
  keys: RedisKeys,
  id: string,
  consentedAt: string | undefined,
): Promise<SummaryFacts | undefined> {
  const [tenantShort, tenantLong, appShort, appLong, cloudShort, cloudLong] = await redis.hmget(
    keys.reg(id),
    ...SUMMARY_NAMES,
  )
  const tenantId = tenantShort ?? tenantLong
  const app = appShort ?? appLong
  const cloud = cloudShort ?? cloudLong
  if (!tenantId || !app || !cloud) return undefined
  const consented = consentedAt === undefined ? '' : String(isoToMs(consentedAt, 'patch.consentedAt'))
  return { tenantId, app, cloud, consented }
}

/** A stored summary hash as counts and last consents (fields `n|app|cloud|status`, `c|app`). */
function parseSummary(hash: Readonly<Record<string, string>>) {
  const counts: CountedRegistrations[] = []
  const consents = new Map<string, number>()
  for (const [field, value] of Object.entries(hash)) {
    if (field.startsWith('c|')) consents.set(field.slice(2), Number(value))
    if (!field.startsWith('n|')) continue
    const statusAt = field.lastIndexOf('|')
    const cloudAt = field.lastIndexOf('|', statusAt - 1)
    const status = field.slice(statusAt + 1)
    if (cloudAt <= 1 || !isStatus(status)) continue
    counts.push({
      app: field.slice(2, cloudAt),
      cloud: field.slice(cloudAt + 1, statusAt),
      status,
      count: Number(value),
    })
  }
  return { counts, consents }
}

/** The tenant summaries of one Redis store (read, and repaired once per tenant written before them). */
export class RedisTenantSummaries {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly registrations: Pick<RegistrationStore, 'list'>,
    /** Whether the listing indexes are complete (a repair counts statuses from them). */
    private readonly indexesComplete: () => Promise<boolean>,
  ) {}

  async summarize(tenantIds: readonly string[], app?: string): Promise<TenantCounts[]> {
    if (tenantIds.length === 0) return []
    const pipeline = this.redis.pipeline()
    for (const tenantId of tenantIds) pipeline.hgetall(this.keys.tenantSummary(tenantId))
    const results = await pipeline.exec()
    if (results === null) throw new Error('redis pipeline was aborted')
    return Promise.all(
      tenantIds.map(async (tenantId, i) => {
        const [error, value] = results[i] ?? [new Error('redis pipeline lost a reply')]
        if (error) throw error
        const hash = value as Record<string, string>
        if (hash.v === SUMMARY_VERSION) {
          const { counts, consents } = parseSummary(hash)
          return foldTenantCounts(tenantId, counts, consents, app)
        }
        return this.#repair(tenantId, hash.g ?? '', app)
      }),
    )
  }

  /** Counts the tenant by walking its registrations, and writes its summary unless it changed meanwhile. */
  async #repair(tenantId: string, generation: string, app: string | undefined): Promise<TenantCounts> {
    const args: string[] = []
    const apps: string[] = []
    const walked = new Map<string, number>()
    const consents = new Map<string, number>()
    for await (const item of listAllRegistrations(this.registrations, { tenantId })) {
      const consented = isoToMs(item.consentedAt, 'consentedAt')
      let appIndex = apps.indexOf(item.app)
      if (appIndex < 0) appIndex = apps.push(item.app) - 1
      args.push(item.id, String(appIndex), item.app, item.cloud, String(consented))
      const key = `${item.app}\n${item.cloud}\n${item.status}`
      walked.set(key, (walked.get(key) ?? 0) + 1)
      consents.set(item.app, Math.max(consents.get(item.app) ?? 0, consented))
    }
    const key = this.keys.tenantSummary(tenantId)
    const written = !(await this.indexesComplete())
      ? 0
      : await runScript(
          this.redis,
          REPAIR_SUMMARY,
          [
            key,
            ...apps.flatMap((name) =>
              REGISTRATION_STATUSES.map((status) => this.keys.tenantStatus(status, name, tenantId)),
            ),
          ],
          [generation, SUMMARY_VERSION, ...args],
        )
    if (written === 1) {
      const { counts, consents: stored } = parseSummary(await this.redis.hgetall(key))
      return foldTenantCounts(tenantId, counts, stored, app)
    }
    // changed while walking (or the indexes not rebuilt yet): answer from the walk; the
    // next listing repairs it
    const counts = [...walked].map(([combined, count]) => {
      const [name, cloud, status] = combined.split('\n') as [string, string, RegistrationStatus]
      return { app: name, cloud, status, count }
    })
    return foldTenantCounts(tenantId, counts, consents, app)
  }
}
