// Brokers on the shared Redis for a test file, started and stopped by the file's vitest hooks: one
// for the whole file with its own emulator (the operator tests: admin API, console, self-service,
// CLI, logs, metrics), or a fresh one per test (the consent tests).
import { afterAll, afterEach, beforeAll, inject } from 'vitest'
import type { RunningEmulator } from '../../emulator/server.js'
import { type RunningBroker, type StartBrokerOptions, startBroker } from './broker.js'
import { useEmulator } from './emulator.js'

/**
 * Starts the emulator, then a broker on the integration run's Redis (`inject('redisUrl')`) pointed at
 * it, before the calling file's tests; closes the broker, then the emulator, after them. Call it at
 * the top level of the file, before the file's own `beforeAll` (which then sees both running); the
 * returned objects read through to the running emulator and broker.
 */
export function useBrokerOnRedis(options: Omit<StartBrokerOptions, 'authorityUrl' | 'redisUrl'> = {}): {
  emulator: RunningEmulator
  broker: RunningBroker
} {
  const emulator = useEmulator()
  let running: RunningBroker | undefined
  const current = (): RunningBroker => {
    if (running === undefined) throw new Error('the broker runs only while the file’s tests run')
    return running
  }
  beforeAll(async () => {
    running = await startBroker({ ...options, authorityUrl: emulator.url, redisUrl: inject('redisUrl') })
  })
  afterAll(async () => {
    await running?.close()
  })
  const broker: RunningBroker = {
    get app() {
      return current().app
    },
    get config() {
      return current().config
    },
    get store() {
      return current().store
    },
    get idp() {
      return current().idp
    },
    get redis() {
      return current().redis
    },
    get keyPrefix() {
      return current().keyPrefix
    },
    close: () => current().close(),
  }
  return { emulator, broker }
}

/**
 * A fresh broker per test on the integration run's Redis, pointed at `emulator`: the returned
 * `start(options)` builds it (the test's own options win), and it is closed after the test. Call it
 * at the top level of the file.
 */
export function useBrokerPerTest(
  emulator: Pick<RunningEmulator, 'url'>,
): (options?: Partial<StartBrokerOptions>) => Promise<RunningBroker> {
  const redisUrl = inject('redisUrl')
  let broker: RunningBroker | undefined
  afterEach(async () => {
    await broker?.close()
    broker = undefined
  })
  return async (options = {}) => {
    broker = await startBroker({ authorityUrl: emulator.url, redisUrl, ...options })
    return broker
  }
}
