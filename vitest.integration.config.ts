import { defineConfig } from 'vitest/config'

// Integration tests talk to a real redis-server started by the global setup on a free port with a
// temporary directory (never the machine's shared Redis), and to the Entra ID emulator.
export default defineConfig({
  test: {
    include: ['test/integration/**/*.test.ts'],
    environment: 'node',
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    // A stray `.only` fails the run (vitest allows it unless CI is set; .ci/run sets nothing).
    allowOnly: false,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
})
