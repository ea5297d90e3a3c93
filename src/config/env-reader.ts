// Typed reads of one environment for loadConfig (env.ts): each read either answers or records a
// named problem and answers its fallback, so every problem of a configuration is reported at once.
import type { Env } from './types.js'

/** Whether a URL's hostname is this machine (http is allowed there without UNSAFE_ALLOW_HTTP). */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]' || hostname === '::1'
}

/** Typed reads of one environment; a bad value becomes a named problem and its fallback is used. */
export class EnvReader {
  readonly problems: string[] = []
  constructor(readonly env: Env) {}

  str(name: string): string | undefined {
    const value = this.env[name]?.trim()
    return value === undefined || value === '' ? undefined : value
  }

  bool(name: string, fallback: boolean): boolean {
    const value = this.str(name)
    if (value === undefined) return fallback
    if (/^(1|true|yes|on)$/i.test(value)) return true
    if (/^(0|false|no|off)$/i.test(value)) return false
    this.problems.push(`${name}: expected true or false, got "${value}"`)
    return fallback
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const value = this.str(name)
    if (value === undefined) return fallback
    const parsed = Number(value)
    if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
      this.problems.push(`${name}: expected an integer from ${min} to ${max}, got "${value}"`)
      return fallback
    }
    return parsed
  }

  /** A decimal number from `min` to `max` (e.g. a fraction). */
  decimal(name: string, fallback: number, min: number, max: number): number {
    const value = this.str(name)
    if (value === undefined) return fallback
    const parsed = Number(value)
    if (!/^\d+(\.\d+)?$/.test(value) || parsed < min || parsed > max) {
      this.problems.push(`${name}: expected a number from ${min} to ${max}, got "${value}"`)
      return fallback
    }
    return parsed
  }

  oneOf<T extends string>(name: string, choices: readonly T[], fallback: T): T {
    const value = this.str(name)
    if (value === undefined) return fallback
    if ((choices as readonly string[]).includes(value)) return value as T
    this.problems.push(`${name}: expected one of ${choices.join(', ')}, got "${value}"`)
    return fallback
  }

  hostPorts(name: string): Array<{ host: string; port: number }> | undefined {
    const value = this.str(name)
    if (value === undefined) return undefined
    const out: Array<{ host: string; port: number }> = []
    for (const entry of value
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean)) {
      const match = /^(.+):(\d{1,5})$/.exec(entry)
      if (!match) {
        this.problems.push(`${name}: "${entry}" is not host:port`)
        continue
      }
      out.push({ host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(match[2]) })
    }
    return out
  }
}
