import {
  base64url,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
  SignJWT,
} from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import { expectedIssuer, IdTokenError, verifyIdToken } from '../../src/entra/id-token.js'
import { UpstreamError } from '../../src/entra/types.js'

const AUTHORITY = 'https://login.example.test'
const TEMPLATE = `${AUTHORITY}/{tenantid}/v2.0`
const CLIENT_ID = '0b1e6a52-7c3d-4f8e-9a10-000000000001'
const TID = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'
const OTHER_TID = 'a9e4f7c2-1b3d-4e5f-8a7b-6c5d4e3f2a10'
const OID = '3f6c2a1e-8b4d-4c7a-9e15-0a1b2c3d4e01'
const NONCE = 'nonce-of-this-flow'
const GLOBAL_ADMIN = '62e90394-69f5-4237-9190-012177145e10'

type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey']

let signingKey: SigningKey
let attackerKey: SigningKey
let keys: JWTVerifyGetKey
const KID = 'key-1'

beforeAll(async () => {
  const pair = await generateKeyPair('RS256')
  signingKey = pair.privateKey
  attackerKey = (await generateKeyPair('RS256')).privateKey
  const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: KID, alg: 'RS256', use: 'sig' }
  keys = createLocalJWKSet({ keys: [jwk] })
})

function claims(overrides: JWTPayload = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000)
  return {
    iss: expectedIssuer(TEMPLATE, TID),
    aud: CLIENT_ID,
    iat: now,
    nbf: now,
    exp: now + 3600,
    sub: 'pairwise-subject',
    tid: TID,
    oid: OID,
    nonce: NONCE,
    preferred_username: 'admin@contoso.example',
    name: 'Contoso Admin',
    wids: [GLOBAL_ADMIN],
    ...overrides,
  }
}

async function sign(payload: JWTPayload, key: SigningKey = signingKey, kid = KID): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid }).sign(key)
}

const expectations = { clientId: CLIENT_ID, issuerTemplate: TEMPLATE, nonce: NONCE }

async function rejection(token: string): Promise<IdTokenError> {
  const error = await verifyIdToken(token, keys, expectations).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(IdTokenError)
  return error as IdTokenError
}

describe('verifyIdToken', () => {
  it('accepts a valid token and maps its claims', async () => {
    const verified = await verifyIdToken(await sign(claims()), keys, expectations)
    expect(verified).toEqual({
      tid: TID,
      oid: OID,
      preferredUsername: 'admin@contoso.example',
      name: 'Contoso Admin',
      wids: [GLOBAL_ADMIN],
    })
  })

  it('defaults wids to an empty list and tolerates absent names', async () => {
    const { wids: _wids, name: _name, preferred_username: _user, ...rest } = claims()
    const verified = await verifyIdToken(await sign(rest), keys, expectations)
    expect(verified.wids).toEqual([])
    expect(verified.name).toBe('')
    expect(verified.preferredUsername).toBe('')
  })

  it('takes the UPN from the upn claim when preferred_username is absent', async () => {
    const { preferred_username: _user, ...rest } = claims()
    const verified = await verifyIdToken(
      await sign({ ...rest, upn: 'ada@contoso.example' }),
      keys,
      expectations,
    )
    expect(verified.preferredUsername).toBe('ada@contoso.example')
    const both = await verifyIdToken(
      await sign({ ...claims(), upn: 'other@contoso.example' }),
      keys,
      expectations,
    )
    expect(both.preferredUsername).toBe('admin@contoso.example')
  })

  it('rejects a token signed by another key under the same kid', async () => {
    const error = await rejection(await sign(claims(), attackerKey))
    expect(error.reason).toBe('signature')
  })

  it('rejects a token whose kid is not in the key set', async () => {
    const error = await rejection(await sign(claims(), signingKey, 'unknown-kid'))
    expect(error.reason).toBe('unknown_key')
  })

  it('rejects an issuer of another tenant than the token’s tid', async () => {
    const error = await rejection(await sign(claims({ iss: expectedIssuer(TEMPLATE, OTHER_TID) })))
    expect(error.reason).toBe('issuer')
  })

  it('rejects an issuer on another host, and the literal template', async () => {
    expect((await rejection(await sign(claims({ iss: `https://evil.example/${TID}/v2.0` })))).reason).toBe(
      'issuer',
    )
    expect((await rejection(await sign(claims({ iss: TEMPLATE })))).reason).toBe('issuer')
  })

  it('rejects a tid that is not a GUID, even when the issuer matches it', async () => {
    const tid = 'contoso.example'
    const error = await rejection(await sign(claims({ tid, iss: expectedIssuer(TEMPLATE, tid) })))
    expect(error.reason).toBe('claim_tid')
  })

  it('rejects a token for another client', async () => {
    const error = await rejection(await sign(claims({ aud: '0b1e6a52-7c3d-4f8e-9a10-000000000099' })))
    expect(error.reason).toBe('claim_aud')
  })

  it('rejects a token with several audiences, ours among them', async () => {
    const error = await rejection(await sign(claims({ aud: [CLIENT_ID, 'someone-else'] })))
    expect(error.reason).toBe('claim_aud')
  })

  it('rejects a wrong nonce and a missing nonce', async () => {
    expect((await rejection(await sign(claims({ nonce: 'another-flow' })))).reason).toBe('nonce')
    const { nonce: _nonce, ...withoutNonce } = claims()
    expect((await rejection(await sign(withoutNonce))).reason).toBe('claim_nonce')
  })

  it('rejects an expired token beyond the clock tolerance', async () => {
    const now = Math.floor(Date.now() / 1000)
    const error = await rejection(await sign(claims({ iat: now - 7200, nbf: now - 7200, exp: now - 600 })))
    expect(error.reason).toBe('expired')
  })

  it('rejects a token that is not valid yet', async () => {
    const now = Math.floor(Date.now() / 1000)
    const error = await rejection(await sign(claims({ nbf: now + 600 })))
    expect(error.reason).toBe('claim_nbf')
  })

  it('rejects an unsigned token (alg none)', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))
    const payload = base64url.encode(JSON.stringify(claims()))
    const error = await rejection(`${header}.${payload}.`)
    expect(error).toBeInstanceOf(IdTokenError)
  })

  it('rejects an HMAC token (algorithm confusion)', async () => {
    const secret = new TextEncoder().encode('a-shared-secret-of-enough-length-123456')
    const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: KID }).sign(secret)
    expect((await rejection(token)).reason).toBe('algorithm')
  })

  it('rejects a missing or malformed oid', async () => {
    const { oid: _oid, ...withoutOid } = claims()
    expect((await rejection(await sign(withoutOid))).reason).toBe('claim_oid')
    expect((await rejection(await sign(claims({ oid: 'not-a-guid' })))).reason).toBe('claim_oid')
  })

  it('rejects wids that are not a list of strings', async () => {
    expect((await rejection(await sign(claims({ wids: GLOBAL_ADMIN })))).reason).toBe('claim_wids')
  })

  it('rejects garbage', async () => {
    expect((await rejection('not.a.jwt')).reason).toBe('malformed')
  })

  it('passes an UpstreamError from the key getter through (identity provider down, not a bad token)', async () => {
    const down: JWTVerifyGetKey = async () => {
      throw new UpstreamError('unavailable', 'signing keys: could not fetch the identity provider keys')
    }
    const error = await verifyIdToken(await sign(claims()), down, expectations).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(UpstreamError)
    expect((error as UpstreamError).kind).toBe('unavailable')
  })

  it('normalises tid and oid to lower case for storage', async () => {
    const upperTid = TID.toUpperCase()
    const verified = await verifyIdToken(
      await sign(claims({ tid: upperTid, oid: OID.toUpperCase(), iss: expectedIssuer(TEMPLATE, upperTid) })),
      keys,
      expectations,
    )
    expect(verified.tid).toBe(TID)
    expect(verified.oid).toBe(OID)
  })
})
