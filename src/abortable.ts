// Promises that give up: `abortable` when a signal aborts, `withDeadline` when a time budget runs
// out. Either way the promise left behind has its rejection handled, so it can't surface later.

/**
 * Settles like `promise`, or rejects as soon as `signal` aborts (for work that ignores signals).
 * The rejection is `toError(signal.reason)`. A promise left behind by an abort has its rejection
 * handled, so it can't surface as an unhandled rejection later.
 */
export function abortable<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  toError: (reason: unknown) => unknown = (reason) => reason,
): Promise<T> {
  if (signal === undefined) return promise
  if (signal.aborted) {
    promise.catch(() => {})
    return Promise.reject(toError(signal.reason))
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => {})
      reject(toError(signal.reason))
    }
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}

/** Races a promise against a time budget of `ms`; the loser's later rejection is swallowed. */
export function withDeadline<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  if (ms <= 0) {
    promise.catch(() => {})
    return Promise.reject(onTimeout())
  }
  return new Promise<T>((resolve, reject) => {
    // Whole milliseconds: Node keeps one timer list per distinct duration, so fractional budgets
    // (every request's differs) would cost a list and a priority-queue insert each on the hot path.
    const timer = setTimeout(() => {
      promise.catch(() => {})
      reject(onTimeout())
    }, Math.ceil(ms))
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
}
