import { defineConfig } from 'vitest/config'

// Browser tests: Debian's Chromium driven by playwright-core, against the broker and the emulator
// listening on loopback ports.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    // A stray `.only` fails the run (vitest allows it unless CI is set; .ci/run sets nothing).
    allowOnly: false,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
})
