// Reloading the apps file without a restart: on SIGHUP (main.ts) and when the apps file or a file
// it names (secret, certificate, private key) changes on disk. The new file is read and validated
// whole; only a valid one replaces the app credentials in use (requests in flight finish with the
// ones they started with, new ones take the new list: nothing fails in between). An invalid one
// keeps the running configuration and logs every problem. Other changes (apps, scopes, clouds)
// are reported: they take effect at the next restart.
import { type FSWatcher, watch } from 'node:fs'
import { basename, dirname } from 'node:path'
import type { FastifyBaseLogger } from 'fastify'
import type { AppConfig } from '../config.js'
import type { AppCredentials } from '../entra/app-credentials.js'

/** A fresh read of the apps file: the apps, every problem, and the files it names. */
export type AppsFileReader = () => {
  apps: readonly AppConfig[]
  problems: readonly string[]
  files: readonly string[]
}

/** What the reloader reads, applies and watches, and where it reports. */
export interface AppsReloadOptions {
  read: AppsFileReader
  credentials: AppCredentials
  /** The apps the instance started with (their non-credential settings stay until a restart). */
  startedWith: readonly AppConfig[]
  /** The files to watch at first (config.appsFiles). */
  files: readonly string[]
  log: FastifyBaseLogger
  /** Days-ahead expiry warnings are repeated after each successful reload. */
  expiryWarningMs: number
  /** Quiet time before a change on disk is read (editors and secret mounts write in steps); default 300 ms. */
  debounceMs?: number
}

/** What one reload did. */
export type ReloadOutcome =
  | { applied: true; restartNeeded: string[] }
  | { applied: false; problems: readonly string[] }

/** An app's settings without its credentials, to tell which changes a reload cannot apply. */
function withoutCredentials(app: AppConfig): string {
  const clouds = Object.fromEntries(Object.entries(app.clouds).map(([cloud, r]) => [cloud, r?.clientId]))
  return JSON.stringify({ ...app, clouds })
}

/**
 * Reloads the apps file on demand (`reload`, SIGHUP) and on changes to the files it names, applying
 * only a valid file's credentials. Built by the production wiring (broker.ts); watches from `start` to
 * `stop`.
 */
export class AppsReload {
  readonly #options: AppsReloadOptions
  readonly #watchers = new Map<string, FSWatcher>()
  #files: readonly string[]
  #timer: NodeJS.Timeout | undefined

  constructor(options: AppsReloadOptions) {
    this.#options = options
    this.#files = options.files
  }

  /** Reads the apps file again and applies its credentials when it is valid. */
  reload(reason: string): ReloadOutcome {
    const { read, credentials, startedWith, log } = this.#options
    const result = read()
    if (result.problems.length > 0) {
      for (const problem of result.problems)
        log.error({ reason, problem }, 'apps file reload refused: kept the running configuration')
      return { applied: false, problems: result.problems }
    }
    credentials.replace(result.apps)
    const before = new Map(startedWith.map((app) => [app.slug, withoutCredentials(app)]))
    const restartNeeded = [
      ...result.apps.filter((app) => before.get(app.slug) !== withoutCredentials(app)).map((app) => app.slug),
      ...startedWith.filter((app) => !result.apps.some((a) => a.slug === app.slug)).map((app) => app.slug),
    ]
    log.info({ reason, apps: result.apps.length }, 'apps file reloaded: app credentials replaced')
    if (restartNeeded.length > 0) {
      log.warn(
        { apps: restartNeeded },
        'apps file changed more than credentials for these apps: restart to apply those changes',
      )
    }
    credentials.warnExpiring(this.#options.expiryWarningMs)
    this.#files = result.files
    if (this.#watchers.size > 0) this.#watchFiles()
    return { applied: true, restartNeeded }
  }

  /** Watches the apps file and the files it names; a change reloads after the debounce. */
  start(): void {
    this.#watchFiles()
  }

  /** Stops watching. */
  stop(): void {
    clearTimeout(this.#timer)
    for (const watcher of this.#watchers.values()) watcher.close()
    this.#watchers.clear()
  }

  #watchFiles(): void {
    // Directories, not files: secret mounts and editors replace a file by renaming a new one over
    // it, which ends a watch on the file itself.
    const directories = new Map<string, Set<string>>()
    for (const file of this.#files) {
      const names = directories.get(dirname(file)) ?? new Set<string>()
      names.add(basename(file))
      directories.set(dirname(file), names)
    }
    for (const [directory, watcher] of this.#watchers) {
      if (!directories.has(directory)) {
        watcher.close()
        this.#watchers.delete(directory)
      }
    }
    for (const directory of directories.keys()) {
      if (this.#watchers.has(directory)) continue
      try {
        const watcher = watch(directory, { persistent: false }, (_event, name) => {
          const names = directories.get(directory)
          // Kubernetes swaps a `..data` symlink; any change there may be one of ours.
          if (name === null || names?.has(String(name)) || String(name).startsWith('..')) this.#schedule()
        })
        watcher.on('error', () => {
          watcher.close()
          this.#watchers.delete(directory)
        })
        this.#watchers.set(directory, watcher)
      } catch (error) {
        this.#options.log.warn(
          { directory, err: (error as Error).message },
          'cannot watch for apps file changes (SIGHUP still reloads)',
        )
      }
    }
  }

  #schedule(): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.reload('file changed')
    }, this.#options.debounceMs ?? 300)
    this.#timer.unref()
  }
}
