// Acts as the browser at the Entra ID emulator: from an authorize or adminconsent URL, signs in,
// answers the consent page, and returns where the emulator sends the browser back to the client;
// or enters a device code on the verification page and signs in and consents the same way.

export interface CompleteAtEmulatorOptions {
  /** Demo username to sign in with, e.g. `admin@contoso.example`. */
  username: string
  /** Answer to the consent page, if one comes (default `accept`). */
  decision?: 'accept' | 'deny'
}

interface ParsedForm {
  readonly action: string
  readonly name: string | undefined
  readonly fields: ReadonlyMap<string, string>
  readonly inputNames: ReadonlySet<string>
  readonly decisions: ReadonlySet<string>
}

function decodeEntities(value: string): string {
  return value
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
}

function attributes(tag: string): Map<string, string> {
  const attrs = new Map<string, string>()
  for (const m of tag.matchAll(/([a-zA-Z_:][\w:.-]*)="([^"]*)"/g))
    attrs.set(m[1]!.toLowerCase(), decodeEntities(m[2]!))
  return attrs
}

function parseForm(html: string): ParsedForm | undefined {
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html)
  if (!form) return undefined
  const formAttrs = attributes(form[1]!)
  const fields = new Map<string, string>()
  const inputNames = new Set<string>()
  for (const m of form[2]!.matchAll(/<input\b[^>]*>/gi)) {
    const attrs = attributes(m[0])
    const name = attrs.get('name')
    if (!name) continue
    inputNames.add(name)
    if (attrs.get('type') === 'hidden') fields.set(name, attrs.get('value') ?? '')
  }
  const decisions = new Set<string>()
  for (const m of form[2]!.matchAll(/<button\b[^>]*>/gi)) {
    const attrs = attributes(m[0])
    if (attrs.get('name') === 'decision' && attrs.has('value')) decisions.add(attrs.get('value')!)
  }
  return { action: formAttrs.get('action') ?? '', name: formAttrs.get('name'), fields, inputNames, decisions }
}

function errorText(html: string): string {
  const m = /<p id="error"[^>]*>([\s\S]*?)<\/p>/i.exec(html)
  if (m) return decodeEntities(m[1]!.trim())
  const title = /<h1[^>]*>([\s\S]*?)<\/h1>/i.exec(html)
  return title ? decodeEntities(title[1]!.trim()) : html.slice(0, 200)
}

async function post(url: URL, fields: Iterable<[string, string]>): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams([...fields]).toString(),
  })
}

/**
 * Starting from an authorize or adminconsent URL on the emulator, signs in as `username`, answers
 * the consent page (if shown) with `decision`, and returns the final redirect `Location` — the URL at
 * the client's redirect_uri — without following it. With `response_mode=form_post` the posted
 * fields are returned as the query of the form's action URL. Throws if the emulator shows an error
 * page or rejects the username.
 */
export async function completeAtEmulator(url: string, options: CompleteAtEmulatorOptions): Promise<URL> {
  const decision = options.decision ?? 'accept'
  let current = new URL(url)
  let res = await fetch(current, { redirect: 'manual' })
  let signedIn = false
  let decided = false
  for (let step = 0; step < 5; step++) {
    if (res.status >= 300 && res.status < 400) {
      const location = res.headers.get('location')
      if (!location) throw new Error(`Emulator answered ${res.status} without a Location at ${current}`)
      return new URL(location, current)
    }
    const html = await res.text()
    if (res.status !== 200) {
      throw new Error(`Emulator error page (HTTP ${res.status}) at ${current.pathname}: ${errorText(html)}`)
    }
    const form = parseForm(html)
    if (!form) throw new Error(`Emulator page at ${current.pathname} has no form: ${errorText(html)}`)
    const action = new URL(form.action, current)
    if (form.inputNames.has('username')) {
      if (signedIn) throw new Error(`Emulator rejected username '${options.username}': ${errorText(html)}`)
      signedIn = true
      res = await post(action, [...form.fields, ['username', options.username]])
    } else if (form.decisions.size > 0) {
      if (decided || !form.decisions.has(decision)) {
        throw new Error(`Unexpected consent page at ${current.pathname}: ${errorText(html)}`)
      }
      decided = true
      res = await post(action, [...form.fields, ['decision', decision]])
    } else if (form.name === 'hiddenform') {
      for (const [k, v] of form.fields) action.searchParams.set(k, v)
      return action
    } else {
      throw new Error(`Unexpected emulator page at ${current.pathname}: ${errorText(html)}`)
    }
    current = action
  }
  throw new Error(`Emulator flow did not finish after 5 steps (last page ${current})`)
}

/**
 * Enters `userCode` on the device code verification page, signs in as `username` and answers the
 * consent page (if shown); returns the final page's status and heading text (the sign-in is done,
 * or the emulator's error). Nothing is redirected: the device learns the outcome by polling.
 */
export async function approveDeviceCode(
  verificationUri: string,
  userCode: string,
  options: CompleteAtEmulatorOptions,
): Promise<{ status: number; text: string }> {
  const decision = options.decision ?? 'accept'
  let current = new URL(verificationUri)
  let res = await post(current, [['user_code', userCode]])
  let signedIn = false
  for (let step = 0; step < 4; step++) {
    const html = await res.text()
    const form = res.status === 200 ? parseForm(html) : undefined
    if (!form) {
      const main = /<main>([\s\S]*?)<\/main>/i.exec(html)?.[1] ?? html
      const text = decodeEntities(
        main
          .replace(/<[^>]+>/g, ' ')
          .replace(/\s+/g, ' ')
          .trim(),
      )
      return { status: res.status, text }
    }
    const action = new URL(form.action, current)
    if (form.inputNames.has('username') && !signedIn) {
      signedIn = true
      res = await post(action, [...form.fields, ['username', options.username]])
    } else if (form.decisions.size > 0) {
      res = await post(action, [...form.fields, ['decision', decision]])
    } else {
      return { status: res.status, text: errorText(html) }
    }
    current = action
  }
  throw new Error(`Device code sign-in did not finish after 4 steps (last page ${current})`)
}
