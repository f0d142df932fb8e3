#!/usr/bin/env bash
# Print the release version after checking that every place naming it agrees:
# pyproject.toml's version, Chart.yaml's version and appVersion, and (given) the git tag.
#
#   hack/release-version.sh [vX.Y.Z]
#
# The release workflow runs it first, so a tag that does not match the sources fails
# before anything is built or pushed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
[ -x "$py" ] || py=python3
exec "$py" - "$root" "${1:-}" <<'PY'
import re, sys, tomllib
from pathlib import Path

root, tag = Path(sys.argv[1]), sys.argv[2]
version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
chart = (root / "charts" / "modelreg" / "Chart.yaml").read_text()
found = {
    "pyproject.toml version": version,
    "Chart.yaml version": re.search(r"^version:\s*\"?([^\"\s]+)", chart, re.M).group(1),
    "Chart.yaml appVersion": re.search(r"^appVersion:\s*\"?([^\"\s]+)", chart, re.M).group(1),
}
if tag:
    found["git tag"] = tag.removeprefix("refs/tags/").removeprefix("v")
bad = {k: v for k, v in found.items() if v != version}
if bad:
    print("release version mismatch: " + ", ".join(f"{k}={v}" for k, v in found.items()), file=sys.stderr)
    sys.exit(1)
print(version)
PY
