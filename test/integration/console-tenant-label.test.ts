// The console's tenant label form, as a browser without JavaScript: shown on the registrations page
// of one tenant, CSRF-checked, validated (trimmed, then 1 to 100 characters of one-line text), audited
// like the API's PATCH, and the new label is shown beside the tenant id afterwards.
import { beforeAll, describe, expect, it } from 'vitest'
import { FABRIKAM_TENANT_ID } from '../../emulator/demo-data.js'
import { consoleSignIn, csrfOf, operatorToken } from '../support/admin-helpers.js'
import { browse, consentViaEmulator } from '../support/broker.js'
import { PLAIN_UNICODE, REFUSED_EXAMPLES } from '../support/one-line-text.js'
import { useBrokerOnRedis } from '../support/use-broker.js'

const ALICE = operatorToken('alice')
const { broker } = useBrokerOnRedis({ env: { OPERATOR_TOKENS: `alice:${ALICE}` } })

beforeAll(async () => {
  await consentViaEmulator(broker.app, { slug: 'ms-graph-mail', username: 'admin@fabrikam.example' })
})

/** A signed-in console's label form for Fabrikam: `post` sends a label, `stored` reads the label kept. */
async function labelForm() {
  const { jar } = await consoleSignIn(broker.app, ALICE)
  const csrf = csrfOf((await browse(broker.app, jar, { url: '/admin/tenants' })).body)
  const action = `/admin/tenants/${FABRIKAM_TENANT_ID}/label`
  return {
    post: (label: string) => browse(broker.app, jar, { method: 'POST', url: action, form: { csrf, label } }),
    stored: async () => (await broker.store.tenantLabels.get([FABRIKAM_TENANT_ID])).get(FABRIKAM_TENANT_ID),
  }
}

describe('console: tenant label form', () => {
  it('renames a tenant from its registrations page, CSRF-checked and audited', async () => {
    const { jar } = await consoleSignIn(broker.app, ALICE)
    const url = `/admin/registrations?tenant=${FABRIKAM_TENANT_ID}`
    const page = await browse(broker.app, jar, { url })
    expect(page.statusCode).toBe(200)
    expect(page.body).toContain(`action="/admin/tenants/${FABRIKAM_TENANT_ID}/label"`)
    expect(page.body).toMatch(/name="label" value="fabrikam\.example"/)
    const csrf = csrfOf(page.body)
    const action = `/admin/tenants/${FABRIKAM_TENANT_ID}/label`

    const noCsrf = await browse(broker.app, jar, { method: 'POST', url: action, form: { label: 'Fabrikam' } })
    expect(noCsrf.statusCode).toBe(403)
    const blank = await browse(broker.app, jar, { method: 'POST', url: action, form: { csrf, label: '   ' } })
    expect(blank.statusCode).toBe(400)
    expect((await broker.store.tenantLabels.get([FABRIKAM_TENANT_ID])).get(FABRIKAM_TENANT_ID)).toBe(
      'fabrikam.example',
    )

    const saved = await browse(broker.app, jar, {
      method: 'POST',
      url: action,
      form: { csrf, label: 'Fabrikam <EU>' },
    })
    expect(saved.statusCode).toBe(303)
    expect(saved.headers.location).toBe(`/admin/registrations?tenant=${FABRIKAM_TENANT_ID}&done=label_saved`)
    const after = await browse(broker.app, jar, { url: String(saved.headers.location) })
    expect(after.body).toContain('The tenant’s label is saved.')
    expect(after.body).toContain('Fabrikam &lt;EU&gt;')
    expect(after.body).not.toContain('Fabrikam <EU>')
    const { items } = await broker.store.audit.read({ order: 'desc', limit: 20 })
    expect(items.find((e) => e.type === 'tenant.label_changed')).toMatchObject({
      actor: 'operator:alice',
      tenantId: FABRIKAM_TENANT_ID,
      detail: { label: 'Fabrikam <EU>', previous: 'fabrikam.example' },
    })
  })

  it('counts the label after trimming it', async () => {
    const { post, stored } = await labelForm()

    const padded = await post(` ${'a'.repeat(100)} `)
    expect(padded.statusCode).toBe(303)
    expect(await stored()).toBe('a'.repeat(100))
    const long = await post(` ${'b'.repeat(101)} `)
    expect(long.statusCode).toBe(400)
    expect(long.headers['content-type']).toMatch(/text\/html/)
    expect(long.body).toContain('label must be 1 to 100 characters')
    expect(await stored()).toBe('a'.repeat(100))
  })

  it('refuses control, separator and bidi characters on its error page; takes plain text in any script', async () => {
    const { post, stored } = await labelForm()
    const before = await stored()

    for (const [name, character] of REFUSED_EXAMPLES) {
      const refused = await post(`Fabrikam${character}EU`)
      expect(refused.statusCode, name).toBe(400)
      expect(refused.headers['content-type'], name).toMatch(/text\/html/)
      expect(refused.body, name).toContain('label must be')
    }
    expect(await stored()).toBe(before)
    expect((await post(PLAIN_UNICODE)).statusCode).toBe(303)
    expect(await stored()).toBe(PLAIN_UNICODE)
  })
})
