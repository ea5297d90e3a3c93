// `npm run emulator`: the Entra ID emulator as a standalone process for the demo.
//   EMULATOR_HOST (127.0.0.1), EMULATOR_PORT (3001), EMULATOR_BASE_URL (issuer base if it differs from
//   http://host:port, e.g. behind docker port mapping), EMULATOR_REDIRECT_URIS (comma list registered on
//   every demo client), EMULATOR_ACCESS_TOKEN_LIFETIME_SEC (3600).
import { DEMO_CLIENTS, DEMO_TENANTS, DEMO_USERS } from './demo-data.js'
import { startEmulator } from './server.js'

const host = process.env.EMULATOR_HOST || '127.0.0.1'
const port = Number(process.env.EMULATOR_PORT || 3001)
const redirectUris = (process.env.EMULATOR_REDIRECT_URIS ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)
const lifetime = process.env.EMULATOR_ACCESS_TOKEN_LIFETIME_SEC
  ? Number(process.env.EMULATOR_ACCESS_TOKEN_LIFETIME_SEC)
  : undefined

if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`Invalid EMULATOR_PORT: ${process.env.EMULATOR_PORT}`)
  process.exit(1)
}

const emulator = await startEmulator({
  host,
  port,
  redirectUris,
  ...(process.env.EMULATOR_BASE_URL ? { baseUrl: process.env.EMULATOR_BASE_URL } : {}),
  ...(lifetime !== undefined && Number.isInteger(lifetime) && lifetime > 0
    ? { accessTokenLifetimeSec: lifetime }
    : {}),
})

const tenantName = (tid: string) => DEMO_TENANTS.find((t) => t.tid === tid)?.displayName ?? tid
console.log(`Entra ID emulator listening on ${emulator.url}`)
console.log(
  `  authority: ${emulator.url}  (e.g. ${emulator.url}/organizations/v2.0/.well-known/openid-configuration)`,
)
console.log('  tenants:')
for (const t of DEMO_TENANTS) console.log(`    ${t.displayName.padEnd(10)} ${t.tid}  ${t.domain}`)
console.log('  users (sign in with the username, no password):')
for (const u of DEMO_USERS) {
  const role = u.roles.length > 0 ? 'Global Administrator' : 'user'
  console.log(`    ${u.username.padEnd(24)} ${tenantName(u.tid).padEnd(10)} ${role}`)
}
console.log('  clients:')
for (const c of DEMO_CLIENTS) {
  console.log(`    ${`${c.name} (${c.cloud ?? 'global'})`.padEnd(34)} ${c.clientId}  ${c.clientSecret}`)
}
if (redirectUris.length > 0) console.log(`  extra redirect URIs: ${redirectUris.join(', ')}`)

let closing = false
const shutdown = (signal: string) => {
  if (closing) return
  closing = true
  console.log(`${signal} received, shutting down`)
  emulator.close().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err)
      process.exit(1)
    },
  )
}
process.on('SIGINT', () => shutdown('SIGINT'))
process.on('SIGTERM', () => shutdown('SIGTERM'))
