// The SSRF guard of webhook delivery: an endpoint's host must resolve to global unicast addresses
// only (unless WEBHOOK_ALLOW_PRIVATE_ADDRESSES=true). Checked when an endpoint is added and again on
// every connection, on the very addresses the socket uses (a DNS answer that changes between the
// two — DNS rebinding — is caught at connect time).
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'

// IPv6 global unicast (RFC 4291): everything outside it — ::/96 IPv4-compatible, ::ffff:0:0:0/96
// translated, 64:ff9b::/96 and 64:ff9b:1::/48 NAT64, 100::/64, fc00::/7, fec0::/10, fe80::/10,
// ff00::/8 and the unassigned rest — is refused without having to be listed. NAT64 is refused
// whatever IPv4 it carries: a local-use prefix may put it at several offsets, so it can't be read.
const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3')

/**
 * True for every address that is not global unicast (an allowlist: a form nobody listed is
 * refused). IPv4 must be outside every special-purpose range ipaddr.js knows (0/8, 10/8,
 * 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24, the documentation nets, 192.88.99/24,
 * 192.168/16, 198.18/15, multicast, 240/4, broadcast, AS112, AMT). IPv6 must be in 2000::/3 and
 * outside the special blocks there: Teredo and the rest of 2001::/23, 6to4 2002::/16 (both refused
 * whole rather than judged by the IPv4 inside: deprecated tunnels no receiver needs, whose
 * embedding takes decoding to read), documentation 2001:db8::/32 and 3fff::/20, AS112. The one
 * IPv4 embedding judged as its IPv4 address is ::ffff:0:0/96, the form dual-stack sockets use.
 */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address)
  if (family === 4) return ipaddr.IPv4.parse(address).range() !== 'unicast'
  if (family !== 6) return true // not an address at all: never trusted
  const v6 = parseIPv6(address)
  if (v6 === undefined) return true
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().range() !== 'unicast'
  return !v6.match(GLOBAL_UNICAST_V6) || v6.range() !== 'unicast'
}

function parseIPv6(address: string) {
  try {
    // ipaddr.js reads `::a.b.c.d` as IPv4-mapped, but it is IPv4-compatible (RFC 4291), so the URL
    // parser writes the address in hex groups first; it refuses a zone index (`%eth0`), and so do we
    return ipaddr.IPv6.parse(new URL(`http://[${address}]/`).hostname.slice(1, -1))
  } catch {
    return undefined
  }
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

/** Refuses (RefusedAddressError) when any address of `hostname` is not global unicast and that isn't allowed. */
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
 * A `lookup` for http(s).request that resolves and refuses non-global addresses on the connection
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
