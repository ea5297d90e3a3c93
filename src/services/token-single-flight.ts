// In-process single-flight: concurrent callers asking for the same key share one promise. The
// entry is removed when the work settles, so a later call starts afresh (errors are not cached).

/** Concurrent calls for one key share one promise; nothing is kept once it settles. */
export class SingleFlight<T> {
  readonly #inFlight = new Map<string, Promise<T>>()

  /** Runs `work` unless a call for `key` is already running; `shared` tells which happened. */
  run(key: string, work: () => Promise<T>): { promise: Promise<T>; shared: boolean } {
    const running = this.#inFlight.get(key)
    if (running !== undefined) return { promise: running, shared: true }
    const promise = (async () => {
      try {
        return await work()
      } finally {
        this.#inFlight.delete(key)
      }
    })()
    this.#inFlight.set(key, promise)
    // A leader whose every caller gave up (deadline) must not surface as an unhandled rejection.
    promise.catch(() => {})
    return { promise, shared: false }
  }

  /** Calls running now. */
  get size(): number {
    return this.#inFlight.size
  }
}
