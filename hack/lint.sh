#!/usr/bin/env bash
# `make lint`: every static check, each step named and timed. All steps run; the exit status is
# non-zero when any failed, and the last line names the steps that failed.
#   1. ruff check           operator/ tests/ benchmarks/
#   2. ruff format --check  operator/ tests/ benchmarks/
#   3. lint-imports         the import contracts in .importlinter (import-linter)
#   4. mypy                 --strict on operator/modelreg and benchmarks/ (pyproject [tool.mypy])
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
PATHS=(operator tests benchmarks)
failed=()

step() {
	local name=$1 start=$SECONDS
	shift
	echo "--- lint: $name"
	if "$@"; then
		echo "--- lint: $name: ok ($((SECONDS - start)) s)"
	else
		echo "--- lint: $name: FAILED ($((SECONDS - start)) s)"
		failed+=("$name")
	fi
}

step "ruff check" "$BIN/ruff" check "${PATHS[@]}"
step "ruff format" "$BIN/ruff" format --check "${PATHS[@]}"
step "import contracts" "$BIN/lint-imports" --no-logo .importlinter
step "mypy strict" "$BIN/mypy"

if ((${#failed[@]})); then
	printf 'make lint: FAILED step(s):' >&2
	printf ' [%s]' "${failed[@]}" >&2
	echo >&2
	exit 1
fi
echo "make lint: all steps passed"
