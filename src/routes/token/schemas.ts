// JSON schemas of POST /obtain-token: its body and the responses of the route itself (the HTTP
// layer's own, 408, 413, 415, 431…, are added to the OpenAPI document by routes/openapi-responses.ts).
import { errorBodySchema } from '../../errors.js'

export const obtainTokenBodySchema = {
  type: 'object',
  required: ['app_name', 'registration_id', 'encrypted_token'],
  // Unknown fields are ignored (never read), not rejected: clients may add some.
  properties: {
    app_name: { type: 'string', minLength: 1, maxLength: 64 },
    registration_id: { type: 'string', minLength: 1, maxLength: 128 },
    encrypted_token: { type: 'string', minLength: 1, maxLength: 8192 },
    scope: { type: ['string', 'null'], maxLength: 1024 },
    resource: { type: ['string', 'null'], maxLength: 1024 },
  },
} as const

export const obtainTokenSuccessSchema = {
  type: 'object',
  required: ['access_token', 'token_type', 'expires_in', 'scope', 'refresh_token'],
  additionalProperties: false,
  properties: {
    access_token: { type: 'string' },
    token_type: { type: 'string', enum: ['Bearer'] },
    /** A JSON number: the XSOAR client crashes on a string. */
    expires_in: { type: 'integer', minimum: 0 },
    scope: { type: 'string' },
    /** The registration's Token, so clients that echo it back keep working. */
    refresh_token: { type: 'string' },
  },
} as const

export const obtainTokenResponseSchemas = {
  200: obtainTokenSuccessSchema,
  400: errorBodySchema,
  401: errorBodySchema,
  429: errorBodySchema,
  500: errorBodySchema,
  502: errorBodySchema,
  503: errorBodySchema,
  504: errorBodySchema,
} as const
