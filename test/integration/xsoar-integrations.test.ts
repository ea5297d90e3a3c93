// Every integration of the XSOAR catalogue (test/fixtures/xsoar-catalogue.ts) against the broker, end
// to end: consent in the demo (the emulator) with the kind of user the integration expects, then
// obtain-token through the independent XSOAR client with exactly the bodies that integration has
// sent over the years, checking that each returned token is for the API the integration calls
// (its `aud`) in the registration's cloud. Also Defender's per-command scopes, Log Analytics'
// two-resource loop in every cloud the broker tells apart, and the Azure families' result page.
import { decodeJwt } from 'jose'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { CONTOSO, CONTOSO_ADMIN, CONTOSO_USER, FABRIKAM_ADMIN } from '../../emulator/demo-data.js'
import {
  CATALOGUE_AUDIENCES,
  type CatalogueCloud,
  type CatalogueRow,
  indicatorScope,
  LOG_ANALYTICS_RESOURCES,
  XSOAR_CATALOGUE,
} from '../fixtures/xsoar-catalogue.js'
import {
  type ConsentValues,
  consentViaEmulator,
  integrationValuesViaEmulator,
  pageTitle,
  type RunningBroker,
  runConsentViaEmulator,
  startBroker,
} from '../support/broker.js'
import { useEmulator } from '../support/emulator.js'
import { type BodyShape, type TokenAnswer, XsoarClient } from '../support/xsoar-client.js'

const emulator = useEmulator()
let broker: RunningBroker
let tokenUrl: string

beforeAll(async () => {
  broker = await startBroker({ authorityUrl: emulator.url, redisUrl: inject('redisUrl') })
  tokenUrl = `${await broker.app.listen({ port: 0, host: '127.0.0.1' })}/obtain-token`
})

afterAll(async () => {
  await broker?.close()
})

/** Who consents: an administrator for admin consent; a user for delegated consent (an admin where
 * the integration's documentation says an administrator approves its consent page). */
function consentingUser(row: CatalogueRow): string {
  if (row.consent === 'admin') return CONTOSO_ADMIN.username
  return row.appName === 'ms-management-api' || row.appName === 'ms-azure-log-analytics'
    ? CONTOSO_ADMIN.username
    : CONTOSO_USER.username
}

function instance(values: ConsentValues, row: CatalogueRow): XsoarClient {
  return new XsoarClient({
    id: values.id,
    token: values.token,
    key: values.key,
    appName: row.appName,
    integrationName: row.integration,
    urlOverride: tokenUrl,
  })
}

function audienceOf(answer: TokenAnswer): unknown {
  expect(answer.ok, answer.body).toBe(true)
  return decodeJwt(answer.accessToken).aud
}

const SHAPES: readonly BodyShape[] = ['current', 'scope-only', 'legacy']

describe.each(XSOAR_CATALOGUE.map((row) => [row.appName, row] as const))('%s', (_appName, row) => {
  it(`consents as ${row.consent === 'admin' ? 'an administrator' : 'the signed-in user'} and gets ${row.api} tokens for every body shape`, async () => {
    const values = await consentViaEmulator(broker.app, { slug: row.appName, username: consentingUser(row) })
    expect(values.token).toBe(CONTOSO.tid)
    const client = instance(values, row)
    const expected = row.multiResource ? CATALOGUE_AUDIENCES.global.arm : CATALOGUE_AUDIENCES.global[row.api]
    for (const shape of SHAPES) {
      const answer = await client.getAccessToken({ shape })
      expect(audienceOf(answer), `${shape} body`).toBe(expected)
      const claims = decodeJwt(answer.accessToken)
      expect(claims.tid).toBe(CONTOSO.tid)
      expect(claims.idtyp).toBe(row.consent === 'admin' ? 'app' : 'user')
    }
    for (const { scope, api } of row.scopes) {
      const sent = scope === 'graph' ? 'graph' : indicatorScope('global')
      for (const shape of ['current', 'scope-only'] as const) {
        expect(audienceOf(await client.getAccessToken({ scope: sent, shape })), `${sent} (${shape})`).toBe(
          CATALOGUE_AUDIENCES.global[api],
        )
      }
    }
    if (row.multiResource) {
      const answers = await client.multiResource(LOG_ANALYTICS_RESOURCES.global)
      expect([...answers.values()].map(audienceOf)).toEqual([
        CATALOGUE_AUDIENCES.global.arm,
        CATALOGUE_AUDIENCES.global['log-analytics'],
      ])
    }
  })
})

describe('Defender for Endpoint: the three scopes per cloud', () => {
  it.each(['global', 'usgov', 'dod'] as const)(
    '%s: null, "graph" and the indicator scope of that cloud',
    async (cloud) => {
      const row = XSOAR_CATALOGUE.find((r) => r.appName === 'ms-defender-atp')!
      const values = await consentViaEmulator(broker.app, {
        slug: row.appName,
        cloud,
        username: CONTOSO_ADMIN.username,
      })
      const client = instance(values, row)
      const audiences = CATALOGUE_AUDIENCES[cloud]
      expect(audienceOf(await client.getAccessToken({ scope: null }))).toBe(audiences.defender)
      expect(audienceOf(await client.getAccessToken({ scope: 'graph' }))).toBe(audiences.graph)
      expect(audienceOf(await client.getAccessToken({ scope: indicatorScope(cloud)! }))).toBe(
        audiences['defender-indicators'],
      )
      // The other clouds' indicator scope is refused: a token never crosses clouds.
      const other = cloud === 'global' ? indicatorScope('usgov')! : indicatorScope('global')!
      const refused = await client.getAccessToken({ scope: other })
      expect(refused.status).toBe(400)
      expect(refused.errorMessage).toMatch(/^invalid_scope: /)
    },
  )
})

describe('Azure Log Analytics: the two-resource loop in every cloud', () => {
  it.each(['global', 'usgov', 'dod', 'china'] as const)(
    '%s: Resource Manager then Log Analytics, with and without trailing slashes',
    async (cloud: CatalogueCloud) => {
      const row = XSOAR_CATALOGUE.find((r) => r.appName === 'ms-azure-log-analytics')!
      // In the global cloud the catalogue test above has consented as this user: a renewal.
      const values = await integrationValuesViaEmulator(broker, {
        slug: row.appName,
        cloud,
        username: CONTOSO_ADMIN.username,
      })
      const client = instance(values, row)
      const expected = [CATALOGUE_AUDIENCES[cloud].arm, CATALOGUE_AUDIENCES[cloud]['log-analytics']]
      const current = await client.multiResource(LOG_ANALYTICS_RESOURCES[cloud])
      expect([...current.values()].map(audienceOf)).toEqual(expected)
      // The refresh_token of each answer is what the next request sends (the Token, here).
      expect(client.refreshToken).toBe(values.token)
      const older = await client.multiResource(
        LOG_ANALYTICS_RESOURCES[cloud].map((r) => r.replace(/\/+$/, '')),
      )
      expect([...older.values()].map(audienceOf)).toEqual(expected)
      const slashed = await client.multiResource(
        LOG_ANALYTICS_RESOURCES[cloud].map((r) => `${r.replace(/\/+$/, '')}/`),
      )
      expect([...slashed.values()].map(audienceOf)).toEqual(expected)
    },
  )
})

describe('Management Activity API', () => {
  it("returns Microsoft's token itself: the integration reads the tenant from its tid claim", async () => {
    const row = XSOAR_CATALOGUE.find((r) => r.appName === 'ms-management-api')!
    // The catalogue test above has consented as this user: a renewal.
    const values = await integrationValuesViaEmulator(broker, {
      slug: row.appName,
      username: CONTOSO_ADMIN.username,
    })
    const answer = await instance(values, row).getAccessToken()
    const claims = decodeJwt(answer.accessToken)
    expect(claims.tid).toBe(CONTOSO.tid)
    expect(claims.iss).toBe(`${emulator.url}/${CONTOSO.tid}/v2.0`)
    expect(String(claims.scp).split(' ')).toEqual(
      expect.arrayContaining(['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read']),
    )
  })
})

describe('Azure families: the subscriptions on the result page', () => {
  it('ms-azure-sc lists the subscriptions and resource groups its service principal holds a role on', async () => {
    const run = await runConsentViaEmulator(broker.app, {
      slug: 'ms-azure-sc',
      username: CONTOSO_ADMIN.username,
    })
    expect(run.values).toBeTruthy()
    const page = run.response.body
    expect(page).toContain('Azure subscriptions this authorization can see')
    expect(page).toContain('<code data-subscription-id="5b1f7c2e-3a4d-4e6f-8a9b-0c1d2e3f4a01">')
    expect(page).toContain('Contoso Production')
    for (const group of ['prod-network', 'prod-vms', 'security-logs'])
      expect(page).toContain(`<code>${group}</code>`)
    // No role on Contoso Development, and nothing of Fabrikam.
    expect(page).not.toContain('Contoso Development')
    expect(page).not.toContain('Fabrikam')
  })

  it('ms-azure-log-analytics lists what the signed-in user holds a role on', async () => {
    const run = await runConsentViaEmulator(broker.app, {
      slug: 'ms-azure-log-analytics',
      username: CONTOSO_USER.username,
    })
    const page = run.response.body
    expect(run.values).toBeTruthy()
    expect(page).toContain('Contoso Development')
    expect(page).toContain('<code>dev-sandbox</code>')
    expect(page).not.toContain('Contoso Production')
  })

  it('says the app needs an Azure role, and how to assign it, when it sees no subscription', async () => {
    const run = await runConsentViaEmulator(broker.app, {
      slug: 'ms-azure-compute',
      username: FABRIKAM_ADMIN.username,
    })
    expect(run.values?.token).toBe(FABRIKAM_ADMIN.tid)
    const page = run.response.body
    expect(page).toContain('<h2>No Azure role yet</h2>')
    expect(page).toContain('Access control (IAM)')
    const clientId = broker.config.apps.find((a) => a.slug === 'ms-azure-compute')!.clouds.global!.clientId
    expect(page).toContain(`<code data-field="client-id">${clientId}</code>`)
    expect(page).toContain(`az role assignment create --assignee ${clientId} --role Reader`)
    expect(page).not.toContain('data-subscription-id')
  })

  it('keeps the ID, Token and Key page when Resource Manager cannot be reached', async () => {
    const unreachable = await startBroker({
      authorityUrl: emulator.url,
      redisUrl: inject('redisUrl'),
      // A port nothing listens on: connection refused.
      env: { RESOURCE_MANAGER_URL_GLOBAL: 'http://127.0.0.1:9' },
    })
    try {
      const run = await runConsentViaEmulator(unreachable.app, {
        slug: 'ms-azure-sc',
        username: CONTOSO_ADMIN.username,
      })
      expect(pageTitle(run.response.body)).toBe('Authorization complete')
      expect(run.values?.key).toMatch(/^[A-Za-z0-9+/]{43}=$/)
      expect(run.response.body).toContain('could not be listed: Azure Resource Manager could not be reached')
      expect(await unreachable.store.registrations.getMeta(run.values!.registrationId)).toMatchObject({
        app: 'ms-azure-sc',
        status: 'active',
      })
    } finally {
      await unreachable.close()
    }
  })
})

describe("the emulator's Resource Manager checks tokens as ARM does", () => {
  interface ArmAnswer {
    status: number
    body: { error: { code: string; message: string }; value: Array<{ displayName: string }> }
    challenge: string | null
  }
  async function arm(path: string, token?: string): Promise<ArmAnswer> {
    const response = await fetch(`${emulator.url}${path}`, {
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    })
    return {
      status: response.status,
      body: (await response.json()) as ArmAnswer['body'],
      challenge: response.headers.get('www-authenticate'),
    }
  }

  it('401 for a missing or malformed header and for a token of another audience; 400 without api-version; 403 without a role', async () => {
    const graphRow = XSOAR_CATALOGUE.find((r) => r.appName === 'ms-graph-user')!
    const graph = await instance(
      await consentViaEmulator(broker.app, { slug: graphRow.appName, username: CONTOSO_ADMIN.username }),
      graphRow,
    ).getAccessToken()
    const armRow = XSOAR_CATALOGUE.find((r) => r.appName === 'ms-azure-sc')!
    const armToken = (
      await instance(
        await consentViaEmulator(broker.app, { slug: armRow.appName, username: CONTOSO_ADMIN.username }),
        armRow,
      ).getAccessToken()
    ).accessToken

    const missing = await arm('/subscriptions?api-version=2022-12-01')
    expect(missing.status).toBe(401)
    expect(missing.body.error.code).toBe('AuthenticationFailed')
    expect(missing.challenge).toMatch(/^Bearer authorization_uri=/)
    const wrongAudience = await arm('/subscriptions?api-version=2022-12-01', graph.accessToken)
    expect(wrongAudience.status).toBe(401)
    expect(wrongAudience.body.error.code).toBe('InvalidAuthenticationTokenAudience')
    expect(wrongAudience.body.error.message).toContain("'https://graph.microsoft.com'")
    const forged = await arm('/subscriptions?api-version=2022-12-01', `${armToken.slice(0, -4)}AAAA`)
    expect(forged.body.error.code).toBe('InvalidAuthenticationToken')
    expect((await arm('/subscriptions', armToken)).body.error.code).toBe('MissingApiVersionParameter')

    const listed = await arm('/subscriptions?api-version=2022-12-01', armToken)
    expect(listed.status).toBe(200)
    expect(listed.body.value.map((s) => s.displayName)).toEqual(['Contoso Production'])
    const noRole = await arm(
      '/subscriptions/5b1f7c2e-3a4d-4e6f-8a9b-0c1d2e3f4a02/resourcegroups?api-version=2021-04-01',
      armToken,
    )
    expect(noRole.status).toBe(403)
    expect(noRole.body.error.code).toBe('AuthorizationFailed')
    const unknown = await arm(
      '/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups?api-version=2021-04-01',
      armToken,
    )
    expect(unknown.status).toBe(404)
    expect(unknown.body.error.code).toBe('SubscriptionNotFound')
  })
})
