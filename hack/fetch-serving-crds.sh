#!/usr/bin/env bash
# Fetch the published CRDs of the serving kinds whose Go modules the Go module proxy
# serves, pinned in hack/versions.env, into a cache outside the repo:
#
#   hack/fetch-serving-crds.sh [CACHE_ROOT]
#
#   $CACHE_ROOT/serving-crds/argo-rollouts-$ARGO_ROLLOUTS_VERSION/rollout-crd.yaml
#       (github.com/argoproj/argo-rollouts, manifests/crds/rollout-crd.yaml)
#   $CACHE_ROOT/serving-crds/knative-serving-$KNATIVE_SERVING_VERSION/service.yaml
#       (knative.dev/serving, config/core/300-resources/service.yaml)
#
# Only the module zips are downloaded (`go mod download`), nothing is built. Reused when
# present. Prints the two paths on stdout. KServe's and Seldon's modules are not served
# by the proxy: their test CRDs are written in tests/integration/crds/ instead.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${1:-${MODELREG_CACHE:-$HOME/.cache/modelreg}}"
root="$cache/serving-crds"
export GOMODCACHE="$root/gomod" GOFLAGS=-mod=mod GOTOOLCHAIN=local

fetch() {  # module version path-in-module destination
  local module="$1" version="$2" inner="$3" dest="$4"
  if [ -s "$dest" ]; then
    echo "$dest"
    return
  fi
  mkdir -p "$(dirname "$dest")"
  # The module zip is read directly: extracting it (the "Dir" of `go mod download`) is
  # refused when the module's go.mod asks for a newer Go than the local toolchain, and
  # only one file of it is needed.
  # `go mod download` exits non-zero on that refusal although the zip is in the cache.
  { (cd "$root" && go mod download -json "$module@$version") || true; } | python3 -c '
import json, sys, zipfile
info, inner, dest = json.load(sys.stdin), sys.argv[1], sys.argv[2]
where = "%s@%s" % (info.get("Path"), info.get("Version"))
if "Zip" not in info:
    sys.exit("go mod download %s: %s" % (where, info.get("Error")))
with zipfile.ZipFile(info["Zip"]) as zf:
    data = zf.read("%s/%s" % (where, inner))
with open(dest, "wb") as out:
    out.write(data)
' "$inner" "$dest.tmp"
  mv "$dest.tmp" "$dest"
  echo "$dest"
}

mkdir -p "$root"
fetch github.com/argoproj/argo-rollouts "$ARGO_ROLLOUTS_VERSION" manifests/crds/rollout-crd.yaml \
  "$root/argo-rollouts-$ARGO_ROLLOUTS_VERSION/rollout-crd.yaml"
fetch knative.dev/serving "$KNATIVE_SERVING_VERSION" config/core/300-resources/service.yaml \
  "$root/knative-serving-$KNATIVE_SERVING_VERSION/service.yaml"
# The module cache is read-only by default; make it removable with rm -rf.
chmod -R u+w "$root/gomod" 2>/dev/null || true
