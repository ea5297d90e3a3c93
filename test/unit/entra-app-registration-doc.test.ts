// docs/entra-app-registration.md lists, per family, exactly the API permissions (name and type) of
// config/apps.example.json, and a section for every family and cloud key the file uses.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url))
const doc = readFileSync(root('docs/entra-app-registration.md'), 'utf8')
const apps = (
  JSON.parse(readFileSync(root('config/apps.example.json'), 'utf8')) as {
    apps: Array<{
      slug: string
      consent: string
      permissions: Array<{ name: string; type: string }>
      clouds: Record<string, unknown>
    }>
  }
).apps

/** `### \`slug\` — kind consent` sections: their permission lines as "Name (Type)". */
function documented(): Map<string, { consent: string; permissions: string[] }> {
  const sections = new Map<string, { consent: string; permissions: string[] }>()
  for (const section of doc.split(/^### /m).slice(1)) {
    const heading = /^`([\w-]+)` — (\w+) consent/.exec(section)
    if (heading === null) continue
    const permissions = [...section.matchAll(/^- `([\w.]+)` — (Application|Delegated) — /gm)].map(
      (m) => `${m[1]} (${m[2]})`,
    )
    sections.set(heading[1]!, { consent: heading[2]!, permissions })
  }
  return sections
}

describe('docs/entra-app-registration.md', () => {
  it('has one section per family of config/apps.example.json, with exactly its permissions', () => {
    const sections = documented()
    expect([...sections.keys()].sort()).toEqual(apps.map((a) => a.slug).sort())
    for (const app of apps) {
      const section = sections.get(app.slug)!
      expect(section.consent, app.slug).toBe(app.consent)
      expect(section.permissions.sort(), app.slug).toEqual(
        app.permissions.map((p) => `${p.name} (${p.type})`).sort(),
      )
    }
  })

  it('names every cloud key the file uses, the redirect URI, the account type and the wids claim', () => {
    for (const cloud of new Set(apps.flatMap((a) => Object.keys(a.clouds))))
      expect(doc).toContain(`| \`${cloud}\` |`)
    expect(doc).toContain('`<PUBLIC_URL>/callback`')
    expect(doc).toContain('Multitenant')
    expect(doc).toContain('`wids`')
    expect(doc).toContain('Publisher verification')
  })
})
