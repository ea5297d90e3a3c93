// The benchmark targets, built but not listening: bench/server.ts serves them (one per process, for
// `npm run bench`), bench/hit-cost.ts drives them in process with `inject` (CPU per request).
//   bare    – Fastify with the broker's logger (createLogger) and one POST JSON route (body and response
//             schemas, an answer of the size of a token response): the framework's floor
//   floor   – the bare route plus only the work every cache hit must do, written as directly as
//             possible: AES-GCM-open the request's encrypted_token under the registration's Key, one
//             Redis call (auto-pipelined ioredis, one Lua script: replay claim SET NX PX, the
//             per-registration and per-IP counters), and the one completion log line per request.
//             No checks beyond those, no metrics, no security headers: what no implementation
//             making one Redis call per request can go below on this machine
//   broker  – the real broker (buildApp, Redis store, Entra identity provider at the emulator)

import { createDecipheriv } from 'node:crypto'
import Fastify, { type FastifyInstance, LogController } from 'fastify'
import type { DestinationStream } from 'pino'
import { buildApp } from '../src/app.js'
import { type Env, loadConfig } from '../src/config.js'
import { createEntraIdentityProvider } from '../src/entra/identity-provider.js'
import { createLogger, logRequestCompleted } from '../src/logger.js'
import { createStoreFromConfig } from '../src/store/index.js'
import { createRedisConnection } from '../src/store/redis-connection.js'

/** What a target is: its mode, the broker's environment, the log level, floor's Key. */
export interface Start {
  mode: 'bare' | 'broker' | 'floor'
  env: Env
  logLevel: string
  /** floor: the registration's Key (standard base64). */
  key?: string
}

/** floor's one Redis call: the replay claim and both fixed-window counters. */
const FLOOR_SCRIPT = `
local fresh = redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'NX')
local reg = redis.call('INCR', KEYS[2])
if reg == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
local ip = redis.call('INCR', KEYS[3])
if ip == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[2]) end
return {fresh and 1 or 0, reg, ip}
`

/** Builds a target (not listening). `destination`: where its log lines go (default stdout). */
export async function buildTarget(
  { mode, env, logLevel, key }: Start,
  destination?: DestinationStream,
): Promise<FastifyInstance> {
  // Every target logs through the same logger (src/logger.ts) to the same place.
  const logger = createLogger(logLevel, destination)
  if (mode === 'bare' || mode === 'floor') {
    // Request logging off the way app.ts turns it off (the top-level option is deprecated).
    const app = Fastify({
      loggerInstance: logger,
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: 16 * 1024,
    })
    const token = `eyJ${'x'.repeat(1400)}`
    const required =
      mode === 'floor' ? await floorWork(app as unknown as FastifyInstance, env, key) : undefined
    app.post(
      '/json',
      {
        schema: {
          body: {
            type: 'object',
            required: ['app_name', 'registration_id', 'encrypted_token'],
            properties: {
              app_name: { type: 'string' },
              registration_id: { type: 'string' },
              encrypted_token: { type: 'string' },
              scope: { type: ['string', 'null'] },
              resource: { type: ['string', 'null'] },
            },
          },
          response: {
            200: {
              type: 'object',
              properties: {
                access_token: { type: 'string' },
                token_type: { type: 'string' },
                expires_in: { type: 'integer' },
                scope: { type: 'string' },
                refresh_token: { type: 'string' },
              },
            },
            401: { type: 'object', properties: { error: { type: 'string' } } },
          },
        },
      },
      async (request, reply) => {
        reply.header('cache-control', 'no-store')
        const body = request.body as { registration_id: string; encrypted_token: string }
        if (required !== undefined && !(await required(body, request.ip))) {
          return reply.code(401).send({ error: 'replayed or bad token' })
        }
        return {
          access_token: token,
          token_type: 'Bearer',
          expires_in: 3599,
          scope: 'https://graph.microsoft.com/.default',
          refresh_token: body.registration_id,
        }
      },
    )
    return app as unknown as FastifyInstance
  }
  const config = loadConfig({ ...env, LOG_LEVEL: logLevel })
  // The store exactly as main.ts builds it (connection settings, auto-pipelining included).
  const store = createStoreFromConfig(config)
  const idp = createEntraIdentityProvider(config)
  return buildApp(config, { store, idp, logger })
}

/** floor: the completion line, and the per-request check (decrypt, one Redis call). */
async function floorWork(app: FastifyInstance, env: Env, key: string | undefined) {
  if (key === undefined || env.REDIS_URL === undefined) throw new Error('floor needs the Key and REDIS_URL')
  const secret = Buffer.from(key, 'base64')
  const redis = createRedisConnection({ url: env.REDIS_URL })
  const sha = (await redis.script('LOAD', FLOOR_SCRIPT)) as string
  const prefix = `${env.REDIS_KEY_PREFIX ?? ''}floor:`
  // The broker's own completion line.
  app.addHook('onResponse', logRequestCompleted)
  return async (body: { registration_id: string; encrypted_token: string }, ip: string) => {
    const raw = Buffer.from(body.encrypted_token, 'base64')
    if (raw.length < 28) return false
    const decipher = createDecipheriv('aes-256-gcm', secret, raw.subarray(0, 12), { authTagLength: 16 })
    decipher.setAuthTag(raw.subarray(raw.length - 16))
    try {
      Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()])
    } catch {
      return false
    }
    const marker = raw.subarray(raw.length - 16).toString('base64url')
    const [fresh] = (await redis.evalsha(
      sha,
      3,
      `${prefix}seen:${body.registration_id}:${marker}`,
      `${prefix}reg:${body.registration_id}`,
      `${prefix}ip:${ip}`,
      '601000',
      '60000',
    )) as [number, number, number]
    return fresh === 1
  }
}
