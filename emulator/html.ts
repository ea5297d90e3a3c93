// HTML pages of the emulator. Forms are deliberately regular (attribute order fixed, one form per
// page) so that test drivers can read them with simple regular expressions.
import type { EmulatorUser } from './demo-data.js'

export function escapeHtml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;')
}

const STYLE = `body{font-family:system-ui,sans-serif;background:#f2f2f2;margin:0}
main{max-width:440px;margin:48px auto;background:#fff;padding:32px 40px;box-shadow:0 2px 6px rgba(0,0,0,.2)}
h1{font-size:24px;font-weight:600}.brand{color:#737373;font-size:14px}.error{color:#e81123}
input[type=text]{width:100%;padding:6px 0;border:0;border-bottom:1px solid #666;font-size:15px}
button{margin-top:16px;margin-right:8px;padding:6px 18px;font-size:15px}
.hint,.users{color:#555;font-size:13px}code{font-size:13px}`

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body>
<main>
<p class="brand">Entra ID emulator</p>
${body}
</main>
</body>
</html>
`
}

function hidden(name: string, value: string): string {
  return `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`
}

export interface SignInPageInput {
  readonly action: string
  readonly flowId: string
  readonly appName: string
  readonly tenantLabel: string
  readonly loginHint: string | undefined
  readonly domainHint: string | undefined
  readonly error: string | undefined
  readonly users: readonly EmulatorUser[]
}

export function signInPage(input: SignInPageInput): string {
  const error = input.error ? `<p id="error" class="error" role="alert">${escapeHtml(input.error)}</p>\n` : ''
  const domainHint = input.domainHint
    ? `<p class="hint">Domain hint: <code>${escapeHtml(input.domainHint)}</code></p>\n`
    : ''
  const users = input.users
    .map((u) => `<li><code>${escapeHtml(u.username)}</code> (${escapeHtml(u.displayName)})</li>`)
    .join('\n')
  return page(
    'Sign in to your account',
    `<h1>Sign in</h1>
<p>to continue to <strong>${escapeHtml(input.appName)}</strong> (${escapeHtml(input.tenantLabel)})</p>
${error}${domainHint}<form method="post" action="${escapeHtml(input.action)}">
${hidden('flow', input.flowId)}
<label for="username">Email, phone, or Skype</label>
<input type="text" id="username" name="username" value="${escapeHtml(input.loginHint ?? '')}" autocomplete="username" autofocus>
<button type="submit">Next</button>
</form>
<div class="users">Demo accounts (no password):<ul>
${users}
</ul></div>`,
  )
}

export interface ConsentPageInput {
  readonly action: string
  readonly flowId: string
  readonly appName: string
  readonly clientId: string
  readonly user: EmulatorUser
  readonly permissions: readonly string[]
  readonly forOrganization: boolean
}

export function consentPage(input: ConsentPageInput): string {
  const items = input.permissions.map((p) => `<li>${escapeHtml(p)}</li>`).join('\n')
  const who = input.forOrganization
    ? '<p>Accepting grants these permissions <strong>on behalf of your entire organization</strong>.</p>'
    : '<p>Accepting allows this app to use your data as described.</p>'
  return page(
    'Permissions requested',
    `<h1>Permissions requested${input.forOrganization ? ' — Accept for your organization' : ''}</h1>
<p><strong>${escapeHtml(input.appName)}</strong> <code>${escapeHtml(input.clientId)}</code></p>
<p>Signed in as <code>${escapeHtml(input.user.username)}</code></p>
<p>This app would like to:</p>
<ul id="permissions">
${items}
</ul>
${who}
<form method="post" action="${escapeHtml(input.action)}">
${hidden('flow', input.flowId)}
<button type="submit" name="decision" value="accept">Accept</button>
<button type="submit" name="decision" value="deny">Cancel</button>
</form>`,
  )
}

/** Error page shown when Entra cannot (or must not) redirect back to the application. */
export function errorPage(description: string): string {
  return page(
    'Sign in to your account',
    `<h1>Sorry, but we're having trouble signing you in.</h1>
<p id="error" class="error" data-emulator-error="true">${escapeHtml(description)}</p>`,
  )
}

/** `response_mode=form_post`: the page posting the response to the redirect URI. */
export function formPostPage(action: string, params: Readonly<Record<string, string>>): string {
  const inputs = Object.entries(params)
    .map(([k, v]) => hidden(k, v))
    .join('\n')
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Working...</title></head>
<body onload="document.forms[0].submit()">
<form method="post" name="hiddenform" action="${escapeHtml(action)}">
${inputs}
<noscript><p>Script is disabled. Click Submit to continue.</p><input type="submit" value="Submit"></noscript>
</form>
</body>
</html>
`
}

export function messagePage(title: string, text: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(text)}</p>`)
}

/** The device code verification page: one field, `user_code`. */
export function deviceCodePage(error: string | undefined): string {
  const shown = error ? `<p id="error" class="error" role="alert">${escapeHtml(error)}</p>\n` : ''
  return page(
    'Enter code',
    `<h1>Enter code</h1>
<p>Enter the code displayed on your app or device.</p>
${shown}<form method="post" action="/devicelogin">
<label for="user_code">Code</label>
<input type="text" id="user_code" name="user_code" autocomplete="off" autofocus>
<button type="submit">Next</button>
</form>`,
  )
}
