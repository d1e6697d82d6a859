#!/usr/bin/env bash
# `scripts/compose-config.sh FILE`: resolves and validates a compose file as `docker compose
# config` does, and prints the resolved project (YAML on stdout; errors on stderr, exit 1). For
# tests/deploy/test_compose.py.
# With, in order: `docker compose` when the plugin answers; the cached build of scripts/compose-config
# (compose-go, the loader `docker compose` is built on) in
# ${XDG_CACHE_HOME:-~/.cache}/personalize-consumer/bin; otherwise builds it there with Go from the
# Go module proxy (about a minute, once per machine and version of the tool).
# Exits 1 with a message on stderr when there is neither the plugin nor Go.
set -euo pipefail
file="$(realpath "${1:?usage: compose-config.sh FILE}")"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/compose-config"

if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  exec docker compose -f "$file" config
fi

# shellcheck source=scripts/lib/gotool.sh
. "$here/lib/gotool.sh"
tool="$gotool_dir/compose-config"
stamp="$gotool_dir/.compose-config-$(cat go.mod go.sum main.go | sha256sum | cut -c1-16)"
if gotool_cached "$tool" "$stamp"; then
  exec "$tool" "$file"
fi
go_bin="$(gotool_go compose-config.sh "scripts/compose-config (or use the Docker Compose plugin)")"
gotool_lock compose-config.sh compose-config
if gotool_cached "$tool" "$stamp"; then
  exec "$tool" "$file"
fi
echo "compose-config.sh: building scripts/compose-config with $("$go_bin" version) (once)" >&2
CGO_ENABLED=0 "$go_bin" build -trimpath -ldflags "-s -w" -o "$tool" . >&2
rm -f "$gotool_dir"/.compose-config-*
touch "$stamp"
exec "$tool" "$file"
