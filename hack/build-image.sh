#!/usr/bin/env bash
# Build the operator image from the repository's Dockerfile without Docker and without a
# registry pull: buildah (chroot isolation) on a Debian root filesystem made by mmdebstrap.
#
#   hack/build-image.sh [IMAGE]        # default IMAGE: localhost/modelreg:dev
#
# 1. The base: `mmdebstrap --variant=minbase` of $IMAGE_BASE_SUITE with $IMAGE_BASE_PACKAGES
#    (hack/versions.env; Debian's python3 is 3.11 on bookworm, like python:3.11-slim), cached
#    as $CACHE/image-base-<suite>-<hash>/rootfs.tar and imported once as
#    localhost/modelreg-base:<suite>-<hash>, with PIP_BREAK_SYSTEM_PACKAGES=1 (Debian marks its
#    python "externally managed"; python:3.11-slim does not).
# 2. `buildah bud --isolation chroot --build-arg PYTHON_IMAGE=<that base>` of the Dockerfile,
#    unchanged. The host's CA bundle is bind-mounted for the build's RUN steps only (pip
#    reaches PyPI through it; nothing of it lands in the image).
#
# Storage (vfs driver) lives under $CACHE/buildah, outside the repository. Prints IMAGE.
# tests/integration/test_image.py runs it and then `modelreg --version` inside the image.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=versions.env
source "$root/hack/versions.env"
cache="${MODELREG_CACHE:-$HOME/.cache/modelreg}"
image="${1:-localhost/modelreg:dev}"
start=$(date +%s)
log() { printf '[image %4ss] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }
for tool in buildah mmdebstrap; do
  command -v "$tool" >/dev/null || { log "$tool is missing: make test-deps (hack/test-packages.txt)"; exit 1; }
done

key="$(printf '%s\n%s\n' "$IMAGE_BASE_SUITE" "$IMAGE_BASE_PACKAGES" | sha256sum | cut -c1-12)"
base_dir="$cache/image-base-$IMAGE_BASE_SUITE-$key"
base="localhost/modelreg-base:$IMAGE_BASE_SUITE-$key"
buildah=(buildah --root "$cache/buildah/root" --runroot "$cache/buildah/run" --storage-driver vfs)
mkdir -p "$base_dir" "$cache/buildah"

exec 9>"$cache/buildah/.lock"
flock 9   # one build at a time per cache (the base import and the storage are shared)

if [ ! -f "$base_dir/rootfs.tar" ]; then
  log "mmdebstrap $IMAGE_BASE_SUITE ($IMAGE_BASE_PACKAGES) -> $base_dir/rootfs.tar"
  mmdebstrap --quiet --format=tar --variant=minbase --include="$IMAGE_BASE_PACKAGES" \
    "$IMAGE_BASE_SUITE" "$base_dir/rootfs.tar.tmp" >&2
  mv "$base_dir/rootfs.tar.tmp" "$base_dir/rootfs.tar"
fi
if ! "${buildah[@]}" inspect --type image "$base" >/dev/null 2>&1; then
  log "importing the root filesystem as $base"
  ctr="$("${buildah[@]}" from scratch)"
  "${buildah[@]}" add "$ctr" "$base_dir/rootfs.tar" / >/dev/null
  "${buildah[@]}" config --env PIP_BREAK_SYSTEM_PACKAGES=1 --env LANG=C.UTF-8 --cmd '["python3"]' "$ctr"
  "${buildah[@]}" commit --quiet --rm "$ctr" "$base" >/dev/null
fi

ca="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
mounts=()
[ -f "$ca" ] && mounts=(--volume "$ca:/etc/ssl/certs/ca-certificates.crt:ro")
log "buildah bud --isolation chroot -f Dockerfile (base $base) -> $image"
"${buildah[@]}" bud --quiet --isolation chroot "${mounts[@]}" \
  --build-arg "PYTHON_IMAGE=$base" --tag "$image" --file "$root/Dockerfile" "$root" >&2
log "built $image"
echo "$image"
