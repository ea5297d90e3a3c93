import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { escapeHtml, html, raw } from '../../src/views/html.js'

describe('html template', () => {
  it('escapes every interpolation', () => {
    const payload = `<script>alert("x")</script>' onerror=\`y\` &amp;`
    const out = html`<p title="${payload}">${payload}</p>`.value
    expect(out).not.toContain('<script>')
    expect(out).toContain(
      '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onerror=&#96;y&#96; &amp;amp;',
    )
  })

  it('never lets markup characters through, whatever the input', () => {
    fc.assert(
      fc.property(fc.string(), (value) => {
        const out = html`${value}`.value
        expect(out).not.toMatch(/[<>"'`]/)
        expect(out.replace(/&(amp|lt|gt|quot|#39|#96);/g, '')).not.toContain('&')
      }),
    )
  })

  it('nests safe fragments and arrays without double escaping', () => {
    const items = ['a<b', 'c']
    const out = html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>${raw('<hr>')}`.value
    expect(out).toBe('<ul><li>a&lt;b</li><li>c</li></ul><hr>')
  })

  it('renders nothing for null, undefined and false', () => {
    expect(html`[${null}${undefined}${false}]`.value).toBe('[]')
    expect(escapeHtml('0')).toBe('0')
  })
})
