// The SSRF guard of webhook delivery: an endpoint's host must resolve to public addresses only
// (unless WEBHOOK_ALLOW_PRIVATE_ADDRESSES=true). Checked when an endpoint is added and again on
// every connection, on the very addresses the socket uses (a DNS answer that changes between the
// two — DNS rebinding — is caught at connect time).
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { BlockList, isIP } from 'node:net'

const BLOCKED = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  BLOCKED.addSubnet(net, prefix, 'ipv4')
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
] as const)
  BLOCKED.addSubnet(net, prefix, 'ipv6')

/** True for loopback, private, link-local, shared, multicast and reserved addresses. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address)
  if (family === 4) return BLOCKED.check(address, 'ipv4')
  if (family === 6) {
    // an IPv4-mapped IPv6 address is checked as the IPv4 address it is
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
    if (mapped?.[1] !== undefined) return BLOCKED.check(mapped[1], 'ipv4')
    return BLOCKED.check(address, 'ipv6')
  }
  return true // not an address at all: never trusted
}

/** Thrown (and recorded as the attempt's error) when an endpoint resolves to a refused address. */
export class RefusedAddressError extends Error {
  override readonly name = 'RefusedAddressError'
}

/** Resolves `hostname` to every address it has. */
export function resolveAll(hostname: string): Promise<LookupAddress[]> {
  const bare = hostname.replace(/^\[|\]$/g, '')
  if (isIP(bare) !== 0) return Promise.resolve([{ address: bare, family: isIP(bare) }])
  return new Promise((resolve, reject) => {
    dnsLookup(bare, { all: true }, (error, addresses) => (error ? reject(error) : resolve(addresses)))
  })
}

/** Refuses (RefusedAddressError) when any address of `hostname` is private and that isn't allowed. */
export async function checkHost(hostname: string, allowPrivate: boolean): Promise<void> {
  const addresses = await resolveAll(hostname)
  if (addresses.length === 0) throw new RefusedAddressError(`${hostname} does not resolve`)
  if (allowPrivate) return
  const refused = addresses.find((a) => isPrivateAddress(a.address))
  if (refused !== undefined)
    throw new RefusedAddressError(
      `${hostname} resolves to a private or loopback address (${refused.address}); set WEBHOOK_ALLOW_PRIVATE_ADDRESSES=true to allow it`,
    )
}

type LookupCallback = (error: Error | null, address: string | LookupAddress[], family?: number) => void

/**
 * A `lookup` for http(s).request that resolves and refuses private addresses on the connection
 * itself, in whichever shape the socket asks for (one address, or all of them).
 */
export function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: { all?: boolean }, callback: LookupCallback): void => {
    resolveAll(hostname).then(
      (addresses) => {
        const refused = allowPrivate ? undefined : addresses.find((a) => isPrivateAddress(a.address))
        if (refused !== undefined) {
          callback(
            new RefusedAddressError(
              `${hostname} resolved to a private or loopback address (${refused.address})`,
            ),
            '',
          )
          return
        }
        if (options.all) callback(null, addresses)
        else callback(null, addresses[0]?.address ?? '', addresses[0]?.family ?? 4)
      },
      (error: Error) => callback(error, ''),
    )
  }
}
