import { describe, expect, it } from 'vitest'
import { isBrokerError } from '../../src/errors.js'
import { ScopeResolver } from '../../src/services/token-scope.js'
import { testConfig } from '../support/config.js'

const config = testConfig({ authorityUrl: 'http://127.0.0.1:9' })
const resolver = new ScopeResolver(config)

function rejects(fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    if (isBrokerError(error)) return `${error.code}: ${error.message}`
    throw error
  }
  throw new Error('did not throw')
}

describe('scope resolution', () => {
  const defender = resolver.forApp('ms-defender-atp', 'global')!
  const mail = resolver.forApp('ms-graph-mail', 'global')!
  const mailUsgov = resolver.forApp('ms-graph-mail', 'usgov')!
  const logAnalytics = resolver.forApp('ms-azure-log-analytics', 'global')!

  it('null and "" give the app default in the registration cloud', () => {
    expect(ScopeResolver.resolve(mail, null, '')).toBe('https://graph.microsoft.com/.default')
    expect(ScopeResolver.resolve(mail, '', null)).toBe('https://graph.microsoft.com/.default')
    expect(ScopeResolver.resolve(mailUsgov, null, '')).toBe('https://graph.microsoft.us/.default')
    expect(ScopeResolver.resolve(defender, null, '')).toBe(
      'https://api.securitycenter.microsoft.com/.default',
    )
  })

  it('"graph" gives the cloud Graph .default only when allowlisted', () => {
    expect(ScopeResolver.resolve(defender, 'graph', '')).toBe('https://graph.microsoft.com/.default')
    expect(rejects(() => ScopeResolver.resolve(mail, 'graph', ''))).toMatch(
      /^invalid_scope: scope "graph" is not allowed/,
    )
  })

  it('a full scope only when allowlisted', () => {
    const full = 'https://securitycenter.onmicrosoft.com/windowsatpservice/.default'
    expect(ScopeResolver.resolve(defender, full, '')).toBe(full)
    const message = rejects(() => ScopeResolver.resolve(defender, 'https://evil.example/.default', ''))
    expect(message).toMatch(
      /^invalid_scope: scope "https:\/\/evil.example\/.default" is not allowed for ms-defender-atp/,
    )
    expect(message).toContain('"graph"')
    expect(message).toContain(full)
  })

  it('a resource becomes <resource>/.default when allowlisted (trailing slash and case normalised)', () => {
    expect(ScopeResolver.resolve(logAnalytics, null, 'https://api.loganalytics.io')).toBe(
      'https://api.loganalytics.io/.default',
    )
    expect(ScopeResolver.resolve(logAnalytics, null, 'https://management.azure.com/')).toBe(
      'https://management.azure.com/.default',
    )
    expect(ScopeResolver.resolve(logAnalytics, null, 'HTTPS://API.LOGANALYTICS.IO/')).toBe(
      'https://api.loganalytics.io/.default',
    )
    expect(rejects(() => ScopeResolver.resolve(logAnalytics, null, 'https://graph.microsoft.com'))).toMatch(
      /^invalid_scope: resource "https:\/\/graph.microsoft.com" is not allowed for ms-azure-log-analytics; allowed: .*resource "https:\/\/management.azure.com", "https:\/\/api.loganalytics.io"/,
    )
    expect(rejects(() => ScopeResolver.resolve(mail, null, 'https://management.azure.com'))).toMatch(
      /^invalid_scope/,
    )
  })

  it("Defender's indicator scope is the cloud's own: .onmicrosoft.com worldwide, .onmicrosoft.us in GCC High and DoD", () => {
    const worldwide = 'https://securitycenter.onmicrosoft.com/windowsatpservice/.default'
    const government = 'https://securitycenter.onmicrosoft.us/windowsatpservice/.default'
    for (const cloud of ['usgov', 'dod'] as const) {
      const atp = resolver.forApp('ms-defender-atp', cloud)!
      expect(ScopeResolver.resolve(atp, government, '')).toBe(government)
      expect(rejects(() => ScopeResolver.resolve(atp, worldwide, ''))).toMatch(/^invalid_scope/)
    }
    expect(rejects(() => ScopeResolver.resolve(defender, government, ''))).toMatch(/^invalid_scope/)
    expect(ScopeResolver.resolve(resolver.forApp('ms-defender-atp', 'dod')!, 'graph', '')).toBe(
      'https://dod-graph.microsoft.us/.default',
    )
  })

  it('scope and resource together are refused', () => {
    expect(
      rejects(() => ScopeResolver.resolve(logAnalytics, 'graph', 'https://api.loganalytics.io')),
    ).toMatch(/^invalid_scope: give either scope or resource/)
  })

  it('knows only configured clouds', () => {
    expect(resolver.forApp('ms-graph-user', 'usgov')).toBeUndefined()
    expect(resolver.forApp('nope', 'global')).toBeUndefined()
  })

  it('echoes a refused scope without controls, bidi controls or lone surrogates', () => {
    const message = rejects(() => ScopeResolver.resolve(mail, 'https://evil\u202e.example/\u0000x\ud800', ''))
    expect(message).toMatch(/^invalid_scope: scope "https:\/\/evil\.example\/x" is not allowed/)
  })
})
