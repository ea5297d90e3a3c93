// What a store refuses, said in the store's own terms: a malformed argument (a cursor it did not
// hand out), a conflict (a change storage refuses, e.g. un-revoking), a missing record. The store
// knows nothing of HTTP or of the broker's error codes; services and the one error handler turn
// a StoreFact into the catalogued BrokerError (src/errors.ts, `storeFactError`).

/** The kinds of refusal a store reports. */
export type StoreFactKind = 'invalid_argument' | 'conflict' | 'not_found'

/** A store's refusal of an operation; `code` is its kind, `message` is safe to show. */
export class StoreFact extends Error {
  override readonly name = 'StoreFact'
  /** What kind of refusal this is. */
  readonly code: StoreFactKind

  constructor(code: StoreFactKind, message: string) {
    super(message)
    this.code = code
  }
}

/** True for a StoreFact. */
export function isStoreFact(value: unknown): value is StoreFact {
  return value instanceof StoreFact
}

/** A listing cursor this store did not hand out. */
export function malformedCursor(): StoreFact {
  return new StoreFact('invalid_argument', 'cursor is malformed')
}

/** An audit cursor that is not a record id of the audit log. */
export function malformedAuditCursor(): StoreFact {
  return new StoreFact('invalid_argument', 'audit cursor is malformed')
}

/** An audit cursor shaped as a record id whose parts are past what a stream id holds. */
export function auditCursorOutOfRange(): StoreFact {
  return new StoreFact(
    'invalid_argument',
    'audit cursor is out of range: both numbers of <ms>-<seq> are at most 18446744073709551615',
  )
}

/** A patch that would bring revoked registration `id` back: revocation is final. */
export function revokedIsFinal(id: string): StoreFact {
  return new StoreFact('conflict', `registration ${id} is revoked; revocation is final`)
}
