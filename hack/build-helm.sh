#!/usr/bin/env bash
# Build the pinned Helm CLI from the Go module proxy into a cache directory
# outside the repo (like hack/build-control-plane.sh does for Kubernetes).
#
#   hack/build-helm.sh [CACHE_ROOT]
#
# The version comes from hack/versions.env (HELM_VERSION). The binary lands in
#   $CACHE_ROOT/helm-$HELM_VERSION/helm
# and is reused when present. Prints the path of the binary on stdout.
#
# `go install helm.sh/helm/v3/cmd/helm@VERSION` is used first (Helm's go.mod has
# no replace directives, so it builds as published); if that fails, a wrapper
# module pinning helm.sh/helm/v3 is built instead (MODELREG_HELM_WRAPPER=1 forces that path).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${1:-${MODELREG_CACHE:-$HOME/.cache/modelreg}}"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
dir="$cache/helm-$HELM_VERSION"
mkdir -p "$dir"
start=$(date +%s)

log() { printf '[helm-build %4ss] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }

# Print a heartbeat every 30 s while a long command runs, so CI logs show progress.
with_heartbeat() {
  local what="$1"; shift
  "$@" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 30); do sleep 1; kill -0 "$pid" 2>/dev/null || break; done
    kill -0 "$pid" 2>/dev/null && log "still $what ..."
  done
  wait "$pid"
}

if [ -x "$dir/helm" ]; then
  log "helm $HELM_VERSION: cached in $dir"
  echo "$dir/helm"
  exit 0
fi

# Stamp what Helm's own Makefile stamps: the version (`helm version`) and the Kubernetes
# version that `helm template`/`helm lint` assume (.Capabilities.KubeVersion), derived like
# the Makefile does from the k8s.io/client-go version in Helm's go.mod (v0.37.0 -> 1.37).
# Without the latter, helm assumes Kubernetes v1.20 and rejects `kubeVersion: >=1.30`.
log "helm $HELM_VERSION: reading its go.mod"
gomod="$(cd "$dir" && go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
client_go="$(awk '$1 == "k8s.io/client-go" {print $2}' "$gomod")"
k8s_minor="$(echo "$client_go" | cut -d. -f2)"
[ -n "$k8s_minor" ] || { log "cannot find k8s.io/client-go in $gomod"; exit 1; }
ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ld="$ld -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done
log "helm $HELM_VERSION: client-go $client_go, default Kubernetes version v1.$k8s_minor"

tmp="$dir/bin.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"
log "helm $HELM_VERSION: go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
if [ "${MODELREG_HELM_WRAPPER:-0}" = 1 ] || ! (GOBIN="$tmp" with_heartbeat "building helm" \
      go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"); then
  log "go install failed; building through a wrapper module"
  wrap="$dir/src"
  mkdir -p "$wrap"
  cat > "$wrap/go.mod" <<GOMOD
module modelreg.local/helmbuild

go 1.26.0
GOMOD
  cat > "$wrap/tools.go" <<'GO'
//go:build tools

package tools

import _ "helm.sh/helm/v3/cmd/helm"
GO
  (cd "$wrap" && with_heartbeat "downloading helm modules" go get "helm.sh/helm/v3@$HELM_VERSION" && go mod tidy)
  (cd "$wrap" && with_heartbeat "compiling helm" go build -trimpath -ldflags "$ld" -o "$tmp/helm" helm.sh/helm/v3/cmd/helm)
fi
mv "$tmp/helm" "$dir/helm"
rm -rf "$tmp"
log "helm $HELM_VERSION: built $dir/helm ($(du -sh "$dir/helm" | awk '{print $1}')) in $(( $(date +%s) - start ))s"
echo "$dir/helm"
