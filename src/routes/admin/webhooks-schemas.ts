// JSON schemas of the webhook endpoint API (/admin/api/webhooks): what it accepts and answers.
import { WEBHOOK_EVENT_TYPES } from '../../services/webhooks/events.js'

const isoString = { type: 'string', description: 'ISO 8601 timestamp' } as const

export const ENDPOINT_ID_PATTERN = '^ep_[0-9a-f]{24}$'
export const MESSAGE_ID_PATTERN = '^[0-9a-f-]{36}$'

export const endpointIdParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', pattern: ENDPOINT_ID_PATTERN } },
} as const

export const redeliverParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'messageId'],
  properties: {
    id: { type: 'string', pattern: ENDPOINT_ID_PATTERN },
    messageId: { type: 'string', pattern: MESSAGE_ID_PATTERN },
  },
} as const

export const eventTypeSchema = { type: 'string', enum: [...WEBHOOK_EVENT_TYPES] } as const

export const addEndpointBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: {
      type: 'string',
      minLength: 8,
      maxLength: 2000,
      description: 'https URL (http only for a loopback host with UNSAFE_ALLOW_HTTP=true)',
    },
    events: {
      type: 'array',
      items: eventTypeSchema,
      maxItems: WEBHOOK_EVENT_TYPES.length,
      description: 'Event types to deliver; absent or empty: every type',
    },
  },
} as const

export const endpointSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'url', 'events', 'createdAt', 'createdBy'],
  properties: {
    id: { type: 'string' },
    url: { type: 'string' },
    events: { type: 'array', items: { type: 'string' } },
    createdAt: isoString,
    createdBy: { type: 'string' },
  },
} as const

export const deliverySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['messageId', 'endpointId', 'type', 'status', 'attempts', 'createdAt', 'attemptTimes'],
  properties: {
    messageId: { type: 'string', description: 'the CloudEvent id and webhook-id header' },
    endpointId: { type: 'string' },
    type: { type: 'string' },
    status: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
    attempts: { type: 'integer' },
    createdAt: isoString,
    nextAttemptAt: isoString,
    attemptTimes: { type: 'array', items: isoString },
    lastStatusCode: { type: 'integer' },
    lastError: { type: 'string' },
  },
} as const
