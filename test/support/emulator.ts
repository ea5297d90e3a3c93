// One Entra ID emulator per test file, started and stopped by the file's vitest hooks.
import { afterAll, beforeAll, beforeEach, expect } from 'vitest'
import { type RunningEmulator, startEmulator } from '../../emulator/server.js'

/**
 * Starts an emulator before the calling file's tests and closes it after them; with `resetEach`,
 * every test starts from the emulator's initial state (no sessions, grants or issued tokens).
 * Call it at the top level of the file; the returned object reads through to the running emulator.
 */
export function useEmulator(
  options: { resetEach?: boolean; deviceCodeIntervalSec?: number } = {},
): RunningEmulator {
  let running: RunningEmulator | undefined
  const current = (): RunningEmulator => {
    if (running === undefined) throw new Error('the emulator runs only while the file’s tests run')
    return running
  }
  beforeAll(async () => {
    running = await startEmulator({
      port: 0,
      ...(options.deviceCodeIntervalSec === undefined
        ? {}
        : { deviceCodeIntervalSec: options.deviceCodeIntervalSec }),
    })
  })
  afterAll(async () => {
    await running?.close()
  })
  if (options.resetEach) {
    beforeEach(async () => {
      const reset = await fetch(`${current().url}/_emulator/reset`, { method: 'POST' })
      expect(reset.status).toBe(200)
    })
  }
  return {
    get url() {
      return current().url
    },
    get port() {
      return current().port
    },
    get state() {
      return current().state
    },
    get app() {
      return current().app
    },
    close: () => current().close(),
  }
}
