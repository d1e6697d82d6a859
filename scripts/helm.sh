#!/usr/bin/env bash
# Prints the path of a helm binary (stdout: the path only; progress goes to stderr).
# In order: `helm` on PATH; the cached build in ${XDG_CACHE_HOME:-~/.cache}/personalize-consumer/bin;
# otherwise builds it there with `go install` (Go from PATH or /usr/local/go/bin) from the Go module
# proxy. The build takes a few minutes on 2 cores and happens once per machine.
# Exits 1 with a message on stderr when there is neither helm nor Go.
# HELM_VERSION picks the version to build (default below); HELM_NO_PATH=1 ignores helm on PATH.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"

if [ -z "${HELM_NO_PATH:-}" ] && command -v helm >/dev/null 2>&1; then
  command -v helm
  exit 0
fi

bin_dir="${XDG_CACHE_HOME:-$HOME/.cache}/personalize-consumer/bin"
helm_bin="$bin_dir/helm"
stamp="$bin_dir/.helm-$HELM_VERSION"
if [ -x "$helm_bin" ] && [ -f "$stamp" ]; then
  echo "$helm_bin"
  exit 0
fi

go_bin="$(command -v go 2>/dev/null || true)"
if [ -z "$go_bin" ] && [ -x /usr/local/go/bin/go ]; then
  go_bin=/usr/local/go/bin/go
fi
if [ -z "$go_bin" ]; then
  echo "helm.sh: no helm on PATH, none cached in $bin_dir, and no Go toolchain to build" \
    "helm $HELM_VERSION with (install Go, or put helm on PATH)" >&2
  exit 1
fi

mkdir -p "$bin_dir"
# One build at a time: a second caller waits for the first instead of building again.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$bin_dir/.helm.lock"
  if ! flock -n 9; then
    echo "helm.sh: another build of helm is running; waiting for it" >&2
    flock 9
  fi
fi
if [ -x "$helm_bin" ] && [ -f "$stamp" ]; then
  echo "$helm_bin"
  exit 0
fi

echo "helm.sh: building helm $HELM_VERSION with $("$go_bin" version) into $bin_dir" \
  "(a few minutes, once)" >&2
start=$(date +%s)
# The flags of helm's own Makefile: without them `helm version` says "v3.22" and, worse, helm
# assumes Kubernetes 1.20 for `helm template`/`helm lint` (the kubeVersion check, .Capabilities).
# The Kubernetes version is the one of the client-go module helm is built with, as the Makefile does.
gomod="$("$go_bin" mod download -json "helm.sh/helm/v3@$HELM_VERSION" \
  | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
client_go="$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod" | head -n1)"
if [ -z "$client_go" ]; then
  echo "helm.sh: could not read the client-go version from $gomod" >&2
  exit 1
fi
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
ldflags="$ldflags -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in pkg/lint/rules pkg/chartutil; do
  ldflags="$ldflags -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1"
  ldflags="$ldflags -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$client_go"
done
GOBIN="$bin_dir" CGO_ENABLED=0 "$go_bin" install -trimpath -ldflags "$ldflags" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
rm -f "$bin_dir"/.helm-v*
touch "$stamp"
echo "helm.sh: built $("$helm_bin" version --short) (Kubernetes 1.$client_go) in" \
  "$(($(date +%s) - start))s" >&2
echo "$helm_bin"
