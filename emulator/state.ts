// In-memory state of the emulator: directory, pending sign-ins, single sign-on sessions, codes,
// grants, consents, faults, statistics. Everything but the directory and the initial signing key is
// reset by `reset()`.

import { randomBytes, randomUUID } from 'node:crypto'
import { type ClientAuthMethod, ClientCredentialRegistry } from './client-credentials.js'
import type { EmulatorClient, EmulatorTenant, EmulatorUser } from './demo-data.js'
import type { SigningKey } from './keys.js'

export const DEFAULT_ACCESS_TOKEN_LIFETIME_SEC = 3600
export const ID_TOKEN_LIFETIME_SEC = 3600
export const CODE_LIFETIME_MS = 10 * 60 * 1000
export const FLOW_LIFETIME_MS = 15 * 60 * 1000
export const REFRESH_TOKEN_INACTIVITY_MS = 90 * 24 * 3600 * 1000
/** Lifetime of a single sign-on session, counted from the sign-in (emulator clock). */
export const SESSION_LIFETIME_MS = 60 * 60 * 1000
/** Device codes live 15 minutes, as Entra's do. */
export const DEVICE_CODE_LIFETIME_MS = 15 * 60 * 1000
/** Entra's polling interval for the device code grant, in seconds. */
export const DEFAULT_DEVICE_CODE_INTERVAL_SEC = 5

export const TENANT_KEYWORDS = ['common', 'organizations', 'consumers'] as const
export type TenantKeyword = (typeof TENANT_KEYWORDS)[number]

/** The Microsoft account (consumer) tenant; `/consumers` documents name it as their issuer. */
export const CONSUMERS_TENANT_ID = '9188040d-6c67-4c5b-b112-36a304b66dad'

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
export const isGuid = (s: string): boolean => GUID.test(s)

/** The `{tenant}` path segment resolved: a keyword, or a tenant of the directory. */
export type ResolvedTenant =
  | { readonly kind: 'keyword'; readonly segment: string; readonly keyword: TenantKeyword }
  | { readonly kind: 'tenant'; readonly segment: string; readonly tenant: EmulatorTenant }

/** How pages and messages name the `{tenant}` path: the tenant's display name, or the keyword. */
export function tenantLabel(tenant: ResolvedTenant): string {
  return tenant.kind === 'tenant' ? tenant.tenant.displayName : tenant.segment
}

export type ResponseMode = 'query' | 'fragment' | 'form_post'

export interface PendingFlow {
  readonly id: string
  /** `device`: the sign-in and consent after a user code was entered on the verification page. */
  readonly kind: 'authorize' | 'adminconsent' | 'device'
  readonly tenant: ResolvedTenant
  readonly client: EmulatorClient
  readonly redirectUri: string
  readonly responseMode: ResponseMode
  readonly scopes: readonly string[]
  readonly state: string | undefined
  readonly nonce: string | undefined
  readonly codeChallenge: string | undefined
  readonly prompt: string | undefined
  readonly loginHint: string | undefined
  readonly domainHint: string | undefined
  readonly expiresAt: number
  user?: EmulatorUser
  /** `device` flows: the device code the sign-in approves. */
  readonly deviceCode?: string
}

/** A device authorization: pending until the user signs in on the verification page. */
export interface DeviceCodeRecord {
  readonly deviceCode: string
  readonly userCode: string
  readonly clientId: string
  readonly tenant: ResolvedTenant
  readonly scopes: readonly string[]
  readonly expiresAt: number
  readonly intervalSec: number
  /** When the client last polled (slow_down below the interval). */
  lastPollAt: number | undefined
  status: 'pending' | 'approved' | 'declined' | 'refused' | 'redeemed'
  oid?: string
  /** `refused`: what the next poll answers (the sign-in ended with this error, e.g. AADSTS65001). */
  refusal?: { readonly error: string; readonly code: number; readonly text: string }
}

/** A browser's single sign-on session: the session cookie names it, the record names the user. */
export interface SsoSession {
  readonly oid: string
  readonly tid: string
  readonly signedInAt: number
  readonly expiresAt: number
}

export interface CodeRecord {
  readonly clientId: string
  readonly redirectUri: string
  /** Lower-cased `{tenant}` path segment the code was issued at; redemption must use the same one. */
  readonly pathSegment: string
  readonly tid: string
  readonly oid: string
  readonly scopes: readonly string[]
  readonly nonce: string | undefined
  readonly codeChallenge: string | undefined
  readonly expiresAt: number
  redeemed: boolean
}

export interface RefreshRecord {
  readonly clientId: string
  readonly tid: string
  readonly oid: string
  /** Scopes of the original authorization; the default when a refresh names none. */
  readonly scopes: readonly string[]
  readonly issuedAt: number
  revoked: boolean
  /** Set by a `/_emulator/users/:user/expire` hook: the refresh grant fails with this error. */
  expiredBy?: { readonly error: string; readonly code: number; readonly text: string }
}

/** What the `/_emulator/users/:user/expire` hook can do to a user's refresh tokens, as Entra would. */
export const EXPIRY_CAUSES = [
  'inactivity',
  'sign_in_frequency',
  'sessions_revoked',
  'consent_removed',
] as const
export type ExpiryCause = (typeof EXPIRY_CAUSES)[number]

export interface Fault {
  count: number
  readonly delayMs?: number
  readonly status?: number
  readonly error?: string
  readonly errorCode?: number
  readonly errorDescription?: string
  readonly retryAfter?: number
  /** Raw (non-JSON) response body, e.g. a gateway's HTML page. */
  readonly body?: string
  /** Destroy the connection without answering. */
  readonly reset?: boolean
  readonly grantType?: string
  readonly tenant?: string
  readonly clientId?: string
}

export interface EmulatorStats {
  token_requests: Record<string, number>
  by_tenant: Record<string, Record<string, number>>
  /** Token requests by client id (lower case) and grant type: one app's share of the traffic. */
  by_client: Record<string, Record<string, number>>
  /** Successful client authentications by method (client_secret, private_key_jwt, federated). */
  client_auth: Record<ClientAuthMethod, number>
}

function emptyStats(clientAuth: Record<ClientAuthMethod, number>): EmulatorStats {
  return {
    token_requests: { authorization_code: 0, refresh_token: 0, client_credentials: 0 },
    by_tenant: {},
    by_client: {},
    client_auth: clientAuth,
  }
}

export const opaqueToken = (prefix: string, bytes: number): string =>
  `${prefix}.${randomBytes(bytes).toString('base64url')}`

export interface EmulatorStateOptions {
  baseUrl: string
  tenants: readonly EmulatorTenant[]
  users: readonly EmulatorUser[]
  clients: readonly EmulatorClient[]
  keys: readonly SigningKey[]
  accessTokenLifetimeSec: number
  deviceCodeIntervalSec?: number
  now: () => number
}

export class EmulatorState {
  /** Issuer base, e.g. `http://127.0.0.1:3001` (no trailing slash). */
  baseUrl: string
  readonly tenants: ReadonlyMap<string, EmulatorTenant>
  readonly users: ReadonlyMap<string, EmulatorUser>
  /** The demo clients plus the single-tenant apps registered at run time. */
  readonly clients: Map<string, EmulatorClient>
  /** Signing keys; the first one signs, all are published. */
  keys: SigningKey[]
  readonly pending = new Map<string, PendingFlow>()
  /** Session cookie value → single sign-on session. */
  readonly sessions = new Map<string, SsoSession>()
  readonly codes = new Map<string, CodeRecord>()
  readonly refreshTokens = new Map<string, RefreshRecord>()
  /** `${tid}|${oid}|${clientId}` → consented scope keys. */
  readonly userGrants = new Map<string, Set<string>>()
  /** `${tid}|${clientId}` → admin-consented scopes (as requested). */
  readonly adminConsents = new Map<string, Set<string>>()
  /** Device code → device authorization; `userCodes` maps the user code to the device code. */
  readonly deviceCodes = new Map<string, DeviceCodeRecord>()
  readonly userCodes = new Map<string, string>()
  deviceCodeIntervalSec: number
  faults: Fault[] = []
  /** Every client's secrets, certificates and federated credentials (changed through a hook). */
  readonly credentials: ClientCredentialRegistry
  stats: EmulatorStats
  accessTokenLifetimeSec: number
  clockOffsetMs = 0

  private readonly initialKeys: readonly SigningKey[]
  private readonly defaultLifetimeSec: number
  private readonly clock: () => number

  constructor(options: EmulatorStateOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.tenants = new Map(options.tenants.map((t) => [t.tid, t]))
    this.users = new Map(options.users.map((u) => [u.username.toLowerCase(), u]))
    this.clients = new Map(options.clients.map((c) => [c.clientId.toLowerCase(), c]))
    this.credentials = new ClientCredentialRegistry(() => this.clients.values())
    this.stats = emptyStats(this.credentials.counts)
    this.initialKeys = [...options.keys]
    this.keys = [...options.keys]
    this.defaultLifetimeSec = options.accessTokenLifetimeSec
    this.accessTokenLifetimeSec = options.accessTokenLifetimeSec
    this.clock = options.now
    this.deviceCodeIntervalSec = options.deviceCodeIntervalSec ?? DEFAULT_DEVICE_CODE_INTERVAL_SEC
  }

  /** Emulator time in milliseconds (real clock plus the offset set through `/_emulator/clock`). */
  now(): number {
    return this.clock() + this.clockOffsetMs
  }

  /** Back to the fixed demo data. */
  reset(): void {
    this.pending.clear()
    this.sessions.clear()
    this.codes.clear()
    this.refreshTokens.clear()
    this.userGrants.clear()
    this.adminConsents.clear()
    this.deviceCodes.clear()
    this.userCodes.clear()
    this.faults = []
    this.credentials.reset()
    this.stats = emptyStats(this.credentials.counts)
    this.accessTokenLifetimeSec = this.defaultLifetimeSec
    this.clockOffsetMs = 0
    this.keys = [...this.initialKeys]
  }

  resolveTenant(segment: string): ResolvedTenant | null {
    const lower = segment.toLowerCase()
    if ((TENANT_KEYWORDS as readonly string[]).includes(lower)) {
      return { kind: 'keyword', segment: lower, keyword: lower as TenantKeyword }
    }
    const tenant = isGuid(lower)
      ? this.tenants.get(lower)
      : [...this.tenants.values()].find((t) => t.domain.toLowerCase() === lower)
    return tenant ? { kind: 'tenant', segment: lower, tenant } : null
  }

  findUser(username: string): EmulatorUser | undefined {
    return this.users.get(username.trim().toLowerCase())
  }

  findUserByOid(oid: string): EmulatorUser | undefined {
    return [...this.users.values()].find((u) => u.oid === oid)
  }

  findClient(clientId: string): EmulatorClient | undefined {
    return this.clients.get(clientId.toLowerCase())
  }

  /** Adds an app registration (the directory keeps it across `reset()`, like the demo clients). */
  registerClient(client: EmulatorClient): void {
    this.clients.set(client.clientId.toLowerCase(), client)
  }

  /** Starts a device authorization; the user code is 9 letters, unambiguous, as Entra's are. */
  issueDeviceCode(record: Pick<DeviceCodeRecord, 'clientId' | 'tenant' | 'scopes'>): DeviceCodeRecord {
    this.sweep()
    const letters = 'BCDFGHJKLMNPQRSTVWXZ'
    let userCode = ''
    do {
      userCode = [...randomBytes(9)].map((b) => letters[b % letters.length]).join('')
    } while (this.userCodes.has(userCode))
    const created: DeviceCodeRecord = {
      ...record,
      deviceCode: opaqueToken('DAQABAAEAAAD', 48),
      userCode,
      expiresAt: this.now() + DEVICE_CODE_LIFETIME_MS,
      intervalSec: this.deviceCodeIntervalSec,
      lastPollAt: undefined,
      status: 'pending',
    }
    this.deviceCodes.set(created.deviceCode, created)
    this.userCodes.set(userCode, created.deviceCode)
    return created
  }

  /** The live, still pending device authorization a user code names (case and spaces ignored). */
  pendingDeviceCode(userCode: string): DeviceCodeRecord | undefined {
    const deviceCode = this.userCodes.get(userCode.replace(/[\s-]/g, '').toUpperCase())
    const record = deviceCode === undefined ? undefined : this.deviceCodes.get(deviceCode)
    if (record?.status !== 'pending' || record.expiresAt <= this.now()) return undefined
    return record
  }

  issuer(tid: string): string {
    return `${this.baseUrl}/${tid}/v2.0`
  }

  createFlow(flow: Omit<PendingFlow, 'id' | 'expiresAt'>): PendingFlow {
    this.sweep()
    const created: PendingFlow = { ...flow, id: randomUUID(), expiresAt: this.now() + FLOW_LIFETIME_MS }
    this.pending.set(created.id, created)
    return created
  }

  /** Starts a single sign-on session for `user`; returns the session cookie value. */
  createSession(user: EmulatorUser): string {
    this.sweep()
    const id = randomBytes(32).toString('base64url')
    const now = this.now()
    this.sessions.set(id, {
      oid: user.oid,
      tid: user.tid,
      signedInAt: now,
      expiresAt: now + SESSION_LIFETIME_MS,
    })
    return id
  }

  /** The user of a live session, or undefined (unknown, expired, or the user left the directory). */
  sessionUser(id: string | undefined): EmulatorUser | undefined {
    if (!id) return undefined
    const session = this.sessions.get(id)
    if (!session) return undefined
    const user = this.findUserByOid(session.oid)
    if (session.expiresAt <= this.now() || !user) {
      this.sessions.delete(id)
      return undefined
    }
    return user
  }

  /** Ends one session (sign-out); true if it existed. */
  endSession(id: string | undefined): boolean {
    return id !== undefined && this.sessions.delete(id)
  }

  /** Ends every session matching `match`; returns how many. */
  endSessions(match: (session: SsoSession) => boolean): number {
    let ended = 0
    for (const [id, session] of this.sessions) {
      if (match(session)) {
        this.sessions.delete(id)
        ended += 1
      }
    }
    return ended
  }

  issueCode(record: Omit<CodeRecord, 'expiresAt' | 'redeemed'>): string {
    const code = opaqueToken('0', 48)
    this.codes.set(code, { ...record, expiresAt: this.now() + CODE_LIFETIME_MS, redeemed: false })
    return code
  }

  issueRefreshToken(record: Omit<RefreshRecord, 'issuedAt' | 'revoked'>): string {
    const token = opaqueToken('1', 64)
    this.refreshTokens.set(token, { ...record, issuedAt: this.now(), revoked: false })
    return token
  }

  hasAdminConsent(tid: string, clientId: string): boolean {
    return this.adminConsents.has(`${tid}|${clientId.toLowerCase()}`)
  }

  adminConsentScopes(tid: string, clientId: string): ReadonlySet<string> {
    return this.adminConsents.get(`${tid}|${clientId.toLowerCase()}`) ?? new Set()
  }

  recordAdminConsent(tid: string, clientId: string, scopes: readonly string[]): void {
    const key = `${tid}|${clientId.toLowerCase()}`
    const set = this.adminConsents.get(key) ?? new Set<string>()
    for (const s of scopes) set.add(s)
    this.adminConsents.set(key, set)
  }

  userGrant(tid: string, oid: string, clientId: string): ReadonlySet<string> | undefined {
    return this.userGrants.get(`${tid}|${oid}|${clientId.toLowerCase()}`)
  }

  recordUserGrant(tid: string, oid: string, clientId: string, keys: Iterable<string>): void {
    const key = `${tid}|${oid}|${clientId.toLowerCase()}`
    const set = this.userGrants.get(key) ?? new Set<string>()
    for (const k of keys) set.add(k)
    this.userGrants.set(key, set)
  }

  /**
   * Removes the tenant's user grants and admin consents, revokes its refresh tokens and ends its
   * users' sign-on sessions.
   */
  revokeTenant(tid: string): void {
    this.endSessions((s) => s.tid === tid)
    for (const key of [...this.userGrants.keys()]) if (key.startsWith(`${tid}|`)) this.userGrants.delete(key)
    for (const key of [...this.adminConsents.keys()])
      if (key.startsWith(`${tid}|`)) this.adminConsents.delete(key)
    for (const rt of this.refreshTokens.values()) if (rt.tid === tid) rt.revoked = true
  }

  /** Removes one user's grants, revokes their refresh tokens and ends their sessions (a password reset). */
  revokeUser(oid: string): void {
    this.endSessions((s) => s.oid === oid)
    for (const key of [...this.userGrants.keys()]) if (key.split('|')[1] === oid) this.userGrants.delete(key)
    for (const rt of this.refreshTokens.values()) if (rt.oid === oid) rt.revoked = true
  }

  /**
   * Ends one user's refresh tokens the way `cause` does at Entra: 90 days of inactivity
   * (AADSTS700082), a Conditional Access sign-in frequency policy (AADSTS70043), a password reset
   * or an admin revoking sessions (AADSTS50173), the consent removed (AADSTS65001, grants deleted).
   * Returns how many refresh tokens it ended.
   */
  expireUserTokens(oid: string, cause: ExpiryCause): number {
    let ended = 0
    const now = new Date(this.now()).toISOString()
    if (cause === 'sessions_revoked') {
      this.endSessions((s) => s.oid === oid)
      for (const key of [...this.userGrants.keys()])
        if (key.split('|')[1] === oid) this.userGrants.delete(key)
    }
    for (const rt of this.refreshTokens.values()) {
      if (rt.oid !== oid || rt.revoked || rt.expiredBy !== undefined) continue
      ended++
      const issued = new Date(rt.issuedAt).toISOString()
      switch (cause) {
        case 'inactivity':
          rt.expiredBy = {
            error: 'invalid_grant',
            code: 700082,
            text: `The refresh token has expired due to inactivity. The token was issued on ${issued} and was inactive for 90.00:00:00.`,
          }
          break
        case 'sign_in_frequency':
          rt.expiredBy = {
            error: 'invalid_grant',
            code: 70043,
            text: `The refresh token has expired or is invalid due to sign-in frequency checks by conditional access. The token was issued on ${issued} and the maximum allowed lifetime for this request is 3600.`,
          }
          break
        case 'sessions_revoked':
          rt.expiredBy = {
            error: 'invalid_grant',
            code: 50173,
            text: `The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '${issued}' and the TokensValidFrom date (before which tokens are not valid) for this user is '${now}'.`,
          }
          break
        case 'consent_removed': {
          this.userGrants.delete(`${rt.tid}|${oid}|${rt.clientId}`)
          rt.expiredBy = {
            error: 'invalid_grant',
            code: 65001,
            text: `The user or administrator has not consented to use the application with ID '${rt.clientId}'. Send an interactive authorization request for this user and resource.`,
          }
          break
        }
      }
    }
    return ended
  }

  countTokenRequest(grantType: string, pathSegment: string, clientId?: string): void {
    const t = this.stats.token_requests
    t[grantType] = (t[grantType] ?? 0) + 1
    const byTenant = this.stats.by_tenant[pathSegment] ?? {}
    byTenant[grantType] = (byTenant[grantType] ?? 0) + 1
    this.stats.by_tenant[pathSegment] = byTenant
    if (clientId !== undefined) {
      const client = clientId.toLowerCase()
      const byClient = this.stats.by_client[client] ?? {}
      byClient[grantType] = (byClient[grantType] ?? 0) + 1
      this.stats.by_client[client] = byClient
    }
  }

  /**
   * Consumes the faults matching a token request: every matching delay-only fault, and the first
   * matching fault that answers (status, error, body or reset). Returns the summed delay and that
   * answering fault, if any.
   */
  takeFaults(match: { grantType: string; tenant: string; clientId: string | undefined }): {
    delayMs: number
    answer: Fault | undefined
  } {
    let delayMs = 0
    let answer: Fault | undefined
    for (const fault of this.faults) {
      if (fault.count <= 0) continue
      if (fault.grantType !== undefined && fault.grantType !== match.grantType) continue
      if (fault.tenant !== undefined && fault.tenant.toLowerCase() !== match.tenant) continue
      if (fault.clientId !== undefined && fault.clientId.toLowerCase() !== match.clientId?.toLowerCase())
        continue
      const answers = isAnsweringFault(fault)
      if (answers && answer) continue
      fault.count -= 1
      delayMs += fault.delayMs ?? 0
      if (answers) answer = fault
    }
    this.faults = this.faults.filter((f) => f.count > 0)
    return { delayMs, answer }
  }

  private sweep(): void {
    const now = this.now()
    for (const [id, flow] of this.pending) if (flow.expiresAt < now) this.pending.delete(id)
    for (const [id, session] of this.sessions) if (session.expiresAt <= now) this.sessions.delete(id)
    for (const [code, rec] of this.codes) if (rec.expiresAt + CODE_LIFETIME_MS < now) this.codes.delete(code)
    for (const [code, rec] of this.deviceCodes) {
      if (rec.expiresAt + DEVICE_CODE_LIFETIME_MS < now) {
        this.deviceCodes.delete(code)
        this.userCodes.delete(rec.userCode)
      }
    }
  }
}

export function isAnsweringFault(fault: Fault): boolean {
  return (
    fault.status !== undefined ||
    fault.error !== undefined ||
    fault.body !== undefined ||
    fault.reset === true
  )
}
