// The secrets of the environment: the master-key ring that seals everything at rest (MASTER_KEYS)
// and the operators' bearer tokens (OPERATOR_TOKENS, hashed here, or OPERATOR_TOKEN_HASHES). A
// secret never enters a problem message.
import { KeyRing, parseMasterKeys } from '../crypto/envelope.js'
import { sha256Hex } from '../crypto/sha256.js'
import { operatorTokenFormProblem } from '../operator-token-form.js'
import type { EnvReader } from './env-reader.js'
import type { OperatorToken } from './types.js'

/** MASTER_KEYS as a key ring (newest first); undefined, with a problem, when missing or invalid. */
export function readKeyRing(read: EnvReader): KeyRing | undefined {
  const masterKeys = read.str('MASTER_KEYS')
  if (masterKeys === undefined) {
    read.problems.push('MASTER_KEYS: required ("id:base64-32-bytes", newest first, comma-separated)')
    return undefined
  }
  try {
    return new KeyRing(parseMasterKeys(masterKeys))
  } catch (error) {
    read.problems.push(`MASTER_KEYS: ${(error as Error).message}`)
    return undefined
  }
}

/** OPERATOR_TOKENS (plain, hashed here) and OPERATOR_TOKEN_HASHES; a secret never enters a problem. */
export function readOperatorTokens(read: EnvReader): OperatorToken[] {
  const { problems } = read
  const operatorTokens: OperatorToken[] = []
  const seenOperators = new Set<string>()
  for (const [name, hashed] of [
    ['OPERATOR_TOKENS', false],
    ['OPERATOR_TOKEN_HASHES', true],
  ] as const) {
    for (const entry of (read.str(name) ?? '')
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean)) {
      const colon = entry.indexOf(':')
      const operator = colon > 0 ? entry.slice(0, colon) : ''
      const secret = colon > 0 ? entry.slice(colon + 1) : ''
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(operator) || secret === '') {
        // A comma inside a token splits its entry in two: say so, since the half after it is what
        // lands here (never echoed: it is part of a secret).
        problems.push(
          `${name}: each entry must be "name:${hashed ? 'sha256hex' : 'token'}" (name: letters, digits, ".", "_", "-"), entries separated by commas${hashed ? '' : ', so a token can hold no comma'}`,
        )
        continue
      }
      if (seenOperators.has(operator)) problems.push(`${name}: operator "${operator}" appears twice`)
      seenOperators.add(operator)
      if (hashed) {
        if (!/^[0-9a-f]{64}$/i.test(secret))
          problems.push(`${name}: hash of "${operator}" is not 64 hex characters`)
        operatorTokens.push({ name: operator, sha256: secret.toLowerCase() })
      } else {
        if (secret.length < 24)
          problems.push(`${name}: token of "${operator}" must be at least 24 characters`)
        // A token the authenticator would never compare is refused now, not at the first sign-in.
        const formProblem = operatorTokenFormProblem(secret)
        if (formProblem !== undefined) problems.push(`${name}: token of "${operator}" ${formProblem}`)
        operatorTokens.push({ name: operator, sha256: sha256Hex(secret) })
      }
    }
  }
  return operatorTokens
}
