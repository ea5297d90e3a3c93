// The environment an apps file needs to run against the emulator's demo clients: each app's
// `clientSecretEnv` set to the secret of the demo client with that client id. The demo and the
// tests derive it from here, so the apps file and the emulator can't drift apart unnoticed.
import { readFileSync } from 'node:fs'
import { DEMO_CLIENTS } from './demo-data.js'

interface AppsFile {
  apps: Array<{ slug: string; clouds: Record<string, { clientId: string; clientSecretEnv?: string }> }>
}

export function demoClientSecretEnv(appsFilePath: string): Record<string, string> {
  const { apps } = JSON.parse(readFileSync(appsFilePath, 'utf8')) as AppsFile
  const env: Record<string, string> = {}
  for (const app of apps) {
    for (const [cloud, registration] of Object.entries(app.clouds)) {
      if (registration.clientSecretEnv === undefined) continue
      const client = DEMO_CLIENTS.find((c) => c.clientId === registration.clientId)
      if (client === undefined) {
        throw new Error(
          `${app.slug} (${cloud}): client ${registration.clientId} is not one of the emulator's demo clients`,
        )
      }
      env[registration.clientSecretEnv] = client.clientSecret
    }
  }
  return env
}
