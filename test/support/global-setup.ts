// Vitest globalSetup for the integration run: one throwaway redis-server (free port, temporary
// directory) shared by every test file. Files isolate themselves with a random key prefix.
// The type-only import loads vitest's declarations so the augmentation below has a module to extend.
import type {} from 'vitest'
import type { TestProject } from 'vitest/node'
import { startRedisServer } from './redis-server.js'

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string
  }
}

export default async function setup({ provide }: TestProject): Promise<() => Promise<void>> {
  const server = await startRedisServer({ appendOnly: false })
  provide('redisUrl', server.url)
  return async () => {
    await server.destroy()
  }
}
