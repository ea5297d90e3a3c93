// Why a registration needs consent again, in plain words: one text per family of Entra codes,
// with what the tenant's admin (or the user) should do. The same text goes into the
// `registration.needs_consent` notification and the obtain-token `consent_required` error, so the
// operator, the integration's error and the tenant admin all read the same explanation.

/** A family of reasons Entra stops accepting a grant. */
export type ConsentReasonFamily =
  | 'inactivity'
  | 'sign_in_frequency'
  | 'credentials_changed'
  | 'consent_removed'
  | 'no_refresh_token'
  | 'other'

/** The explanation of one `needs_consent` code. */
export interface ConsentReason {
  readonly family: ConsentReasonFamily
  /** The stored code, e.g. `AADSTS700082`. */
  readonly code: string
  /** What happened, in plain words. */
  readonly reason: string
  /** What the tenant's administrator (or the user) should do. */
  readonly action: string
}

const FAMILIES: ReadonlyArray<{
  codes: readonly string[]
  family: ConsentReasonFamily
  reason: string
  action: string
}> = [
  {
    codes: ['AADSTS700082'],
    family: 'inactivity',
    reason: 'the refresh token expired through inactivity: it was not used for 90 days (AADSTS700082)',
    action: 'sign in again at the consent link; the broker keeps the new grant alive from then on',
  },
  {
    codes: ['AADSTS70043', 'AADSTS70044'],
    family: 'sign_in_frequency',
    reason:
      "a Conditional Access sign-in frequency policy in the customer's tenant ended the session (AADSTS70043/70044)",
    action:
      'sign in again at the consent link; to stop it recurring, exclude the integration from the sign-in frequency policy or lengthen its interval',
  },
  {
    codes: ['AADSTS50173', 'AADSTS50132'],
    family: 'credentials_changed',
    reason:
      "the user's password was reset or an administrator revoked the user's sessions, which invalidates the grant (AADSTS50173/50132)",
    action: 'the user signs in again at the consent link with the current password',
  },
  {
    codes: ['AADSTS65001', 'AADSTS700016', 'AADSTS7000112', 'AADSTS500011'],
    family: 'consent_removed',
    reason:
      "the consent was removed in the customer's tenant, or the application is missing or disabled there (AADSTS65001/700016)",
    action:
      "a tenant administrator opens the consent link and grants consent again (check the enterprise application wasn't deleted or disabled)",
  },
  {
    codes: ['no_refresh_token'],
    family: 'no_refresh_token',
    reason: 'the broker holds no refresh token for this registration',
    action: 'sign in again at the consent link',
  },
]

/** The plain-language reason for a `needs_consent` code (any other code: a generic one naming it). */
export function consentReason(code: string | undefined): ConsentReason {
  const stored = code ?? 'unknown'
  const normalized = stored.toUpperCase()
  for (const family of FAMILIES) {
    if (family.codes.some((c) => c.toUpperCase() === normalized)) {
      return { family: family.family, code: stored, reason: family.reason, action: family.action }
    }
  }
  return {
    family: 'other',
    code: stored,
    reason: `Microsoft Entra ID no longer accepts this consent (${stored})`,
    action: 'consent again at the consent link; if it keeps happening, check the application in the tenant',
  }
}
