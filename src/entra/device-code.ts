// The device code grant (RFC 8628) on the wire, through openid-client: start a device authorization
// and make ONE poll of the token endpoint. openid-client's own polling loop
// (pollDeviceAuthorizationGrant) waits in-process until the end; the broker instead polls from
// whichever instance holds the flow's lease, one request at a time (services/device-code-poller.ts).
import * as oidc from 'openid-client'
import type { DeviceAuthorization, DevicePoll, VerifiedIdToken } from './types.js'
import { UpstreamError } from './types.js'

/** RFC 8628's default when the answer names no interval. */
const DEFAULT_INTERVAL_SECONDS = 5
const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code'

/** Starts a device authorization at the configuration's tenant for `scopes`. */
export async function requestDeviceAuthorization(
  configuration: oidc.Configuration,
  scopes: readonly string[],
): Promise<DeviceAuthorization> {
  const answer = await oidc.initiateDeviceAuthorization(configuration, { scope: scopes.join(' ') })
  const interval =
    typeof answer.interval === 'number' && Number.isFinite(answer.interval) && answer.interval > 0
      ? answer.interval
      : DEFAULT_INTERVAL_SECONDS
  return {
    deviceCode: answer.device_code,
    userCode: answer.user_code,
    verificationUri: answer.verification_uri,
    expiresIn: answer.expires_in,
    interval,
  }
}

/**
 * One poll: `pending` / `slow_down` as answers, the user's tokens (ID token validated by `verify`)
 * when granted; any other error is thrown for the caller to classify.
 */
export async function pollDeviceCode(
  configuration: oidc.Configuration,
  deviceCode: string,
  verify: (idToken: string) => Promise<VerifiedIdToken>,
): Promise<DevicePoll> {
  let response: oidc.TokenEndpointResponse
  try {
    response = await oidc.genericGrantRequest(configuration, DEVICE_CODE_GRANT, { device_code: deviceCode })
  } catch (error) {
    if (error instanceof oidc.ResponseBodyError) {
      if (error.error === 'authorization_pending') return { status: 'pending' }
      if (error.error === 'slow_down') return { status: 'slow_down' }
    }
    throw error
  }
  if (typeof response.id_token !== 'string' || response.id_token === '') {
    throw new UpstreamError('unavailable', 'device code poll: answer has no id_token', { status: 200 })
  }
  const idToken = await verify(response.id_token)
  return {
    status: 'granted',
    tokens: {
      idToken,
      ...(response.access_token === '' ? {} : { accessToken: response.access_token }),
      ...(typeof response.refresh_token === 'string' && response.refresh_token !== ''
        ? { refreshToken: response.refresh_token }
        : {}),
    },
  }
}
