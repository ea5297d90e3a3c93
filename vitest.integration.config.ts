import { configDefaults, defineConfig } from 'vitest/config'

// Integration tests talk to a real redis-server started by the global setup on a free port with a
// temporary directory (never the machine's shared Redis), and to the Entra ID emulator.
//
// Files that load the whole machine run alone, after every other file has finished: the response
// deadline test keeps more busy loops than cores spinning for 15 s, which would starve the file
// running beside it (two at a time on CI's 2 cores) of the CPU its own timers need.
const ALONE = ['test/integration/response-deadline.test.ts']

export default defineConfig({
  test: {
    environment: 'node',
    testTimeout: 60_000,
    // A stray `.only` fails the run (vitest allows it unless CI is set; .ci/run sets nothing).
    allowOnly: false,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...ALONE],
          // In each project, not above: the root's would start a third redis-server.
          globalSetup: ['test/support/global-setup.ts'],
          maxWorkers: 2,
        },
      },
      {
        extends: true,
        test: {
          name: 'alone',
          include: ALONE,
          globalSetup: ['test/support/global-setup.ts'],
          maxWorkers: 1,
          // Groups run one after the other, lowest first.
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
})
