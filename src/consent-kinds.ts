// The two ways an app is consented to, named once below config and store: config reads an app's
// kind from the apps file, the store keeps it on every registration.

/** `admin`: tenant-wide admin consent (client credentials); `delegated`: one user's refresh token. */
export const CONSENT_KINDS = ['admin', 'delegated'] as const

/** How an app (and each of its registrations) is consented to; see {@link CONSENT_KINDS}. */
export type ConsentKind = (typeof CONSENT_KINDS)[number]
