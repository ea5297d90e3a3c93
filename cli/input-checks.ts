// consent-broker-admin's checks of what the operator hands it — the token, the broker URL and the
// ids that become path segments — made before any request. Without them a bad value reached fetch,
// whose error repeated it (the token, a URL's password) on stderr, or changed the request: an id of
// `.` or `..` is a dot segment that URL resolution removes, so `registration .` asked for the
// registration listing. The CLI imports nothing from src/ (admin-commands.ts), so the forms the
// server accepts are restated here; test/unit/cli-input-checks.test.ts holds them to the server's.
import { CliError, EXIT, usageError } from './exit-codes.js'
import { printable, SHORT_ID_HINT } from './table.js'

/** src/operator-token-form.ts: the longest operator token the broker compares. */
const TOKEN_MAX_LENGTH = 512
/** src/operator-token-form.ts: printable ASCII without the space, what a Bearer header carries. */
const TOKEN_CHARACTERS = /^[\x21-\x7e]+$/
/** src/routes/admin/schemas.ts REGISTRATION_ID_PATTERN (no dot segment can match: it starts alphanumeric). */
export const REGISTRATION_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
/** src/guid.ts GUID_PATTERN, the API's TENANT_ID_PATTERN. */
export const TENANT_ID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/

/** What kind of character `char` is, in words: never the character itself (it is part of a secret). */
function characterKind(char: string): string {
  if (char === '\n' || char === '\r') return 'a line break'
  if (char === ' ' || char === '\t') return 'white space'
  const code = char.codePointAt(0) ?? 0
  if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return 'a control character'
  return 'a character outside ASCII'
}

/**
 * CONSENT_BROKER_TOKEN, trimmed, once it has an operator token's form; an `auth` error otherwise,
 * as for no token: a token of another form could never sign in. The message says where the token
 * goes wrong, never what it holds.
 */
export function operatorToken(raw: string | undefined): string {
  const token = raw?.trim()
  if (token === undefined || token === '')
    throw new CliError('set CONSENT_BROKER_TOKEN to an operator token', EXIT.auth)
  if (token.length > TOKEN_MAX_LENGTH)
    throw new CliError(
      `CONSENT_BROKER_TOKEN is not an operator token: it has ${token.length} characters, at most ${TOKEN_MAX_LENGTH} are allowed`,
      EXIT.auth,
    )
  if (!TOKEN_CHARACTERS.test(token)) {
    const at = [...token].findIndex((char) => !TOKEN_CHARACTERS.test(char))
    const char = [...token][at]!
    throw new CliError(
      `CONSENT_BROKER_TOKEN is not an operator token: it holds ${characterKind(char)} (character ${at + 1}); a token is printable ASCII without spaces`,
      EXIT.auth,
    )
  }
  return token
}

/**
 * A URL as it may be shown in an error. One with an `@` anywhere is not shown at all: a password
 * may hold `/`, `?` or `#`, so no pattern can tell where user information ends in text that is not a
 * valid URL (`https://admin:s3cr#t@host` was printed in full).
 */
function shownUrl(url: string): string {
  return url.includes('@') ? '(not shown: it holds "@", maybe a password)' : `"${printable(url)}"`
}

/**
 * The broker's base URL (--url or CONSENT_BROKER_URL) without trailing slashes, once it is http(s)
 * with no credentials (fetch refuses them, and repeated the password in its error), query or
 * fragment (a base URL's query and fragment are dropped from every request: a mistake to point out).
 */
export function brokerUrl(raw: string | undefined): string {
  const url = raw?.replace(/\/+$/, '')
  if (url === undefined || url === '')
    throw usageError('give the broker URL with --url or CONSENT_BROKER_URL')
  const parsed = URL.canParse(url) ? new URL(url) : undefined
  if (parsed === undefined || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:'))
    throw usageError(`--url: ${shownUrl(url)} is not an http(s) URL`)
  if (parsed.username !== '' || parsed.password !== '')
    throw usageError(
      '--url: the URL holds a user name or password; give the broker URL without them (the operator token goes in CONSENT_BROKER_TOKEN)',
    )
  if (parsed.search !== '' || parsed.hash !== '')
    throw usageError('--url: give the broker base URL without a query (?…) or fragment (#…)')
  return url
}

/** An argument as an error may show it: control characters neutralised, cut at 80 characters. */
const shownArg = (value: string) => `${printable(value.slice(0, 80))}${value.length > 80 ? '…' : ''}`

/** A registration id argument (`registration <id>`, `revoke <id>`) of the form the API accepts. */
export function registrationIdArg(value: string | undefined, command: string): string {
  if (value === undefined || value === '') throw usageError(`${command}: give a registration id`)
  if (!REGISTRATION_ID.test(value))
    throw usageError(
      `${command}: "${shownArg(value)}" is not a registration id (letters, digits, '.', '_' or '-', starting with a letter or digit, at most 128 characters)${
        // a narrow table's cell, "…" and all
        value.includes('…') ? `\n${SHORT_ID_HINT}` : ''
      }`,
    )
  return value
}

/** A tenant id argument or --tenant value: a GUID, as the API accepts. */
export function tenantIdArg(value: string | undefined, what: string): string {
  if (value === undefined || value === '') throw usageError(`${what}: give a tenant id`)
  if (!TENANT_ID.test(value))
    throw usageError(
      `${what}: "${shownArg(value)}" is not a tenant id (a GUID such as 7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13)`,
    )
  return value
}
