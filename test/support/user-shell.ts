// The environment of a README command run as a user pastes it into a shell: the PATH and HOME of
// this machine and nothing else of the test's, with npm offline, so `npx consent-broker-admin` runs
// the checkout's own bin and never fetches a package of that name from the registry.

/** PATH, HOME and npm offline, for `sh -c '<README line>'`. */
export function userShellEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    npm_config_offline: 'true',
  }
}
