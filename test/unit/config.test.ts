// Production configuration: every problem is reported by name, in one go, and nothing falls back
// to a demo value (no memory store, no key, no client secret, no http) unless explicitly allowed.
import { createHash, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { ConfigError, type Env, loadConfig } from '../../src/config.js'
import { authenticateOperator } from '../../src/services/operator-auth.js'
import { DEMO_APPS_FILE, DEMO_CLIENT_SECRET_ENV, randomMasterKeys } from '../support/config.js'

/** A complete, valid production environment (Redis, https, demo apps file with its secrets). */
function productionEnv(overrides: Env = {}): Env {
  return {
    PUBLIC_URL: 'https://consent.example.com',
    REDIS_URL: 'redis://redis.internal:6379',
    MASTER_KEYS: randomMasterKeys(),
    COOKIE_SECRET: randomBytes(32).toString('hex'),
    APPS_FILE: DEMO_APPS_FILE,
    ...DEMO_CLIENT_SECRET_ENV,
    ...overrides,
  }
}

function problemsOf(env: Env, options?: Parameters<typeof loadConfig>[1]): readonly string[] {
  try {
    loadConfig(env, options)
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  throw new Error('expected a ConfigError, but the configuration loaded')
}

/** An apps file served from memory through the readFile hook. */
function appsFile(apps: unknown[]): { options: Parameters<typeof loadConfig>[1]; env: Env } {
  const files: Record<string, string> = { '/etc/broker/apps.json': JSON.stringify({ apps }) }
  return {
    options: {
      readFile: (path) => {
        const content = files[path]
        if (content === undefined) throw new Error(`ENOENT: ${path}`)
        return content
      },
    },
    env: { APPS_FILE: '/etc/broker/apps.json' },
  }
}

const oneApp = (clouds: Record<string, unknown>) => ({
  slug: 'graph-mail',
  displayName: 'Mail',
  description: 'Mail',
  consent: 'admin',
  permissions: [],
  defaultScope: '{graph}/.default',
  clouds,
})

describe('loadConfig in production', () => {
  it('loads a complete production environment', () => {
    const config = loadConfig(productionEnv())
    expect(config.publicUrl).toBe('https://consent.example.com')
    expect(config.redis?.url).toBe('redis://redis.internal:6379')
    expect(config.secureCookies).toBe(true)
    expect(config.apps.map((a) => a.slug)).toContain('ms-graph-mail')
    expect(config.apps.find((a) => a.slug === 'ms-graph-mail')?.clouds.global?.credentials).toEqual([
      {
        kind: 'secret',
        name: 'secret:MS_GRAPH_MAIL_CLIENT_SECRET',
        secret: 'demo-secret-ms-graph-mail',
        expiresAt: undefined,
      },
    ])
    expect(Object.isFrozen(config)).toBe(true)
    expect(Object.isFrozen(config.apps[0])).toBe(true)
  })

  it('with nothing set, lists every required setting by name and applies no demo default', () => {
    const problems = problemsOf({})
    for (const name of ['PUBLIC_URL', 'REDIS_URL', 'MASTER_KEYS', 'COOKIE_SECRET', 'APPS_FILE']) {
      expect(
        problems.some((p) => p.startsWith(`${name}:`)),
        `${name} in ${problems.join(' | ')}`,
      ).toBe(true)
    }
    // The memory store is never a silent fallback: its problem names the explicit opt-in.
    expect(problems.find((p) => p.startsWith('REDIS_URL:'))).toMatch(/UNSAFE_MEMORY_STORE=true/)
  })

  it('refuses an urgent credential-expiry window not inside the warning window', () => {
    expect(
      problemsOf(productionEnv({ CREDENTIAL_EXPIRY_WARNING_DAYS: '7', CREDENTIAL_EXPIRY_URGENT_DAYS: '7' })),
    ).toEqual(['CREDENTIAL_EXPIRY_URGENT_DAYS: must be less than CREDENTIAL_EXPIRY_WARNING_DAYS'])
    expect(problemsOf(productionEnv({ CREDENTIAL_EXPIRY_CHECK_SECONDS: '0' }))[0]).toMatch(
      /^CREDENTIAL_EXPIRY_CHECK_SECONDS/,
    )
    const config = loadConfig(productionEnv({ CREDENTIAL_EXPIRY_URGENT_DAYS: '3' }))
    expect(config.credentials).toMatchObject({
      expiryWarningMs: 30 * 86_400_000,
      expiryUrgentMs: 3 * 86_400_000,
    })
  })

  it('the ConfigError message lists each problem on its own line', () => {
    try {
      loadConfig({})
      expect.unreachable()
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError)
      const { message, problems } = error as ConfigError
      expect(problems.length).toBeGreaterThanOrEqual(5)
      for (const problem of problems) expect(message).toContain(`  - ${problem}`)
    }
  })

  it('rejects a missing or malformed master key, naming MASTER_KEYS', () => {
    const malformed = [
      'k1',
      'k1:not-base64!!',
      `k1:${randomBytes(16).toString('base64')}`,
      `k1:${randomBytes(32).toString('base64url')}x`,
      `k1:${randomBytes(32).toString('base64')},k1:${randomBytes(32).toString('base64')}`,
      `bad id!:${randomBytes(32).toString('base64')}`,
    ]
    for (const value of malformed) {
      const problems = problemsOf(productionEnv({ MASTER_KEYS: value }))
      expect(problems, value).toHaveLength(1)
      expect(problems[0], value).toMatch(/^MASTER_KEYS: /)
    }
    expect(problemsOf(productionEnv({ MASTER_KEYS: '' }))[0]).toMatch(/^MASTER_KEYS: required/)
  })

  it('accepts a key ring with several keys, the first sealing', () => {
    const newest = randomBytes(32).toString('base64')
    const config = loadConfig(
      productionEnv({ MASTER_KEYS: `k2:${newest}, k1:${randomBytes(32).toString('base64')}` }),
    )
    expect(config.keyRing.current.id).toBe('k2')
    expect(config.keyRing.ids).toEqual(['k2', 'k1'])
  })

  it('requires https for PUBLIC_URL unless loopback or UNSAFE_ALLOW_HTTP=true', () => {
    expect(problemsOf(productionEnv({ PUBLIC_URL: 'http://consent.example.com' }))).toEqual([
      expect.stringMatching(/^PUBLIC_URL: must be https/),
    ])
    expect(
      loadConfig(productionEnv({ PUBLIC_URL: 'http://consent.example.com', UNSAFE_ALLOW_HTTP: 'true' }))
        .publicUrl,
    ).toBe('http://consent.example.com')
    const loopback = loadConfig(productionEnv({ PUBLIC_URL: 'http://127.0.0.1:3000/' }))
    expect(loopback.publicUrl).toBe('http://127.0.0.1:3000')
    expect(loopback.secureCookies).toBe(false)
    for (const bad of ['ftp://consent.example.com', 'https://consent.example.com/?a=1', 'not a url']) {
      expect(problemsOf(productionEnv({ PUBLIC_URL: bad }))[0], bad).toMatch(/^PUBLIC_URL: /)
    }
  })

  it('requires https authority overrides unless loopback or allowed', () => {
    expect(problemsOf(productionEnv({ AUTHORITY_URL_GLOBAL: 'http://idp.internal' }))).toEqual([
      expect.stringMatching(/^AUTHORITY_URL_GLOBAL: must be https/),
    ])
    expect(
      loadConfig(productionEnv({ AUTHORITY_URL_USGOV: 'http://127.0.0.1:4011/' })).authorities.usgov,
    ).toBe('http://127.0.0.1:4011')
  })

  it('calls Resource Manager at the cloud ARM host unless RESOURCE_MANAGER_URL_<CLOUD> overrides it (https rule)', () => {
    const config = loadConfig(productionEnv({ RESOURCE_MANAGER_URL_CHINA: 'http://127.0.0.1:4012/' }))
    expect(config.resourceManagerUrls).toEqual({
      global: 'https://management.azure.com',
      usgov: 'https://management.usgovcloudapi.net',
      dod: 'https://management.usgovcloudapi.net',
      china: 'http://127.0.0.1:4012',
    })
    expect(
      problemsOf(
        productionEnv({
          RESOURCE_MANAGER_URL_GLOBAL: 'http://arm.internal',
          RESOURCE_MANAGER_URL_DOD: 'nope',
        }),
      ),
    ).toEqual([
      expect.stringMatching(/^RESOURCE_MANAGER_URL_GLOBAL: must be https/),
      'RESOURCE_MANAGER_URL_DOD: "nope" is not a URL',
    ])
  })

  it('checks every template against each cloud the app is offered in, and listSubscriptions against the ARM token', () => {
    const secret = { clientId: '0b1e6a52-7c3d-4f8e-9a10-000000000001', clientSecretEnv: 'S' }
    const { options, env } = appsFile([
      {
        ...oneApp({ global: secret, china: secret }),
        slug: 'atp',
        allowedScopes: ['{windowsatpservice}/.default', '{nosuch}/.default'],
      },
      { ...oneApp({ global: secret }), slug: 'arm-admin', listSubscriptions: true },
      {
        ...oneApp({ global: secret }),
        slug: 'arm-delegated',
        consent: 'delegated',
        defaultScope: '{management}/.default',
        consentScopes: ['{loganalytics}/Data.Read', '{management}/user_impersonation'],
        listSubscriptions: true,
      },
      { ...oneApp({ global: secret }), slug: 'no-integrations', integrations: [] },
    ])
    expect(problemsOf(productionEnv({ ...env, S: 'secret' }), options)).toEqual([
      'APPS_FILE: /apps/3/integrations must NOT have fewer than 1 items',
    ])
    const { options: valid, env: validEnv } = appsFile([
      {
        ...oneApp({ global: secret, china: secret }),
        slug: 'atp',
        allowedScopes: ['{windowsatpservice}/.default', '{nosuch}/.default'],
      },
      { ...oneApp({ global: secret }), slug: 'arm-admin', listSubscriptions: true },
      {
        ...oneApp({ global: secret }),
        slug: 'arm-delegated',
        consent: 'delegated',
        defaultScope: '{management}/.default',
        consentScopes: ['{loganalytics}/Data.Read', '{management}/user_impersonation'],
        // the pages list what the consent requests: Mail.Send is listed but never requested
        permissions: ['Data.Read', 'user_impersonation', 'Mail.Send'].map((name) => ({
          name,
          type: 'Delegated',
          description: name,
        })),
        listSubscriptions: true,
      },
    ])
    expect(problemsOf(productionEnv({ ...validEnv, S: 'secret' }), valid)).toEqual([
      'APPS_FILE: /apps/0 (atp): unknown resource placeholder {nosuch} in "{nosuch}/.default"',
      'APPS_FILE: /apps/0 (atp): {windowsatpservice} does not exist in the china cloud in "{windowsatpservice}/.default"',
      'APPS_FILE: /apps/1 (arm-admin): listSubscriptions needs defaultScope on {management}',
      'APPS_FILE: /apps/2 (arm-delegated): permission Mail.Send is listed but not in consentScopes (never requested)',
      'APPS_FILE: /apps/2 (arm-delegated): listSubscriptions needs the first consentScopes entry on {management}',
    ])
  })

  it('reads integrations and group, defaulting to none', () => {
    const secret = { clientId: '0b1e6a52-7c3d-4f8e-9a10-000000000001', clientSecretEnv: 'S' }
    const { options, env } = appsFile([
      { ...oneApp({ global: secret }), integrations: ['EWS O365'], group: 'Mail' },
      { ...oneApp({ global: secret }), slug: 'plain' },
    ])
    const config = loadConfig(productionEnv({ ...env, S: 'secret' }), options)
    expect(config.apps.map((a) => [a.integrations, a.group, a.listSubscriptions])).toEqual([
      [['EWS O365'], 'Mail', false],
      [[], undefined, false],
    ])
  })

  it('names each unset client-secret variable', () => {
    const env = productionEnv()
    const withoutSecrets: Record<string, string | undefined> = { ...env }
    for (const name of Object.keys(DEMO_CLIENT_SECRET_ENV)) delete withoutSecrets[name]
    const problems = problemsOf(withoutSecrets)
    for (const name of Object.keys(DEMO_CLIENT_SECRET_ENV)) {
      expect(
        problems.some((p) => p.startsWith(`${name}: unset`)),
        name,
      ).toBe(true)
    }
    expect(problems).toHaveLength(Object.keys(DEMO_CLIENT_SECRET_ENV).length)
    // A blank value is as good as unset.
    expect(problemsOf({ ...env, MS_GRAPH_USER_CLIENT_SECRET: '   ' })).toEqual([
      expect.stringMatching(/^MS_GRAPH_USER_CLIENT_SECRET: unset, but ms-graph-user \(global\)/),
    ])
  })

  it('rejects an app registration without a client secret', () => {
    const { options, env } = appsFile([
      oneApp({ global: { clientId: '0b1e6a52-7c3d-4f8e-9a10-000000000001' } }),
    ])
    expect(problemsOf(productionEnv(env), options)).toEqual([
      expect.stringMatching(/^APPS_FILE: \/apps\/0 \(graph-mail\): cloud global: no client secret/),
    ])
  })

  it('rejects an unreadable or empty clientSecretFile, and both secret sources at once', () => {
    const { options, env } = appsFile([
      oneApp({
        global: {
          clientId: '0b1e6a52-7c3d-4f8e-9a10-000000000001',
          clientSecretFile: '/run/secrets/missing',
        },
        usgov: {
          clientId: '0b1e6a52-7c3d-4f8e-9a10-000000000002',
          clientSecretFile: '/run/secrets/x',
          clientSecretEnv: 'X_SECRET',
        },
      }),
    ])
    const problems = problemsOf(productionEnv({ ...env, X_SECRET: 'x' }), options)
    expect(problems.some((p) => /cloud global: cannot read clientSecretFile/.test(p))).toBe(true)
    expect(
      problems.some((p) => /cloud usgov: give clientSecretEnv or clientSecretFile, not both/.test(p)),
    ).toBe(true)
  })

  it('reads a client secret from a file', () => {
    const files: Record<string, string> = {
      '/etc/broker/apps.json': JSON.stringify({
        apps: [
          oneApp({
            global: {
              clientId: '0b1e6a52-7c3d-4f8e-9a10-000000000001',
              clientSecretFile: '/run/secrets/mail',
            },
          }),
        ],
      }),
      '/run/secrets/mail': 'file-secret\n',
    }
    const config = loadConfig(productionEnv({ APPS_FILE: '/etc/broker/apps.json' }), {
      readFile: (path) => files[path] ?? '',
    })
    expect(config.apps[0]?.clouds.global?.credentials).toEqual([
      { kind: 'secret', name: 'secret:/run/secrets/mail', secret: 'file-secret', expiresAt: undefined },
    ])
  })

  it('reports an apps file that is missing or invalid', () => {
    expect(problemsOf(productionEnv({ APPS_FILE: '/nonexistent/apps.json' }))).toEqual([
      expect.stringMatching(/^APPS_FILE: cannot read \/nonexistent\/apps\.json as JSON/),
    ])
    const { options, env } = appsFile([{ slug: 'Bad Slug' }])
    const problems = problemsOf(productionEnv(env), options)
    expect(problems.length).toBeGreaterThan(0)
    for (const problem of problems) expect(problem).toMatch(/^APPS_FILE: /)
  })

  it('rejects two Redis topologies at once, and Sentinel without a master name', () => {
    expect(
      problemsOf(productionEnv({ REDIS_CLUSTER_NODES: '10.0.0.1:6379,10.0.0.2:6379' })).some((p) =>
        p.startsWith('REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES: set exactly one'),
      ),
    ).toBe(true)
    expect(
      problemsOf(productionEnv({ REDIS_URL: '', REDIS_SENTINELS: 's1:26379,s2:26379' })).some((p) =>
        p.startsWith('REDIS_SENTINEL_NAME: required'),
      ),
    ).toBe(true)
    expect(problemsOf(productionEnv({ REDIS_URL: 'http://redis:6379' }))[0]).toMatch(
      /^REDIS_URL: not a redis/,
    )
    expect(problemsOf(productionEnv({ REDIS_URL: '', REDIS_CLUSTER_NODES: 'nohost' }))[0]).toMatch(
      /^REDIS_CLUSTER_NODES: "nohost" is not host:port/,
    )
  })

  it('parses Sentinel and Cluster settings, with ACL credentials and TLS', () => {
    const sentinel = loadConfig(
      productionEnv({
        REDIS_URL: '',
        REDIS_SENTINELS: 's1:26379, [::1]:26380',
        REDIS_SENTINEL_NAME: 'mymaster',
        REDIS_SENTINEL_PASSWORD: 'sentinel-pw',
        REDIS_USERNAME: 'broker',
        REDIS_PASSWORD: 'data-pw',
        REDIS_TLS: 'true',
      }),
    )
    expect(sentinel.redis).toMatchObject({
      sentinels: [
        { host: 's1', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      sentinelName: 'mymaster',
      sentinelPassword: 'sentinel-pw',
      username: 'broker',
      password: 'data-pw',
      tls: true,
    })
    const cluster = loadConfig(productionEnv({ REDIS_URL: '', REDIS_CLUSTER_NODES: 'n1:7000,n2:7001' }))
    expect(cluster.redis?.clusterNodes).toEqual([
      { host: 'n1', port: 7000 },
      { host: 'n2', port: 7001 },
    ])
    expect(cluster.redis?.tls).toBeUndefined()
    expect(loadConfig(productionEnv({ REDIS_URL: 'rediss://u:p@redis:6380/2' })).redis?.url).toBe(
      'rediss://u:p@redis:6380/2',
    )
  })

  it('uses the memory store only when UNSAFE_MEMORY_STORE=true', () => {
    expect(loadConfig(productionEnv({ REDIS_URL: '', UNSAFE_MEMORY_STORE: 'true' })).redis).toBeUndefined()
    expect(problemsOf(productionEnv({ REDIS_URL: '', UNSAFE_MEMORY_STORE: 'false' }))[0]).toMatch(
      /^REDIS_URL: /,
    )
    expect(problemsOf(productionEnv({ UNSAFE_MEMORY_STORE: 'maybe', REDIS_URL: '' }))).toEqual(
      expect.arrayContaining([expect.stringMatching(/^UNSAFE_MEMORY_STORE: expected true or false/)]),
    )
  })

  it('checks the cookie secret, operator tokens and numbers', () => {
    expect(problemsOf(productionEnv({ COOKIE_SECRET: 'short' }))).toEqual([
      'COOKIE_SECRET: must be at least 32 characters',
    ])
    expect(problemsOf(productionEnv({ OPERATOR_TOKENS: 'alice:tooshort' }))).toEqual([
      'OPERATOR_TOKENS: token of "alice" must be at least 24 characters',
    ])
    expect(problemsOf(productionEnv({ OPERATOR_TOKEN_HASHES: 'bob:abc' }))).toEqual([
      'OPERATOR_TOKEN_HASHES: hash of "bob" is not 64 hex characters',
    ])
    // A comma inside a token: the entry splits in two, and the problem says why, echoing neither half.
    const halves = ['first-half-of-a-long-token', 'second-half-of-it']
    const comma = problemsOf(productionEnv({ OPERATOR_TOKENS: `alice:${halves.join(',')}` }))
    expect(comma).toEqual([
      'OPERATOR_TOKENS: each entry must be "name:token" (name: letters, digits, ".", "_", "-"), entries separated by commas, so a token can hold no comma',
    ])
    for (const half of halves) expect(comma.join('\n')).not.toContain(half)
    const token = 'a-long-enough-operator-token-123'
    const config = loadConfig(
      productionEnv({
        OPERATOR_TOKENS: `alice:${token}`,
        OPERATOR_TOKEN_HASHES: `bob:${'AB'.repeat(32)}`,
      }),
    )
    expect(config.operatorTokens).toEqual([
      { name: 'alice', sha256: createHash('sha256').update(token).digest('hex') },
      { name: 'bob', sha256: 'ab'.repeat(32) },
    ])
    expect(problemsOf(productionEnv({ PORT: '70000' }))).toEqual([
      'PORT: expected an integer from 0 to 65535, got "70000"',
    ])
    expect(problemsOf(productionEnv({ TRUST_PROXY: 'sometimes' }))).toEqual([
      'TRUST_PROXY: expected true or false, got "sometimes"',
    ])
  })

  it('names a log level pino does not know instead of crashing at start-up', () => {
    expect(loadConfig(productionEnv({ LOG_LEVEL: 'debug' })).logLevel).toBe('debug')
    expect(loadConfig(productionEnv()).logLevel).toBe('info')
    expect(problemsOf(productionEnv({ LOG_LEVEL: 'verbose' }))).toEqual([
      'LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "verbose"',
    ])
  })

  it('names a Redis key prefix with hash-tag braces instead of crashing at start-up', () => {
    expect(loadConfig(productionEnv({ REDIS_KEY_PREFIX: 'tenant-a:' })).redis?.keyPrefix).toBe('tenant-a:')
    for (const prefix of ['{cb}:', 'cb{', 'cb}:']) {
      expect(problemsOf(productionEnv({ REDIS_KEY_PREFIX: prefix })), prefix).toEqual([
        'REDIS_KEY_PREFIX: must not contain { or } (hash tags)',
      ])
    }
    // Joins the other problems rather than replacing them.
    const names = problemsOf(productionEnv({ REDIS_KEY_PREFIX: '{x}', LOG_LEVEL: 'loud', PORT: 'x' })).map(
      (p) => p.slice(0, p.indexOf(':')),
    )
    expect(names.sort()).toEqual(['LOG_LEVEL', 'PORT', 'REDIS_KEY_PREFIX'])
  })

  it('requires lower-case client ids (ID tokens carry them as aud, compared exactly)', () => {
    const { options, env } = appsFile([
      oneApp({ global: { clientId: '0B1E6A52-7C3D-4F8E-9A10-000000000001', clientSecretEnv: 'X_SECRET' } }),
    ])
    expect(problemsOf(productionEnv({ ...env, X_SECRET: 'x' }), options)).toEqual([
      'APPS_FILE: /apps/0 (graph-mail): cloud global: clientId must be lower case (as Entra writes it in tokens)',
    ])
  })

  it('keeps the metrics listener apart from the main port', () => {
    expect(loadConfig(productionEnv({ METRICS_PORT: '9464' })).metricsPort).toBe(9464)
    expect(loadConfig(productionEnv()).metricsPort).toBeUndefined()
    expect(problemsOf(productionEnv({ PORT: '9464', METRICS_PORT: '9464' }))).toEqual([
      expect.stringMatching(/^METRICS_PORT: must differ from PORT/),
    ])
  })

  it('gives shutdown more time than the drain plus an in-flight request may take', () => {
    const defaults = loadConfig(productionEnv())
    expect(defaults.shutdownDrainMs).toBe(5_000)
    expect(defaults.shutdownTimeoutMs).toBeGreaterThan(
      defaults.tokens.responseDeadlineMs + defaults.shutdownDrainMs,
    )
    expect(loadConfig(productionEnv({ RESPONSE_DEADLINE_MS: '30000' })).shutdownTimeoutMs).toBe(40_000)
    expect(
      loadConfig(productionEnv({ RESPONSE_DEADLINE_MS: '30000', SHUTDOWN_DRAIN_MS: '0' })).shutdownTimeoutMs,
    ).toBe(35_000)
    expect(problemsOf(productionEnv({ SHUTDOWN_TIMEOUT_MS: '15000' }))).toEqual([
      expect.stringMatching(
        /^SHUTDOWN_TIMEOUT_MS: must be greater than RESPONSE_DEADLINE_MS plus SHUTDOWN_DRAIN_MS/,
      ),
    ])
    expect(problemsOf(productionEnv({ SHUTDOWN_TIMEOUT_MS: '19000', SHUTDOWN_DRAIN_MS: '5000' }))).toEqual([
      expect.stringMatching(/^SHUTDOWN_TIMEOUT_MS: must be greater than/),
    ])
  })

  it('reads the refresh-ahead share and the upstream rate cap, refusing what makes no sense', () => {
    const defaults = loadConfig(productionEnv())
    expect(defaults.tokens.refreshAheadFraction).toBe(0.5)
    expect(defaults.tokens.upstreamRatePerApp).toBe(20)
    expect(loadConfig(productionEnv({ TOKEN_REFRESH_AHEAD_FRACTION: '0' })).tokens.refreshAheadFraction).toBe(
      0,
    )
    expect(
      loadConfig(productionEnv({ TOKEN_REFRESH_AHEAD_FRACTION: '0.75' })).tokens.refreshAheadFraction,
    ).toBe(0.75)
    expect(problemsOf(productionEnv({ TOKEN_REFRESH_AHEAD_FRACTION: '1' }))).toEqual([
      expect.stringMatching(/^TOKEN_REFRESH_AHEAD_FRACTION: expected a number from 0 to 0.95/),
    ])
    expect(
      problemsOf(productionEnv({ TOKEN_REFRESH_AHEAD_FRACTION: 'half', UPSTREAM_RATE_PER_APP: '0' })),
    ).toEqual([
      expect.stringMatching(/^TOKEN_REFRESH_AHEAD_FRACTION: /),
      expect.stringMatching(/^UPSTREAM_RATE_PER_APP: expected an integer from 1/),
    ])
  })

  it('reports unrelated problems together instead of one per restart', () => {
    const problems = problemsOf(
      productionEnv({
        PUBLIC_URL: 'http://consent.example.com',
        MASTER_KEYS: 'k1:zz',
        COOKIE_SECRET: 'short',
        REDIS_SENTINELS: 's1:26379',
        MS_GRAPH_MAIL_CLIENT_SECRET: '',
        PORT: 'abc',
      }),
    )
    const names = problems.map((p) => p.slice(0, p.indexOf(':')))
    expect(names).toEqual(
      expect.arrayContaining([
        'PUBLIC_URL',
        'MASTER_KEYS',
        'COOKIE_SECRET',
        'REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES',
        'MS_GRAPH_MAIL_CLIENT_SECRET',
        'PORT',
      ]),
    )
  })

  it('refuses operator tokens that could never sign in, naming the operator, never the token', () => {
    const tooLong = `long-${'x'.repeat(595)}`
    const spaced = 'a token with spaces in it 0123456789'
    const nonAscii = 'tökén-outside-ascii-0123456789abcdef'
    const control = 'control\u0001character-0123456789abcd'
    const bad = { bob: tooLong, carol: spaced, dave: nonAscii, erin: control }
    const problems = problemsOf(
      productionEnv({
        OPERATOR_TOKENS: Object.entries(bad)
          .map(([name, token]) => `${name}:${token}`)
          .join(','),
        COOKIE_SECRET: 'short',
      }),
    )
    const form = 'must be printable ASCII without spaces (what an Authorization: Bearer header carries)'
    expect(problems).toEqual([
      'COOKIE_SECRET: must be at least 32 characters',
      'OPERATOR_TOKENS: token of "bob" must be at most 512 characters',
      `OPERATOR_TOKENS: token of "carol" ${form}`,
      `OPERATOR_TOKENS: token of "dave" ${form}`,
      `OPERATOR_TOKENS: token of "erin" ${form}`,
    ])
    for (const problem of problems) {
      for (const token of Object.values(bad)) expect(problem).not.toContain(token)
    }
    // A short token with a space breaks two rules: both are named.
    expect(problemsOf(productionEnv({ OPERATOR_TOKENS: 'frank:two words' }))).toEqual([
      'OPERATOR_TOKENS: token of "frank" must be at least 24 characters',
      `OPERATOR_TOKENS: token of "frank" ${form}`,
    ])
  })

  it('loads the longest token of every printable character, and that token signs in', () => {
    // Every printable ASCII character but the comma, which separates the entries.
    const characters = Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i))
      .filter((c) => c !== ',')
      .join('')
    const token = characters.repeat(6).slice(0, 512)
    expect(token).toHaveLength(512)
    const config = loadConfig(productionEnv({ OPERATOR_TOKENS: `bob:${token}` }))
    expect(authenticateOperator(config, `Bearer ${token}`)).toBe('bob')
    expect(problemsOf(productionEnv({ OPERATOR_TOKENS: `bob:${token}x` }))).toEqual([
      'OPERATOR_TOKENS: token of "bob" must be at most 512 characters',
    ])
  })

  it('never puts a secret value into a problem message', () => {
    const secret = 'super-secret-value-that-must-not-leak'
    const problems = problemsOf(
      productionEnv({ OPERATOR_TOKENS: `alice:${secret}`, OPERATOR_TOKEN_HASHES: `alice:${'a'.repeat(64)}` }),
    )
    expect(problems.length).toBeGreaterThan(0)
    for (const problem of problems) expect(problem).not.toContain(secret)
    const keyProblems = problemsOf(productionEnv({ MASTER_KEYS: `k1:${randomBytes(31).toString('base64')}` }))
    expect(keyProblems.join('\n')).not.toMatch(/[A-Za-z0-9+/]{40}/)
  })
})
