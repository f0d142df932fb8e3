#!/usr/bin/env bash
# Re-render manifests/base and manifests/overlays/{namespaced,ha} from charts/modelreg
# with `helm template` (the pinned helm from hack/build-helm.sh, built if absent).
#
#   hack/render-manifests.sh           # write the files
#   hack/render-manifests.sh --check   # exit 1 (and show a diff) if they are stale
#
# It first writes crds/*.yaml as the chart's CRD templates, charts/modelreg/templates/crds/
# (`make crds` runs it). tests/integration/test_deploy.py fails when the committed manifests
# differ from a fresh render, and tests/unit/test_crds_in_sync.py when the chart's CRD
# templates differ from crds/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
[ -x "$py" ] || py=python3
helm="${MODELREG_HELM:-$("$root/hack/build-helm.sh")}"
cd "$root"
exec "$py" -m modelreg.deploy.render --helm "$helm" "$@"
