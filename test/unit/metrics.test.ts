import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { createMetrics, deferredCounter } from '../../src/metrics.js'

describe('deferredCounter', () => {
  it('adds its counts to the counter when it is read, once each', async () => {
    const registry = new Registry()
    const { counter, count } = deferredCounter({
      name: 'test_lookups_total',
      help: 'lookups',
      labelNames: ['app', 'result'],
      registers: [registry],
    })
    count('mail', 'hit')
    count('mail', 'hit')
    count('mail', 'miss')
    count('teams', 'hit')
    const first = await counter.get()
    expect(first.values.map(({ labels, value }) => [labels.app, labels.result, value])).toEqual([
      ['mail', 'hit', 2],
      ['mail', 'miss', 1],
      ['teams', 'hit', 1],
    ])
    // read again: nothing added twice; later counts add to what was read
    count('mail', 'miss')
    const text = await registry.metrics()
    expect(text).toContain('test_lookups_total{app="mail",result="hit"} 2')
    expect(text).toContain('test_lookups_total{app="mail",result="miss"} 2')
    expect(text).toContain('test_lookups_total{app="teams",result="hit"} 1')
  })

  it('countObtainToken and countTokenCache reach the scraped obtain-token and token-cache counters', async () => {
    const metrics = createMetrics()
    metrics.countObtainToken('ms-graph-mail', 'success')
    metrics.countObtainToken('unknown', 'invalid_request')
    metrics.countTokenCache('ms-graph-mail', 'hit')
    const scraped = await metrics.registry.metrics()
    expect(scraped).toContain(
      'consent_broker_obtain_token_requests_total{app="ms-graph-mail",outcome="success"} 1',
    )
    expect(scraped).toContain(
      'consent_broker_obtain_token_requests_total{app="unknown",outcome="invalid_request"} 1',
    )
    expect(scraped).toContain('consent_broker_token_cache_total{app="ms-graph-mail",result="hit"} 1')
  })
})
