#!/usr/bin/env bash
# Build the Python distributions (an sdist and a wheel from that sdist) with `python -m build`.
#
#   hack/dist.sh [OUTDIR]      # default: dist/
#
# `make dist`, the release workflow (.github/workflows/release.yaml) and
# tests/integration/test_packaging.py all run this script, so what the tests install is
# what a release publishes. Prints the paths of the two files on stdout.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
[ -x "$py" ] || py=python3
out="$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)"
version="$("$py" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$root/pyproject.toml")"
rm -f "$out/modelreg-$version.tar.gz" "$out/modelreg-$version-"*.whl
# Without arguments `python -m build` makes the sdist, then the wheel from the unpacked sdist,
# so a file missing from the sdist shows up as a broken wheel too.
"$py" -m build --outdir "$out" "$root" >&2
ls "$out/modelreg-$version.tar.gz" "$out/modelreg-$version-"*.whl
