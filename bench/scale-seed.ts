// The population of `npm run bench:scale` and its seeding through the store code: both consent
// kinds over five apps, a few big tenants and a long tail, two clouds, 2 % needs_consent and 1 %
// revoked, usage fields, Keys and refresh tokens sealed by the store — the refresh tokens issued by
// the emulator the bench runs (so a keep-alive can really exchange them), admin consent granted
// there for every admin registration's tenant. Deterministic (a seeded PRNG).
import type { EmulatorTenant, EmulatorUser } from '../emulator/demo-data.js'
import { CONTOSO_TENANT_ID, FABRIKAM_TENANT_ID } from '../emulator/demo-data.js'
import type { RunningEmulator } from '../emulator/server.js'
import type { Config } from '../src/config.js'
import { createAdminRegistration, upsertDelegatedRegistration } from '../src/services/registrations.js'
import { ScopeResolver } from '../src/services/token-scope.js'
import type { Store } from '../src/store/types.js'

const DAY = 86_400_000
/** Deterministic pseudo-random numbers (mulberry32), so two runs seed the same shape. */
function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), a | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const rand = random(14)
const guid = () => {
  const hex = Array.from({ length: 32 }, () => Math.floor(rand() * 16).toString(16)).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`
}

/** One registration to create. */
export interface Plan {
  kind: 'admin' | 'delegated'
  app: string
  cloud: 'global' | 'usgov'
  tenantId: string
  user?: EmulatorUser
  status: 'active' | 'needs_consent' | 'revoked'
  createdAt: number
  /** Delegated: refreshed more than KEEPALIVE_IDLE_DAYS ago (the rest were refreshed yesterday). */
  idle: boolean
}

const ADMIN_APPS = ['ms-graph-mail', 'ms-graph-mail', 'ms-graph-user', 'ms-defender-atp'] as const
const DELEGATED_APPS = ['ms-graph-mail-listener', 'ms-graph-mail-listener', 'ms-azure-log-analytics'] as const

/** The whole population for `total` registrations: what to create, and the emulator's directory. */
export interface Population {
  readonly plans: readonly Plan[]
  readonly tenants: readonly EmulatorTenant[]
  readonly users: readonly EmulatorUser[]
  readonly now: number
}

export function population(total: number): Population {
  const tenants: EmulatorTenant[] = Array.from({ length: Math.max(20, Math.ceil(total / 5)) }, (_, i) => ({
    tid: guid(),
    displayName: `Tenant ${i}`,
    domain: `t${i}.scale.example`,
    region: i % 3 === 0 ? 'EU' : 'NA',
  }))
  // A few big tenants and a long tail (an MSSP's customers): index ~ n·u², the demo tenants first.
  const tenantIds = [CONTOSO_TENANT_ID, FABRIKAM_TENANT_ID, ...tenants.map((t) => t.tid)]
  const pickTenant = () => tenantIds[Math.floor(tenantIds.length * rand() ** 2)]!
  const users: EmulatorUser[] = []
  const now = Date.now()
  const plans = Array.from({ length: total }, (_, i) => plan(i, { pickTenant, users, now }))
  return { plans, tenants, users, now }
}

function plan(
  i: number,
  { pickTenant, users, now: NOW }: { pickTenant: () => string; users: EmulatorUser[]; now: number },
): Plan {
  // The first ten: admin consents of the demo tenants, the --sample-file registrations.
  if (i < 10) {
    return {
      kind: 'admin',
      app: i % 2 === 0 ? 'ms-graph-mail' : 'ms-graph-user',
      cloud: 'global',
      tenantId: i < 5 ? CONTOSO_TENANT_ID : FABRIKAM_TENANT_ID,
      status: 'active',
      createdAt: NOW - (i + 1) * DAY,
      idle: false,
    }
  }
  const delegated = rand() < 0.4
  const app = delegated
    ? DELEGATED_APPS[Math.floor(rand() * DELEGATED_APPS.length)]!
    : ADMIN_APPS[Math.floor(rand() * ADMIN_APPS.length)]!
  const cloud = app === 'ms-graph-mail' && rand() < 0.1 ? 'usgov' : 'global'
  const tenantId = pickTenant()
  const u = rand()
  // needs_consent 2 %, revoked 1 % (never Log Analytics: one filter below must match nothing)
  const status =
    u < 0.02 ? 'needs_consent' : u < 0.03 && app !== 'ms-azure-log-analytics' ? 'revoked' : 'active'
  let user: EmulatorUser | undefined
  if (delegated) {
    user = {
      oid: guid(),
      tid: tenantId,
      username: `user${i}@${tenantId.slice(0, 8)}.example`,
      displayName: `User ${i}`,
      roles: [],
    }
    users.push(user)
  }
  return {
    kind: delegated ? 'delegated' : 'admin',
    app,
    cloud,
    tenantId,
    ...(user === undefined ? {} : { user }),
    status,
    createdAt: NOW - Math.floor(rand() * 365 * DAY),
    idle: rand() < 0.2,
  }
}

/** Runs `work(i)` for i in [from, to) with `concurrency` in flight. */
export async function parallel(
  from: number,
  to: number,
  concurrency: number,
  work: (i: number) => Promise<void>,
): Promise<void> {
  let next = from
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < to; i = next++) await work(i)
    }),
  )
}

/** A seeded registration: its id and Key (the integration's values) and what it was planned as. */
export interface Seeded {
  id: string
  key: string
  plan: Plan
}

/**
 * Creates registrations `from`..`to` of the population through the store code (ids and Keys made
 * by services/registrations.ts), into `seeded[i]`.
 */
export async function seed(options: {
  store: Store
  emulator: RunningEmulator
  config: Config
  population: Population
  seeded: Seeded[]
  from: number
  to: number
  concurrency: number
}): Promise<void> {
  const { store, emulator, config, seeded } = options
  const NOW = options.population.now
  const scopes = new ScopeResolver(config)
  const consented = new Set<string>()
  await parallel(options.from, options.to, options.concurrency, async (i) => {
    const p = options.population.plans[i]!
    const app = config.apps.find((a) => a.slug === p.app)!
    const clientId = app.clouds[p.cloud]!.clientId
    const at = new Date(p.createdAt).toISOString()
    let made: { registration: { id: string; version: number }; key: string }
    if (p.kind === 'admin') {
      const grant = `${p.tenantId}|${clientId}`
      if (!consented.has(grant)) {
        consented.add(grant)
        emulator.state.recordAdminConsent(p.tenantId, clientId, [scopes.forApp(p.app, p.cloud)!.defaultScope])
      }
      made = await createAdminRegistration(store, {
        app: p.app,
        cloud: p.cloud,
        tenantId: p.tenantId,
        now: at,
      })
    } else {
      const user = p.user!
      const refreshToken = emulator.state.issueRefreshToken({
        clientId,
        tid: p.tenantId,
        oid: user.oid,
        scopes: ['openid', 'profile', 'offline_access', ...(app.consentScopes ?? [])],
      })
      const upserted = await upsertDelegatedRegistration(store, {
        app: p.app,
        cloud: p.cloud,
        tenantId: p.tenantId,
        now: at,
        userOid: user.oid,
        userName: user.username,
        refreshToken,
      })
      // Every planned user is a fresh oid: a renewal (which returns no Key) means a broken plan.
      if (upserted.reused) throw new Error(`plan ${i}: user ${user.oid} was seeded twice`)
      made = upserted
    }
    const id = made.registration.id
    if (p.status === 'needs_consent') {
      await store.registrations.update(id, made.registration.version, {
        status: 'needs_consent',
        statusDetail: { code: 'invalid_grant', message: 'AADSTS70008: the refresh token has expired', at },
      })
    } else if (p.status === 'revoked') {
      await store.registrations.update(
        id,
        made.registration.version,
        {
          status: 'revoked',
          statusDetail: { code: 'operator_revoked', at, by: 'operator:bench', reason: 'customer offboarded' },
        },
        p.kind === 'delegated' ? { refreshToken: null } : undefined,
      )
    }
    if (p.status === 'active') {
      const recent = new Date(NOW - Math.floor(rand() * DAY)).toISOString()
      await store.registrations.touch(id, {
        lastIssuedAt: recent,
        lastClient:
          p.kind === 'admin'
            ? 'O365 Outlook Mail (Using Graph API)/1.2.57'
            : 'Microsoft Graph Listener/1.0.31',
        ...(p.kind === 'delegated' && !p.idle ? { lastRefreshAt: recent } : {}),
      })
    }
    seeded[i] = { id, key: made.key, plan: p }
  })
}
