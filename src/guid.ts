// The GUID shape Microsoft uses for tenant, object, client and role ids: one pattern for every
// check in the broker (code and JSON schemas), either case, as Entra accepts both.

/** JSON-schema `pattern` of a GUID (`8-4-4-4-12` hex digits, either case); no flags needed. */
export const GUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'

const GUID = new RegExp(GUID_PATTERN)

/** Whether `value` is a GUID in either case (braces and other spellings are not accepted). */
export function isGuid(value: string): boolean {
  return GUID.test(value)
}
