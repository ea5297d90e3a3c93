import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    environment: 'node',
    testTimeout: 10_000,
    // A stray `.only` fails the run (vitest allows it unless CI is set; .ci/run sets nothing).
    allowOnly: false,
  },
})
