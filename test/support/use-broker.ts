// One emulator and one broker on the shared Redis per test file, started and stopped by the file's
// vitest hooks (the operator tests: admin API, console, self-service, CLI, logs, metrics).
import { afterAll, beforeAll, inject } from 'vitest'
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
