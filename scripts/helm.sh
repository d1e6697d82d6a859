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

# shellcheck source=scripts/lib/gotool.sh
. "$(dirname "$0")/lib/gotool.sh"
bin_dir="$gotool_dir"
helm_bin="$bin_dir/helm"
stamp="$bin_dir/.helm-$HELM_VERSION"
if gotool_cached "$helm_bin" "$stamp"; then
  echo "$helm_bin"
  exit 0
fi
go_bin="$(gotool_go helm.sh "helm $HELM_VERSION")"
gotool_lock helm.sh helm
if gotool_cached "$helm_bin" "$stamp"; then
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
