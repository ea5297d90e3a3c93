// JSON schemas of the operator API. Response schemas list every property explicitly and forbid
// others: fast-json-stringify writes declared properties only, so a secret can't reach a response
// even if a service returned one by mistake.
import { CLOUD_NAMES } from '../../clouds.js'
import { errorBodySchema } from '../../errors.js'
import { GUID_PATTERN } from '../../guid.js'
import { ONE_LINE_TEXT_PATTERN } from '../../one-line-text.js'
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../../store/pagination.js'
import { REGISTRATION_STATUSES } from '../../store/types.js'
import { TENANT_LABEL_MAX } from '../../store/validation.js'

/** Registration ids are UUIDs; accept any id-shaped string and let the store say "not found". */
export const REGISTRATION_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'
export const TENANT_ID_PATTERN = GUID_PATTERN
export const APP_SLUG_PATTERN = '^[a-z0-9]+(-[a-z0-9]+)*$'
/** An audit cursor (`<ms>-<seq>`, as a page gave it). */
export const AUDIT_CURSOR_PATTERN = '^\\d+-\\d+$'
export const REASON_MAX = 500
/**
 * A count the console puts in its own redirect (`count` after a tenant revocation): decimal digits
 * only, at most 9 — an integer schema would coerce `0x10`, `1e3` and `1e400` (Infinity) too — which
 * is far past any tenant's registrations.
 */
export const DECIMAL_COUNT_PATTERN = '^(?:0|[1-9][0-9]{0,8})$'

/** An app slug in a query, body or path. */
export const appSlugSchema = { type: 'string', pattern: APP_SLUG_PATTERN, maxLength: 64 } as const

/** `limit` of a paged listing: the store's own default and maximum page size. */
export const pageLimitSchema = {
  type: 'integer',
  minimum: 1,
  maximum: MAX_PAGE_SIZE,
  default: DEFAULT_PAGE_SIZE,
} as const

/**
 * A page of a listing: its `items` and, when more are left, `nextCursor` (its description says
 * what the cursor is for this listing).
 */
export function pageSchema<Item extends object>(items: Item, nextCursorDescription: string) {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['items'],
    properties: {
      items: { type: 'array', items },
      nextCursor: { type: 'string', description: nextCursorDescription },
    },
  } as const
}

export const registrationStatusSchema = { type: 'string', enum: [...REGISTRATION_STATUSES] } as const

export const emptyQuery = { type: 'object', additionalProperties: false, properties: {} } as const

export const registrationIdParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', pattern: REGISTRATION_ID_PATTERN } },
} as const

export const tenantIdParams = {
  type: 'object',
  additionalProperties: false,
  required: ['tenantId'],
  properties: { tenantId: { type: 'string', pattern: TENANT_ID_PATTERN } },
} as const

/**
 * A revocation reason: one-line text (src/one-line-text.ts: not blank, no control characters, line
 * separators, bidi controls or lone surrogates); it is shown in terminals by the CLI and sent to integrations in the
 * `revoked` error.
 */
export const reasonSchema = {
  type: 'string',
  minLength: 1,
  maxLength: REASON_MAX,
  pattern: ONE_LINE_TEXT_PATTERN,
  description: 'why, in one line (recorded and shown to the integration)',
} as const

/** A browser form that only carries the session's CSRF token (sign-out, key rotation). */
export const csrfFormSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { csrf: { type: 'string' } },
} as const

/** A browser revocation form: the session's CSRF token and the reason. */
export const revokeFormSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['reason'],
  properties: { csrf: { type: 'string' }, reason: reasonSchema },
} as const

const isoString = { type: 'string', description: 'ISO 8601 timestamp' } as const

export const statusDetailSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['code', 'at'],
  properties: {
    code: {
      type: 'string',
      description: '`operator_revoked`, `tenant_admin_revoked`, `invalid_grant`, `AADSTS…`',
    },
    message: { type: 'string' },
    at: isoString,
    by: { type: 'string', description: 'operator or tenant admin who revoked' },
    reason: { type: 'string' },
  },
} as const

export const registrationSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'id',
    'app',
    'cloud',
    'tenantId',
    'kind',
    'status',
    'createdAt',
    'updatedAt',
    'consentedAt',
    'version',
  ],
  properties: {
    id: { type: 'string' },
    app: { type: 'string' },
    cloud: { type: 'string', enum: [...CLOUD_NAMES] },
    tenantId: { type: 'string' },
    kind: { type: 'string', enum: ['admin', 'delegated'] },
    userOid: { type: 'string' },
    userName: { type: 'string', description: 'the UPN of who consented (the same as `consentedBy.upn`)' },
    userDisplayName: { type: 'string', description: 'the display name of who consented' },
    consentedBy: {
      type: 'object',
      additionalProperties: false,
      description:
        'who consented (the user, or the administrator of an admin consent), from the verified ID token; absent on registrations made before it was recorded',
      properties: {
        upn: { type: 'string', description: '`preferred_username` (else `upn`)' },
        name: { type: 'string', description: 'the `name` claim' },
      },
    },
    tenantLabel: { type: 'string', description: "the tenant's label, when it has one" },
    ownClientId: {
      type: 'string',
      description: "the tenant's own app registration (client id) the registration uses, if any",
    },
    status: registrationStatusSchema,
    statusDetail: statusDetailSchema,
    createdAt: isoString,
    updatedAt: isoString,
    consentedAt: isoString,
    version: { type: 'integer' },
    lastIssuedAt: isoString,
    lastClient: { type: 'string' },
    lastRefreshAt: isoString,
  },
} as const

const countsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['active', 'needs_consent', 'revoked', 'total'],
  properties: {
    active: { type: 'integer' },
    needs_consent: { type: 'integer' },
    revoked: { type: 'integer' },
    total: { type: 'integer' },
  },
} as const

export const tenantSummarySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['tenantId', 'apps', 'clouds', 'registrations'],
  properties: {
    tenantId: { type: 'string' },
    label: {
      type: 'string',
      description: "the tenant's label: the first consenting user's domain, until an operator sets another",
    },
    apps: { type: 'array', items: { type: 'string' } },
    clouds: { type: 'array', items: { type: 'string' } },
    registrations: countsSchema,
    lastConsentAt: isoString,
  },
} as const

export const auditRecordSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'type', 'actor', 'at'],
  properties: {
    id: { type: 'string', description: 'stream id; pass it as `cursor` to read what follows' },
    type: { type: 'string' },
    actor: { type: 'string' },
    at: isoString,
    tenantId: { type: 'string' },
    app: { type: 'string' },
    registrationId: { type: 'string' },
    detail: {
      type: 'object',
      additionalProperties: { type: ['string', 'number', 'boolean'] },
    },
  },
} as const

export const rotationStatusSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'state',
    'keyId',
    'currentKeyId',
    'oldKeyIds',
    'scanned',
    'resealed',
    'unchanged',
    'failed',
    'failedIds',
  ],
  properties: {
    state: { type: 'string', enum: ['idle', 'running', 'interrupted', 'completed', 'failed'] },
    keyId: { type: 'string' },
    currentKeyId: { type: 'string' },
    oldKeyIds: { type: 'array', items: { type: 'string' } },
    startedAt: isoString,
    startedBy: { type: 'string' },
    updatedAt: isoString,
    completedAt: isoString,
    scanned: { type: 'integer' },
    resealed: { type: 'integer' },
    unchanged: { type: 'integer' },
    failed: { type: 'integer' },
    failedIds: { type: 'array', items: { type: 'string' } },
    webhookSecretsResealed: { type: 'integer' },
    error: { type: 'string' },
  },
} as const

export const reasonBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['reason'],
  properties: {
    reason: reasonSchema,
  },
} as const

export const tenantRevokeBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['reason'],
  properties: {
    reason: reasonSchema,
    app: appSlugSchema,
  },
} as const

/**
 * The longest label field taken before trimming. The label's rule (1 to TENANT_LABEL_MAX characters
 * once trimmed, one-line text) is applied by services/tenant-labels.ts alone, since a schema only
 * sees the untrimmed text; this bound lets padding through while refusing absurd input early.
 */
export const TENANT_LABEL_INPUT_MAX = 1000

/** A tenant label as sent: the service trims and checks it (`invalid_request`). */
export const tenantLabelSchema = {
  type: 'string',
  maxLength: TENANT_LABEL_INPUT_MAX,
  description: `a short name operators know the tenant by, e.g. \`Contoso (EU)\`: 1–${TENANT_LABEL_MAX} characters once trimmed, one line (no control characters, line separators, bidi controls or lone surrogates)`,
} as const

export const tenantLabelBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['label'],
  properties: { label: tenantLabelSchema },
} as const

/**
 * The failures every operator route answers itself. 401 and 429 (the operator token), 413, 415 and
 * the HTTP layer's are added to the OpenAPI document by routes/openapi-responses.ts.
 */
export const errorResponses = {
  400: errorBodySchema,
  500: errorBodySchema,
  /** `store_unavailable` (Redis unreachable or not answering), with `Retry-After`. */
  503: errorBodySchema,
} as const
