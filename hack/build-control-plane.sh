#!/usr/bin/env bash
# Build the pinned local control plane (kube-apiserver, kube-controller-manager,
# kubectl, etcd) from the Go module proxy into a cache directory outside the repo.
#
#   hack/build-control-plane.sh [CACHE_ROOT]
#
# Versions come from hack/versions.env. Binaries land in
#   $CACHE_ROOT/k8s-$K8S_VERSION/{kube-apiserver,kube-controller-manager,kubectl}
#   $CACHE_ROOT/etcd-$ETCD_VERSION/etcd
# and are reused when present. A first build takes about 25-35 minutes on a
# 2-core machine (most of it compiling kube-apiserver); later runs take seconds.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${1:-${MODELREG_CACHE:-$HOME/.cache/modelreg}}"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
k8s_dir="$cache/k8s-$K8S_VERSION"
etcd_dir="$cache/etcd-$ETCD_VERSION"
mkdir -p "$k8s_dir" "$etcd_dir"
start=$(date +%s)
log() { printf '[build %4ss] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }

# One build at a time per cache (two concurrent `make test` runs share it). This script is
# the only holder of the lock: its callers (modelreg dev-cluster build, make) never take it,
# or the script would wait for its own parent. The waiter keeps printing, so a log shows why.
exec 9>"$cache/.build.lock"
if ! flock -n 9; then
  log "another build holds $cache/.build.lock; waiting for it"
  until flock -w 30 9; do log "still waiting for the other build ..."; done
  log "the other build finished; checking what is still missing"
fi

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

build_k8s() {
  local bins=(kube-apiserver kube-controller-manager kubectl) missing=0
  for b in "${bins[@]}"; do [ -x "$k8s_dir/$b" ] || missing=1; done
  if [ "$missing" = 0 ]; then log "kubernetes $K8S_VERSION: cached in $k8s_dir"; return; fi
  local wrap="$k8s_dir/src"
  mkdir -p "$wrap"
  log "kubernetes $K8S_VERSION: first build; expect about 28 minutes on 2 cores (measured: apiserver 13, controller-manager 10, kubectl 3)"
  log "kubernetes $K8S_VERSION: resolving the release's go.mod"
  local gomod
  gomod="$(cd "$wrap" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  local staging_minor="v0.${K8S_VERSION#v1.}"
  # Staging modules are the k8s.io requirements pinned at exactly v0.0.0 in the
  # release's own go.mod; each is replaced by its published v0.Y.Z tag.
  python3 - "$gomod" "$K8S_VERSION" "$staging_minor" > "$wrap/go.mod" <<'PY'
import re, sys
path, k8s, staging = sys.argv[1:4]
text = open(path).read()
go = re.search(r"^go (\S+)", text, re.M).group(1)
godebug = re.findall(r"^godebug .*$", text, re.M)
mods = sorted(set(re.findall(r"^\s*(k8s\.io/[\w./-]+) v0\.0\.0$", text, re.M)))
print("module modelreg.local/k8sbuild\n")
print(f"go {go}\n")
for line in godebug:
    print(line)
print(f"\nrequire k8s.io/kubernetes {k8s}\n")
print("replace (")
for m in mods:
    print(f"\t{m} => {m} {staging}")
print(")")
PY
  cat > "$wrap/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  log "kubernetes $K8S_VERSION: $(grep -c '=>' "$wrap/go.mod") staging modules pinned to $staging_minor; downloading modules"
  (cd "$wrap" && with_heartbeat "downloading modules" go mod tidy)
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  for b in "${bins[@]}"; do
    [ -x "$k8s_dir/$b" ] && continue
    log "kubernetes $K8S_VERSION: compiling $b (the first one takes longest)"
    (cd "$wrap" && with_heartbeat "compiling $b" go build -trimpath -ldflags "$ld" -o "$k8s_dir/$b.tmp" "k8s.io/kubernetes/cmd/$b")
    mv "$k8s_dir/$b.tmp" "$k8s_dir/$b"
  done
}

build_etcd() {
  if [ -x "$etcd_dir/etcd" ]; then log "etcd $ETCD_VERSION: cached in $etcd_dir"; return; fi
  local wrap="$etcd_dir/src"
  mkdir -p "$wrap"
  cat > "$wrap/go.mod" <<GOMOD
module modelreg.local/etcdbuild

go 1.26.0
GOMOD
  cat > "$wrap/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  log "etcd $ETCD_VERSION: downloading modules"
  (cd "$wrap" && with_heartbeat "downloading etcd" go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" && go mod tidy)
  log "etcd $ETCD_VERSION: compiling"
  (cd "$wrap" && with_heartbeat "compiling etcd" go build -trimpath -ldflags "-s -w" -o "$etcd_dir/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$etcd_dir/etcd.tmp" "$etcd_dir/etcd"
}

build_etcd
build_k8s
log "done in $(( $(date +%s) - start ))s; $(du -sh "$k8s_dir"/kube* "$etcd_dir/etcd" | awk '{print $2": "$1}' | tr '\n' ' ')"
