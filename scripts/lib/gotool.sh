# Sourced by scripts/helm.sh, promtool.sh and compose-config.sh: the cache of tools the tests
# build with Go from the module proxy when they are not installed. Each tool is built once per
# machine and version (a stamp file names the version), one build at a time.

gotool_dir="${XDG_CACHE_HOME:-$HOME/.cache}/personalize-consumer/bin"

# gotool_cached BIN STAMP: BIN is there, built as STAMP says.
gotool_cached() {
  [ -x "$1" ] && [ -f "$2" ]
}

# gotool_go WHO WHAT: prints the Go toolchain's path; without one, says that WHO can't build
# WHAT and fails (the caller's `set -e` then ends it).
gotool_go() {
  local go_bin
  go_bin="$(command -v go 2>/dev/null || true)"
  if [ -z "$go_bin" ] && [ -x /usr/local/go/bin/go ]; then
    go_bin=/usr/local/go/bin/go
  fi
  if [ -z "$go_bin" ]; then
    echo "$1: nothing installed, none cached in $gotool_dir, and no Go toolchain to build" \
      "$2 with (install Go, or the tool itself)" >&2
    return 1
  fi
  echo "$go_bin"
}

# gotool_lock WHO NAME: holds the build lock of NAME (file descriptor 9) for the rest of the
# script; a second caller waits for the first build instead of building again.
gotool_lock() {
  mkdir -p "$gotool_dir"
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"$gotool_dir/.$2.lock"
  if ! flock -n 9; then
    echo "$1: another build of $2 is running; waiting for it" >&2
    flock 9
  fi
}
