#!/usr/bin/env bash
# Prints the path of a promtool binary (stdout: the path only; progress goes to stderr), for the
# chart tests that parse the PrometheusRule and the Grafana dashboard's PromQL.
# In order: `promtool` on PATH; the cached build in
# ${XDG_CACHE_HOME:-~/.cache}/personalize-consumer/bin; otherwise builds it there with
# `go install` (Go from PATH or /usr/local/go/bin) from the Go module proxy. The build takes a few
# minutes on 2 cores and happens once per machine.
# Exits 1 with a message on stderr when there is neither promtool nor Go.
# PROMETHEUS_VERSION picks the Go module version of github.com/prometheus/prometheus to build
# (v0.316.0 is Prometheus 3.16.0; it needs Go 1.26.7 or later); PROMTOOL_NO_PATH=1 ignores
# promtool on PATH.
set -euo pipefail

PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"

if [ -z "${PROMTOOL_NO_PATH:-}" ] && command -v promtool >/dev/null 2>&1; then
  command -v promtool
  exit 0
fi

# shellcheck source=scripts/lib/gotool.sh
. "$(dirname "$0")/lib/gotool.sh"
bin_dir="$gotool_dir"
promtool_bin="$bin_dir/promtool"
stamp="$bin_dir/.promtool-$PROMETHEUS_VERSION"
if gotool_cached "$promtool_bin" "$stamp"; then
  echo "$promtool_bin"
  exit 0
fi
go_bin="$(gotool_go promtool.sh "Prometheus $PROMETHEUS_VERSION")"
gotool_lock promtool.sh promtool
if gotool_cached "$promtool_bin" "$stamp"; then
  echo "$promtool_bin"
  exit 0
fi

# The module's v0.3MM.P is Prometheus 3.MM.P (the project tags both).
release="$(echo "$PROMETHEUS_VERSION" | sed -n 's/^v0\.3\([0-9][0-9]\)\.\([0-9]*\)$/3.\1.\2/p' \
  | sed 's/^3\.0\([0-9]\)/3.\1/')"
release="${release:-$PROMETHEUS_VERSION}"
echo "promtool.sh: building promtool $release ($PROMETHEUS_VERSION) with $("$go_bin" version)" \
  "into $bin_dir (a few minutes, once)" >&2
start=$(date +%s)
# The version flags of Prometheus's own build (promu), so `promtool --version` says what it is.
ldflags="-s -w -X github.com/prometheus/common/version.Version=$release"
ldflags="$ldflags -X github.com/prometheus/common/version.Branch=HEAD"
ldflags="$ldflags -X github.com/prometheus/common/version.BuildUser=personalize-consumer"
GOBIN="$bin_dir" CGO_ENABLED=0 "$go_bin" install -trimpath -tags netgo -ldflags "$ldflags" \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION" >&2
rm -f "$bin_dir"/.promtool-v*
touch "$stamp"
echo "promtool.sh: built $("$promtool_bin" --version 2>&1 | head -n1) in" \
  "$(($(date +%s) - start))s" >&2
echo "$promtool_bin"
