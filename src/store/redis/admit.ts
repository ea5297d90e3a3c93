// The obtain-token admission on Redis: one script claims the request's replay marker and counts
// the per-registration window while the record is still active at the authenticated version. With
// a client (address) limit too, ADMIT_CLIENT does both limits and the claim in one round trip on a
// single server or Sentinel primary; a Cluster, or a sharded Redis behind one endpoint that refuses
// keys of two slots (CROSSSLOT), gets two commands instead.
import { rateLimitResult } from '../rate-window.js'
import type { RedisClient } from '../redis-connection.js'
import type { AdmitRequest, AdmitResult } from '../types.js'
import { admitArguments } from '../validation.js'
import type { RedisKeys } from './keys.js'
import { rateHit } from './rate-limiter.js'
import { ADMIT, ADMIT_CLIENT, runScript } from './scripts.js'

type AdmitReply = [0] | [1, number, number, number]

function admitted(reply: AdmitReply, limit: number): AdmitResult {
  if (reply[0] !== 1) return { current: false }
  const [, fresh, count, ttl] = reply
  return { current: true, fresh: fresh === 1, rate: rateLimitResult(count, limit, ttl) }
}

/** `RegistrationStore.admit` on Redis; remembers whether the server takes cross-slot scripts. */
export class RedisAdmission {
  /** False once the server refused ADMIT_CLIENT's keys of two slots (see admit). */
  #crossSlotScripts = true

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  /** See `RegistrationStore.admit`. */
  async admit(id: string, request: AdmitRequest): Promise<AdmitResult> {
    const { replayTtlMs, windowMs, clientWindowMs } = admitArguments(id, request)
    const keys = [this.keys.reg(id), this.keys.seen(id, request.replayMarker), this.keys.registrationRate(id)]
    // ADMIT's ARGV (scripts.ts)
    const args: Array<string | number> = [String(request.version), replayTtlMs, windowMs, request.limit]
    const { client } = request
    if (client === undefined || clientWindowMs === undefined) {
      const reply = (await runScript(this.redis, ADMIT, keys, args)) as AdmitReply
      return admitted(reply, request.limit)
    }
    if (this.redis.isCluster || !this.#crossSlotScripts) {
      return this.#admitInTwo(keys, args, request.limit, client, clientWindowMs)
    }
    let reply: number[]
    try {
      // {client count, client ms left} then, unless over the client's limit, ADMIT's reply
      keys.push(this.keys.rate(client.key))
      reply = (await runScript(this.redis, ADMIT_CLIENT, keys, [
        ...args,
        clientWindowMs,
        client.limit,
      ])) as number[]
    } catch (error) {
      // A sharded Redis behind one endpoint (a cluster proxy) refuses keys of two slots before
      // running anything: send two commands from now on, as on a Cluster.
      if (!(error instanceof Error) || !error.message.startsWith('CROSSSLOT')) throw error
      this.#crossSlotScripts = false
      keys.pop()
      return this.#admitInTwo(keys, args, request.limit, client, clientWindowMs)
    }
    const clientRate = rateLimitResult(reply[0]!, client.limit, reply[1]!)
    if (reply[2] !== 1) return { current: false, client: clientRate }
    return {
      current: true,
      fresh: reply[3] === 1,
      rate: rateLimitResult(reply[4]!, request.limit, reply[5]!),
      client: clientRate,
    }
  }

  /** admit's `client` hit first, then ADMIT: for keys in two hash slots (a Cluster, or a proxy). */
  async #admitInTwo(
    keys: string[],
    args: Array<string | number>,
    limit: number,
    client: { key: string; limit: number },
    clientWindowMs: number,
  ): Promise<AdmitResult> {
    const clientRate = await rateHit(this.redis, this.keys, client.key, client.limit, clientWindowMs)
    if (!clientRate.allowed) return { current: false, client: clientRate }
    const reply = (await runScript(this.redis, ADMIT, keys, args)) as AdmitReply
    return { ...admitted(reply, limit), client: clientRate }
  }
}
