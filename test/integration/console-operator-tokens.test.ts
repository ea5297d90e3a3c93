// Console sessions follow the operator tokens: a session opened on one instance, then read by an
// instance started on the same store and secrets with the operator removed or their token changed
// (the documented response to a leaked token), is over — its pages send the browser to the
// sign-in, its forms answer 401 even with the session's CSRF token, and its record is deleted. A
// session whose operator keeps their token carries on across the restart.
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { bearer, consoleSignIn, csrfOf, operatorToken, storedSession } from '../support/admin-helpers.js'
import { browse, type CookieJar, type RunningBroker, startBroker } from '../support/broker.js'
import { randomMasterKeys } from '../support/config.js'
import { useEmulator } from '../support/emulator.js'

const emulator = useEmulator()
const ALICE = operatorToken('alice')
const BOB = operatorToken('bob')
const running: RunningBroker[] = []

afterEach(async () => {
  while (running.length > 0) await running.pop()?.close()
})

/** The instances of one deployment: each started with its own OPERATOR_TOKENS, all else shared. */
function deployment() {
  const shared = {
    keyPrefix: `test:${randomBytes(6).toString('hex')}:`,
    MASTER_KEYS: randomMasterKeys(),
    COOKIE_SECRET: randomBytes(32).toString('hex'),
  }
  return async (operatorTokens: string): Promise<RunningBroker> => {
    const broker = await startBroker({
      authorityUrl: emulator.url,
      redisUrl: inject('redisUrl'),
      keyPrefix: shared.keyPrefix,
      env: {
        MASTER_KEYS: shared.MASTER_KEYS,
        COOKIE_SECRET: shared.COOKIE_SECRET,
        OPERATOR_TOKENS: operatorTokens,
      },
    })
    running.push(broker)
    return broker
  }
}

/** Signs in on `broker`; returns the browser and the CSRF token of its session (from the keys page). */
async function signedIn(broker: RunningBroker, token: string): Promise<{ jar: CookieJar; csrf: string }> {
  const { jar, response } = await consoleSignIn(broker.app, token)
  expect(response.statusCode).toBe(303)
  const keys = await browse(broker.app, jar, { url: '/admin/keys' })
  expect(keys.statusCode).toBe(200)
  return { jar, csrf: csrfOf(keys.body) }
}

/** What the session in `jar` can still do on `broker`: open the home page, start a key rotation. */
async function sessionPower(broker: RunningBroker, jar: CookieJar, csrf: string) {
  const home = await browse(broker.app, jar, { url: '/admin/home' })
  const rotate = await browse(broker.app, jar, { method: 'POST', url: '/admin/keys/rotate', form: { csrf } })
  return { home: home.statusCode, homeLocation: home.headers.location, rotate: rotate.statusCode }
}

/** What a session can do (see sessionPower) once ended: the sign-in page, and no form is taken. */
const ENDED = { home: 303, homeLocation: '/admin/sign-in', rotate: 401 }
/** What a live session can do: its home page, and a form (start a key rotation) taken. */
const WORKING = { home: 200, homeLocation: undefined, rotate: 303 }

describe('console sessions after the operator tokens change', () => {
  it('end for an operator removed from the configuration; the others carry on', async () => {
    const instance = deployment()
    const first = await instance(`alice:${ALICE},bob:${BOB}`)
    const alice = await signedIn(first, ALICE)
    const bob = await signedIn(first, BOB)
    const alicesCookie = alice.jar.get('cb_admin')!
    expect((await storedSession(first, 'admin-session', alicesCookie)).record).not.toBeNull()

    const second = await instance(`bob:${BOB}`)
    expect((await second.app.inject({ url: '/admin/api/tenants', headers: bearer(ALICE) })).statusCode).toBe(
      401,
    )
    expect(await sessionPower(second, alice.jar, alice.csrf)).toEqual(ENDED)
    // Audited, with its cause: an incident's timeline shows when the session ended.
    const { items } = await second.store.audit.read({ order: 'desc', limit: 20 })
    expect(items.filter((e) => e.type === 'operator.signed_out' && e.actor === 'operator:alice')).toEqual([
      expect.objectContaining({ detail: { via: 'console', ended: 'credential_withdrawn' } }),
    ])
    // Ended for good: deleted from the store, so not even an instance still on the old
    // configuration opens it any more.
    expect((await storedSession(second, 'admin-session', alicesCookie)).record).toBeNull()
    expect((await browse(first.app, alice.jar, { url: '/admin/home' })).statusCode).toBe(303)

    expect(await sessionPower(second, bob.jar, bob.csrf)).toEqual(WORKING)
  })

  it('end for an operator whose token was replaced; the new token signs in', async () => {
    const instance = deployment()
    const first = await instance(`alice:${ALICE},bob:${BOB}`)
    const alice = await signedIn(first, ALICE)

    const rotated = operatorToken('alice')
    const second = await instance(`alice:${rotated},bob:${BOB}`)
    expect((await second.app.inject({ url: '/admin/api/tenants', headers: bearer(ALICE) })).statusCode).toBe(
      401,
    )
    expect(await sessionPower(second, alice.jar, alice.csrf)).toEqual(ENDED)
    expect((await storedSession(second, 'admin-session', alice.jar.get('cb_admin')!)).record).toBeNull()

    const renewed = await signedIn(second, rotated)
    expect(await sessionPower(second, renewed.jar, renewed.csrf)).toEqual(WORKING)
  })

  it('carry on across a restart with the same tokens, on any instance', async () => {
    const instance = deployment()
    const first = await instance(`alice:${ALICE},bob:${BOB}`)
    const alice = await signedIn(first, ALICE)
    await first.close()
    running.splice(running.indexOf(first), 1)

    const restarted = await instance(`alice:${ALICE},bob:${BOB}`)
    expect(await sessionPower(restarted, alice.jar, alice.csrf)).toEqual(WORKING)
  })
})
