#!/usr/bin/env bash
# Lint and package the Helm chart; optionally push it to an OCI registry.
#
#   hack/chart-package.sh [OUTDIR [oci://REGISTRY/REPOSITORY [helm push flags...]]]
#
# OUTDIR defaults to dist/. `make chart-package`, the release workflow and
# tests/integration/test_chart_oci.py run this script. helm is $MODELREG_HELM or the
# pinned build of hack/build-helm.sh (built if absent). Prints the package's path, then,
# when pushing, the pushed reference with its digest (oci://...:VERSION@sha256:...).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
helm="${MODELREG_HELM:-$("$root/hack/build-helm.sh")}"
out="$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)"
chart="$root/charts/modelreg"
"$helm" lint --strict "$chart" >&2
pkg="$("$helm" package "$chart" --destination "$out" | sed -n 's/^Successfully packaged chart and saved it to: //p')"
[ -f "$pkg" ] || { echo "helm package did not report a package" >&2; exit 1; }
echo "$pkg"
if [ $# -ge 2 ]; then
  repo="$2"; shift 2
  pushed="$("$helm" push "$pkg" "$repo" "$@" 2>&1)" || { echo "$pushed" >&2; exit 1; }
  echo "$pushed" >&2
  ref="$(echo "$pushed" | sed -n 's/^Pushed: //p')"
  digest="$(echo "$pushed" | sed -n 's/^Digest: //p')"
  [ -n "$ref" ] && [ -n "$digest" ] || { echo "helm push printed no Pushed:/Digest: lines" >&2; exit 1; }
  echo "oci://$ref@$digest"
fi
