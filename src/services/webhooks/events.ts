// Outbox entries → CloudEvents 1.0 (structured JSON, `cloudevents` package). An event carries the
// tenant, app and registration it is about and, for `needs_consent`, the plain-language reason
// (consent-reasons.ts), what the tenant's admin should do and the re-consent link. Never a secret:
// the facts come from the record's non-secret fields only.
import { CloudEvent } from 'cloudevents'
import { type Config, findApp } from '../../config.js'
import type { OutboxEntry } from '../../store/webhook-types.js'
import { consentReason } from '../consent-reasons.js'
import { type ExpiryState, expiryAction } from '../credential-expiry.js'

/** Every event type an endpoint may subscribe to. */
export const WEBHOOK_EVENT_TYPES = [
  'registration.created',
  'registration.needs_consent',
  'registration.renewed',
  'registration.revoked',
  'upstream.throttled',
  'upstream.recovered',
  'app_credential.expiring',
] as const

/** One event type. */
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number]

/** The JSON data of a notification (strings, numbers and nulls only). */
export type EventData = Record<string, string | number | null>

function statusDetail(facts: Readonly<Record<string, string>>): Record<string, string> {
  try {
    const parsed = JSON.parse(facts.statusDetail ?? '{}') as unknown
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, string>) : {}
  } catch {
    return {}
  }
}

/** The data of a registration event: who it concerns, and what happened in plain words. */
function registrationData(config: Config, entry: OutboxEntry): EventData {
  const f = entry.facts
  const app = f.app ?? ''
  const consentUrl = `${config.publicUrl}/${app}`
  const base: EventData = {
    registrationId: f.id ?? '',
    app,
    appName: findApp(config, app)?.displayName ?? app,
    cloud: f.cloud ?? '',
    tenantId: f.tenantId ?? '',
    kind: f.kind ?? '',
    userName: f.userName ?? null,
    status: f.status ?? '',
    previousStatus: f.previousStatus ?? null,
  }
  const detail = statusDetail(f)
  const who = f.kind === 'admin' ? 'a tenant administrator' : 'the user who consented'
  switch (entry.kind) {
    case 'registration.needs_consent': {
      const reason = consentReason(detail.code)
      return {
        ...base,
        code: reason.code,
        reasonFamily: reason.family,
        reason: reason.reason,
        action: `${who}: ${reason.action}`,
        consentUrl,
        upstreamMessage: detail.message ?? null,
      }
    }
    case 'registration.revoked':
      return {
        ...base,
        code: detail.code ?? null,
        revokedBy: detail.by ?? null,
        reason: detail.reason ?? detail.message ?? null,
        consentUrl,
      }
    case 'registration.renewed':
      return { ...base, consentedAt: f.consentedAt ?? null }
    default:
      return { ...base, createdAt: f.createdAt ?? null }
  }
}

/** The data of an app credential event: which credential, when it expires, what to do. */
function credentialData(config: Config, entry: OutboxEntry): EventData {
  const f = entry.facts
  const app = f.app ?? ''
  const kind = (f.credentialKind ?? 'secret') as Parameters<typeof expiryAction>[1]
  return {
    app,
    appName: findApp(config, app)?.displayName ?? app,
    cloud: f.cloud ?? '',
    credential: f.credential ?? '',
    credentialKind: kind,
    thumbprint: f.thumbprint ?? null,
    expiresAt: f.expiresAt ?? '',
    daysLeft: Number(f.daysLeft ?? '0'),
    state: f.state ?? '',
    warningDays: Number(f.warningDays ?? '0'),
    urgentDays: Number(f.urgentDays ?? '0'),
    action: expiryAction((f.state ?? 'expiring') as ExpiryState, kind),
  }
}

/** The CloudEvent of one outbox entry (its id is the entry's: the same on every delivery). */
export function toCloudEvent(config: Config, entry: OutboxEntry): CloudEvent<EventData> {
  if (entry.kind === 'app_credential.expiring') {
    const f = entry.facts
    return new CloudEvent<EventData>({
      specversion: '1.0',
      id: entry.id,
      type: entry.kind,
      source: `${config.publicUrl}/`,
      subject: `${f.app}/${f.cloud}/${f.credential}`,
      time: entry.at,
      datacontenttype: 'application/json',
      data: credentialData(config, entry),
    })
  }
  const upstream = entry.kind === 'upstream.throttled' || entry.kind === 'upstream.recovered'
  const data: EventData = upstream
    ? {
        app: entry.facts.app ?? '',
        cloud: entry.facts.cloud ?? '',
        tenantId: entry.facts.tenantId ?? '',
        ...(entry.facts.retryAfterSeconds === undefined
          ? {}
          : { retryAfterSeconds: Number(entry.facts.retryAfterSeconds) }),
      }
    : registrationData(config, entry)
  const subject = upstream ? `${entry.facts.app}/${entry.facts.tenantId}` : (entry.facts.id ?? '')
  return new CloudEvent<EventData>({
    specversion: '1.0',
    id: entry.id,
    type: entry.kind,
    source: `${config.publicUrl}/`,
    subject,
    time: entry.at,
    datacontenttype: 'application/json',
    data,
  })
}

/** The signed body: the structured-mode JSON of the event. */
export function eventBody(event: CloudEvent<EventData>): string {
  return JSON.stringify(event.toJSON())
}
