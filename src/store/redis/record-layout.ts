// The compact layout of a registration record in Redis, and its translation to and from the
// logical record hash (registration-hash.ts, the field names the memory store and the outbox use).
//
// Why: Redis keeps a hash as a compact listpack only while every field and value is at most
// `hash-max-listpack-value` bytes (64 by default); one longer value (a sealed Key is ~104 bytes)
// turns the whole record into a hashtable, about three times bigger. So the record is written as:
//   - short field names (`a` app, `t` tenantId, …; `status` and `version` keep theirs: the Lua
//     scripts read them in both layouts), no `id` field (it is in the key name);
//   - timestamps as epoch ms (an integer in a listpack: 9 bytes instead of 24), updatedAt and
//     consentedAt left out while they equal createdAt;
//   - each sealed secret cut into 64-byte chunks `K0`, `K1`, … (Key), `R0`, … (refresh token),
//     `S0`, … (client secret), and so is the status detail (`D0`, …: a JSON object with an
//     upstream message), read back by joining consecutive chunks.
// Records written before (long field names, `id`, ISO times, whole sealed values) are read as
// they are: every reader takes the short name and falls back to the long one, and every write
// removes the long name of each field it sets, so a record may mix both until it is rewritten.
import type { RegistrationHash } from '../registration-hash.js'
import type { SecretField } from '../sealing.js'

/** Logical field → its short name in the compact layout. */
const SHORT: Readonly<Record<string, string>> = {
  app: 'a',
  cloud: 'c',
  tenantId: 't',
  kind: 'k',
  userOid: 'o',
  userName: 'u',
  name: 'n',
  ownClientId: 'oc',
  unshownKey: 'uk',
  status: 'status',
  createdAt: 'ca',
  updatedAt: 'ua',
  consentedAt: 'cs',
  version: 'version',
  lastIssuedAt: 'li',
  lastClient: 'lc',
  lastRefreshAt: 'lr',
}

/** Every short name (a stored field that is not a logical field's own name). */
const SHORT_NAMES: ReadonlySet<string> = new Set(
  Object.entries(SHORT)
    .filter(([logical, short]) => logical !== short)
    .map(([, short]) => short),
)

/** Logical fields holding an ISO 8601 time (stored as epoch ms when that round-trips exactly). */
const TIME_FIELDS: ReadonlySet<string> = new Set([
  'createdAt',
  'updatedAt',
  'consentedAt',
  'lastIssuedAt',
  'lastRefreshAt',
])

/** Sealed secret → the prefix of its chunks. */
export const CHUNK_PREFIX: Readonly<Record<SecretField, string>> = {
  key: 'K',
  refreshToken: 'R',
  clientSecret: 'S',
}

/** Every field stored in chunks (the secrets, and the status detail) → its chunk prefix. */
const CHUNKED: Readonly<Record<string, string>> = { ...CHUNK_PREFIX, statusDetail: 'D' }

/** A chunk's field name: a chunk prefix and a number. */
const CHUNK_NAME = new RegExp(`^[${Object.values(CHUNKED).join('')}]\\d+$`)

/** Longest chunk of a sealed value: Redis's default `hash-max-listpack-value`. */
export const CHUNK_BYTES = 64

/** The stored name of a logical field (short when it has one). */
export function storedName(logical: string): string {
  return SHORT[logical] ?? logical
}

/** Both names a reader asks for, short first: `[short, long]`, or `[name]` when they are equal. */
export function readNames(logical: string): string[] {
  const short = storedName(logical)
  return short === logical ? [logical] : [short, logical]
}

function storedTime(iso: string): string {
  const ms = Date.parse(iso)
  return Number.isFinite(ms) && new Date(ms).toISOString() === iso ? String(ms) : iso
}

function logicalTime(value: string): string {
  return /^\d+$/.test(value) ? new Date(Number(value)).toISOString() : value
}

/** `value` cut into chunk fields `<prefix>0`, `<prefix>1`, … (a flat field/value list). */
function chunkPairs(prefix: string, value: string): string[] {
  return chunksOf(value).flatMap((chunk, i) => [`${prefix}${i}`, chunk])
}

/** One logical field/value in the compact layout (a flat field/value list). */
function storedPairs(logical: string, value: string): string[] {
  const prefix = CHUNKED[logical]
  if (prefix !== undefined) return chunkPairs(prefix, value)
  return [storedName(logical), TIME_FIELDS.has(logical) ? storedTime(value) : value]
}

/** A new record (logical hash) in the compact layout, as HSET's field/value list. */
export function toStoredRecord(hash: RegistrationHash): string[] {
  const out: string[] = []
  for (const [field, value] of Object.entries(hash)) {
    if (field === 'id') continue
    if ((field === 'updatedAt' || field === 'consentedAt') && value === hash.createdAt) continue
    out.push(...storedPairs(field, value))
  }
  return out
}

/**
 * A versioned update's changes in the compact layout: fields to set, and fields to delete (the
 * short and long names of every deleted field, the long name of every field set; a deleted or
 * rewritten secret names its first chunk, and the script removes the chunks after the last one
 * written).
 */
export function toStoredChanges(
  set: RegistrationHash,
  del: readonly string[],
): { set: string[]; del: string[] } {
  const out: string[] = []
  const dels = new Set<string>()
  for (const [field, value] of Object.entries(set)) {
    out.push(...storedPairs(field, value))
    if (CHUNKED[field] !== undefined || storedName(field) !== field) dels.add(field)
  }
  for (const field of del) {
    dels.add(field)
    const prefix = CHUNKED[field]
    dels.add(prefix === undefined ? storedName(field) : `${prefix}0`)
  }
  return { set: out, del: [...dels] }
}

/** A sealed value's chunks (the values of `<prefix>0`, `<prefix>1`, …). */
export function chunksOf(sealed: string): string[] {
  const out: string[] = []
  for (let at = 0; at < sealed.length; at += CHUNK_BYTES) out.push(sealed.slice(at, at + CHUNK_BYTES))
  return out
}

/** The value of a chunked field in a stored record: its chunks joined, or the long field. */
function chunkedValue(stored: Readonly<Record<string, string | undefined>>, field: string, prefix: string) {
  if (stored[`${prefix}0`] === undefined) return stored[field]
  let value = ''
  for (let i = 0; stored[`${prefix}${i}`] !== undefined; i++) value += stored[`${prefix}${i}`]
  return value
}

/**
 * The logical hash of a stored record (either layout, or a mix): long names, ISO times, whole
 * sealed values, `id` from the key. Fields it doesn't know are left out.
 */
export function fromStored(
  id: string,
  stored: Readonly<Record<string, string | undefined>>,
): RegistrationHash {
  const hash: RegistrationHash = { id }
  for (const logical of Object.keys(SHORT)) {
    const value = stored[storedName(logical)] ?? stored[logical]
    if (value !== undefined) hash[logical] = TIME_FIELDS.has(logical) ? logicalTime(value) : value
  }
  if (hash.createdAt !== undefined) {
    hash.updatedAt ??= hash.createdAt
    hash.consentedAt ??= hash.createdAt
  }
  for (const [field, prefix] of Object.entries(CHUNKED)) {
    const value = chunkedValue(stored, field, prefix)
    if (value !== undefined) hash[field] = value
  }
  // a field this layout has no short name for is stored under its own name: read it as it is
  for (const [field, value] of Object.entries(stored)) {
    if (value === undefined || field === 'id' || SHORT_NAMES.has(field) || CHUNK_NAME.test(field)) continue
    hash[field] ??= value
  }
  return hash
}

/** Chunks HMGET asks for per chunked public field (a longer value is read with moreChunks). */
const READ_CHUNKS = 4

/**
 * Every stored name HMGET must ask for to read `logicalFields` in either layout (a chunked field:
 * its long name and its first chunks; `moreChunks` tells when a value may go on).
 */
export function storedNamesOf(logicalFields: readonly string[]): string[] {
  return logicalFields.flatMap((field) => {
    if (field === 'id') return []
    const prefix = CHUNKED[field]
    if (prefix === undefined) return readNames(field)
    return [field, ...Array.from({ length: READ_CHUNKS }, (_, i) => `${prefix}${i}`)]
  })
}

/** The chunk names after those storedNamesOf asks for, when a value filled every one it read. */
export function moreChunks(stored: Readonly<Record<string, string>>): string[] {
  const more: string[] = []
  for (const prefix of Object.values(CHUNKED)) {
    if (stored[`${prefix}${READ_CHUNKS - 1}`] === undefined) continue
    for (let i = READ_CHUNKS; i < READ_CHUNKS + 64; i++) more.push(`${prefix}${i}`)
  }
  return more
}

/** HMGET's reply for `storedNamesOf(fields)` as a sparse stored hash. */
export function zipStored(names: readonly string[], values: ReadonlyArray<string | null>) {
  const stored: Record<string, string> = {}
  names.forEach((name, i) => {
    const value = values[i]
    if (value !== null && value !== undefined) stored[name] = value
  })
  return stored
}

/**
 * The facts of an outbox entry in logical form: the Lua update script copies the stored record's
 * non-secret fields (either layout) plus `id` and `previousStatus`; entries written by the TS side
 * are logical already. Fields the record layout doesn't name (`previousStatus`, an upstream
 * entry's `retryAfterSeconds`, …) pass through.
 */
export function logicalFacts(facts: Readonly<Record<string, string>>): Record<string, string> {
  if (facts.id === undefined) return { ...facts }
  const known = new Set([...Object.keys(SHORT).flatMap(readNames), ...Object.keys(CHUNKED)])
  const out: Record<string, string> = {}
  for (const [field, value] of Object.entries(facts))
    if (!known.has(field) && !CHUNK_NAME.test(field)) out[field] = value
  const record = fromStored(facts.id, facts)
  for (const field of Object.keys(CHUNK_PREFIX)) delete record[field]
  return { ...out, ...record }
}

/**
 * Lua: a table of the chunked fields, `{long name, chunk prefix, secret}` each (the scripts trim
 * every chunked field, and leave the secrets out of the outbox facts).
 */
export const LUA_CHUNKED_FIELDS = `{${Object.entries(CHUNKED)
  .map(([long, prefix]) => `{'${long}', '${prefix}', ${Object.hasOwn(CHUNK_PREFIX, long)}}`)
  .join(', ')}}`
