// consent-broker-admin's exit codes, and the error that carries one from wherever a command line
// goes wrong (a bad flag, a refused request, no token) to runCli, which prints it and exits with it.

export const EXIT = {
  ok: 0,
  /** Bad command line, or the broker refused the request as invalid (400) or too large (413, 414, 431). */
  usage: 1,
  /** No token, or the broker refused it (401/403). */
  auth: 2,
  /**
   * The registration or tenant does not exist (404), or --app names no hosted app (credentials;
   * tenants and registrations when nothing is listed).
   */
  notFound: 3,
  /**
   * Network failure, timeout, 5xx or an unexpected answer, or one that is not the broker's (the
   * URL names another service, or ends in /admin/api); a key rotation that failed, was
   * interrupted or has failures (rotate-keys, rotation); an upgrade finish that failed or did not
   * complete (upgrade, finish-upgrade).
   */
  server: 4,
} as const

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message)
  }
}

export const usageError = (message: string) =>
  new CliError(`${message}\nRun with --help for usage.`, EXIT.usage)
