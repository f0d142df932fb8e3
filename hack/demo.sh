#!/usr/bin/env bash
# `make demo`: the whole story on the local control plane — register, promote,
# promote a second version over the first, degrade, incident, automatic
# rollback, serving restored — printing `kubectl get modelreg` at each step.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELREG=${MODELREG:-.venv/bin/modelreg}
NS=${DEMO_NAMESPACE:-demo}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Local control plane (built on first use, then reused)"
KUBECONFIG=$($MODELREG dev-cluster up | tail -n 1)
export KUBECONFIG
eval "$($MODELREG dev-cluster env)"   # puts the pinned kubectl first on PATH
kubectl version 2>/dev/null | sed 's/^/    /'

step "CRDs"
$MODELREG install-crds --dir crds

step "Operator (modelreg run, logging to .demo-operator.log)"
$MODELREG run --metrics-port 0 --liveness-port 0 --identity demo-operator > .demo-operator.log 2>&1 &
OPERATOR=$!
trap 'kill $OPERATOR 2>/dev/null || true' EXIT

kubectl delete namespace "$NS" --ignore-not-found --wait=true >/dev/null
kubectl create namespace "$NS" >/dev/null
kubectl -n "$NS" apply -f manifests/examples/serving-deployment.yaml

wait_for() {  # wait_for "description" command...
  local what=$1; shift
  for _ in $(seq 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "timed out waiting for $what" >&2; tail -n 30 .demo-operator.log >&2; exit 1
}
stage_is() { [ "$(kubectl -n "$NS" get rmodel "$1" -o jsonpath='{.status.stage}')" = "$2" ]; }
env_is() {
  [ "$(kubectl -n "$NS" get deploy fraud-api -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="MODEL_URI")].value}')" = "$1" ]
}

step "Register fraud-detector 3.0.2 (targetStage: Production, no soak)"
kubectl -n "$NS" apply -f manifests/examples/fraud-detector-3-0-2.yaml
wait_for "3.0.2 in Production" stage_is fraud-detector-3-0-2 Production
wait_for "serving on 3.0.2" env_is s3://models/fraud-detector/3.0.2/model.bst
kubectl -n "$NS" get modelreg

step "Register 3.1.0: a 5 s soak, 2 healthy snapshots and an approval stand between it and Production"
sed -e 's/minSandboxDuration: 10m/minSandboxDuration: 5s/' -e 's/minHealthySnapshots: 3/minHealthySnapshots: 2/' \
  manifests/examples/fraud-detector-3-1-0.yaml | kubectl -n "$NS" apply -f -
wait_for "3.1.0 in Sandbox" stage_is fraud-detector-3-1-0 Sandbox
kubectl -n "$NS" get rmodel fraud-detector-3-1-0 -o jsonpath='    gates pending: {.status.gates.pending}{"\n"}'
for i in 1 2; do
  $MODELREG record-snapshot fraud-detector-3-1-0 -n "$NS" --error-rate 0.01 --ood-rate 0.05 --samples 5000 --drift-kl 0.02
done
wait_for "3.1.0 in Production" stage_is fraud-detector-3-1-0 Production
wait_for "serving on 3.1.0" env_is s3://models/fraud-detector/3.1.0/model.bst
kubectl -n "$NS" get modelreg

step "A degraded snapshot arrives for 3.1.0 (docs/evaluation.md's example)"
kubectl -n "$NS" apply -f manifests/examples/snapshot-degraded.yaml
wait_for "3.1.0 rolled back" stage_is fraud-detector-3-1-0 RolledBack
wait_for "3.0.2 restored" stage_is fraud-detector-3-0-2 Production
wait_for "serving back on 3.0.2" env_is s3://models/fraud-detector/3.0.2/model.bst
kubectl -n "$NS" get modelreg
kubectl -n "$NS" get deploy fraud-api \
  -o jsonpath='    fraud-api MODEL_URI={.spec.template.spec.containers[0].env[?(@.name=="MODEL_URI")].value}{"\n"}'

step "Fleet health (exit code 1 when anything is Critical)"
$MODELREG fleet || true

step "Status of the rolled-back version"
$MODELREG status fraud-detector-3-1-0 -n "$NS"

step "Model card of 3.1.0 (head)"
for _ in $(seq 50); do $MODELREG card fraud-detector-3-1-0 -n "$NS" >/dev/null 2>&1 && break; sleep 0.2; done
$MODELREG card fraud-detector-3-1-0 -n "$NS" | head -n 40

step "Done. The cluster keeps running: KUBECONFIG=$KUBECONFIG; stop it with: $MODELREG dev-cluster down"
