// The form an operator token takes: one definition for the configuration, which refuses at start-up
// a token in OPERATOR_TOKENS that could never sign in, and for the authenticator
// (services/operator-auth.ts), which compares only tokens of this form. Below both, so each imports it.

/** Longest token compared: a longer one is junk, and hashing it would be work for nothing. */
export const OPERATOR_TOKEN_MAX_LENGTH = 512

/**
 * Printable ASCII without the space (U+0021–U+007E): what an `Authorization: Bearer` header carries
 * unchanged. Its token ends at white space, and other characters are refused by HTTP clients or the
 * server's parser, or arrive decoded differently from how the environment holds them.
 */
const TOKEN_CHARACTERS = /^[\x21-\x7e]+$/

/** What is wrong with `token`'s form, worded to follow `token of "<name>"`; undefined when nothing. */
export function operatorTokenFormProblem(token: string): string | undefined {
  if (token.length > OPERATOR_TOKEN_MAX_LENGTH)
    return `must be at most ${OPERATOR_TOKEN_MAX_LENGTH} characters`
  if (!TOKEN_CHARACTERS.test(token))
    return 'must be printable ASCII without spaces (what an Authorization: Bearer header carries)'
  return undefined
}

/** Whether `token` has an operator token's form (it may still be no operator's token). */
export function isOperatorTokenForm(token: string): boolean {
  return operatorTokenFormProblem(token) === undefined
}
