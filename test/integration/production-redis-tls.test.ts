// `rediss://` with an ACL user: a redis-server with a TLS port (a throwaway CA and certificate made
// with openssl) and a `broker` ACL user; the built broker connects through it, its certificate
// trusted through NODE_EXTRA_CA_CERTS, as an operator with a private CA would run it. Credentials
// work in the URL and through REDIS_USERNAME / REDIS_PASSWORD; wrong ones leave the broker alive
// but not ready.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningEmulator, startEmulator } from '../../emulator/server.js'
import type { Env } from '../../src/config.js'
import {
  type BrokerProcess,
  consentOverHttp,
  ensureBuilt,
  findFreePort,
  productionEnv,
  spawnBroker,
} from '../support/broker-process.js'
import { type RedisServerHandle, startRedisServer } from '../support/redis-server.js'
import { XsoarClient } from '../support/xsoar-client.js'

const run = promisify(execFile)
const BROKER_PASSWORD = randomBytes(12).toString('hex')
const ADMIN_PASSWORD = randomBytes(12).toString('hex')

let certDir: string
let redis: RedisServerHandle
let tlsPort: number
let emulator: RunningEmulator
const brokers: BrokerProcess[] = []

async function makeCertificates(dir: string): Promise<void> {
  const openssl = (...args: string[]) => run('openssl', args, { cwd: dir, timeout: 30_000 })
  await openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=consent-broker test CA',
  )
  await openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
    '-subj',
    '/CN=127.0.0.1',
  )
  await writeFile(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  await openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '1',
    '-extfile',
    'ext.cnf',
  )
}

beforeAll(async () => {
  await ensureBuilt()
  certDir = await mkdtemp(join(tmpdir(), 'consent-broker-tls-'))
  await makeCertificates(certDir)
  tlsPort = await findFreePort()
  // The plain port stays open for the harness's readiness check (it authenticates as `default`).
  redis = await startRedisServer({
    password: ADMIN_PASSWORD,
    args: [
      '--requirepass',
      ADMIN_PASSWORD,
      '--user',
      'broker',
      'on',
      `>${BROKER_PASSWORD}`,
      '~*',
      '&*',
      '+@all',
      '--tls-port',
      String(tlsPort),
      '--tls-cert-file',
      join(certDir, 'server.pem'),
      '--tls-key-file',
      join(certDir, 'server.key'),
      '--tls-ca-cert-file',
      join(certDir, 'ca.pem'),
      '--tls-auth-clients',
      'no',
    ],
  })
  emulator = await startEmulator({ port: 0 })
}, 120_000)

afterAll(async () => {
  await Promise.all(brokers.map((broker) => broker.stop()))
  await emulator?.close()
  await redis?.destroy()
  if (certDir !== undefined) await rm(certDir, { recursive: true, force: true })
})

async function brokerWith(redisEnv: Env, waitReady: true | 'listening' = true): Promise<BrokerProcess> {
  const broker = await spawnBroker({
    env: (port) => ({
      ...productionEnv({ port, redisUrl: '', authorityUrl: emulator.url, env: redisEnv }),
      NODE_EXTRA_CA_CERTS: join(certDir, 'ca.pem'),
    }),
    waitReady,
  })
  brokers.push(broker)
  return broker
}

describe('Redis over TLS with an ACL user', () => {
  it('rediss:// with the user and password in the URL: ready, consents, issues tokens', async () => {
    const broker = await brokerWith({ REDIS_URL: `rediss://broker:${BROKER_PASSWORD}@127.0.0.1:${tlsPort}` })
    const ready = await fetch(`${broker.url}/readyz`)
    expect(ready.status).toBe(200)
    const values = await consentOverHttp(broker.url, {
      slug: 'ms-graph-mail',
      username: 'admin@contoso.example',
    })
    const answer = await new XsoarClient({ ...values, appName: 'ms-graph-mail' }).getAccessToken()
    expect(answer.status, answer.body).toBe(200)
    // The broker's connection is the ACL user's, over TLS.
    const clients = await run('redis-cli', [
      '-p',
      String(redis.port),
      '--no-auth-warning',
      '-a',
      ADMIN_PASSWORD,
      'CLIENT',
      'LIST',
    ])
    const brokerLines = clients.stdout.split('\n').filter((line) => line.includes('name=consent-broker'))
    expect(brokerLines.length).toBeGreaterThan(0)
    for (const line of brokerLines) expect(line).toContain('user=broker')
  })

  it('credentials from REDIS_USERNAME and REDIS_PASSWORD', async () => {
    const broker = await brokerWith({
      REDIS_URL: `rediss://127.0.0.1:${tlsPort}`,
      REDIS_USERNAME: 'broker',
      REDIS_PASSWORD: BROKER_PASSWORD,
    })
    expect((await fetch(`${broker.url}/readyz`)).status).toBe(200)
  })

  it('a wrong password: alive, not ready, and the password is not logged', async () => {
    const wrong = `wrong-${randomBytes(8).toString('hex')}`
    const broker = await brokerWith(
      { REDIS_URL: `rediss://broker:${wrong}@127.0.0.1:${tlsPort}` },
      'listening',
    )
    expect((await fetch(`${broker.url}/healthz`)).status).toBe(200)
    expect((await fetch(`${broker.url}/readyz`)).status).toBe(503)
    expect(broker.stdout.join('\n') + broker.stderr()).not.toContain(wrong)
  })
})
