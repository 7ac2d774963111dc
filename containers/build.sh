#!/usr/bin/env bash
# Build an hpcseg Apptainer image from this source tree, reusing a cached one when nothing that
# goes into it changed.
#
#   containers/build.sh [debootstrap|gpu|gpu-cuda13|docker] [OUT.sif]     (default: debootstrap)
#
# debootstrap, gpu (CUDA 12: hpcseg[gpu]) and gpu-cuda13 (hpcseg[gpu-cuda13]) need only Debian's
# package mirror (taken from /etc/apt) and PyPI; docker needs a container registry. The gpu
# images install constraints.txt with the pins of constraints-gpu[-cuda13].txt in place of its
# own for the same packages. The image is cached as $HPCSEG_IMAGE_CACHE/hpcseg-<kind>-<key>.sif
# (default /var/cache/hpcseg/images), <key> = hash of the def file, the pinned constraints and the
# package sources; OUT.sif, if given, is a copy. Prints the image path on the last line.
set -euo pipefail
kind=${1:-debootstrap}
out=${2:-}
repo=$(cd "$(dirname "$0")/.." && pwd)
overlay=  # constraints that replace constraints.txt's pins for the same packages
case "$kind" in
    debootstrap) def=$repo/containers/hpcseg-debootstrap.def ;;
    docker) def=$repo/containers/hpcseg.def ;;
    gpu) def=$repo/containers/hpcseg-gpu.def overlay=$repo/containers/constraints-gpu.txt ;;
    gpu-cuda13) def=$repo/containers/hpcseg-gpu.def
                overlay=$repo/containers/constraints-gpu-cuda13.txt ;;
    *) echo "usage: $0 [debootstrap|gpu|gpu-cuda13|docker] [OUT.sif]" >&2; exit 2 ;;
esac
cache=${HPCSEG_IMAGE_CACHE:-/var/cache/hpcseg/images}
mkdir -p "$cache"
key=$( { cat "$def" "$repo/containers/constraints.txt" ${overlay:+"$overlay"}
         cd "$repo" && find pyproject.toml README.md hpcseg conf -type f -not -name '*.pyc' \
             -not -path '*/__pycache__/*' | LC_ALL=C sort | xargs sha256sum; } | sha256sum | cut -c1-16)
image=$cache/hpcseg-$kind-$key.sif
if [ ! -s "$image" ]; then
    command -v apptainer >/dev/null || { echo "apptainer not found: run containers/install-apptainer.sh" >&2; exit 1; }
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    python3 -m pip wheel --quiet --no-deps -w "$work/wheel" "$repo" >&2
    wheel=$(ls "$work"/wheel/hpcseg-*.whl)
    version=$(basename "$wheel" | cut -d- -f2)
    constraints=$repo/containers/constraints.txt
    if [ -n "$overlay" ]; then
        # constraints.txt without the packages the overlay pins (names normalised), then the overlay
        constraints=$work/constraints.txt
        awk 'function name(l) { sub(/[ \t]*[<>=!~;[].*/, "", l); l = tolower(l)
                                gsub(/[-_.]+/, "-", l); return l }
             FNR == NR { if ($0 !~ /^[ \t]*(#|$)/) pinned[name($0)] = 1; next }
             !(name($0) in pinned)' "$overlay" "$repo/containers/constraints.txt" > "$constraints"
        cat "$overlay" >> "$constraints"
    fi
    args=(--build-arg "WHEEL=$wheel" --build-arg "CONSTRAINTS=$constraints"
          --build-arg "VERSION=$version")
    # gpu: 3.7 GB to squash; gzip level 1 takes a quarter of the default 9's time on 2 cores for
    # a 5 % larger image, and any Apptainer or kernel reads it
    case "$kind" in
        gpu) args+=(--build-arg EXTRA=gpu --build-arg CUDA=12) ;;
        gpu-cuda13) args+=(--build-arg EXTRA=gpu-cuda13 --build-arg CUDA=13) ;;
    esac
    case "$kind" in gpu*) args+=(--mksquashfs-args "-Xcompression-level 1") ;; esac
    if [ "$kind" != docker ]; then
        mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
        [ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
        args+=(--build-arg "MIRROR=$mirror" --build-arg "CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt")
    fi
    start=$SECONDS
    APPTAINER_USERNS=1 apptainer build --force "${args[@]}" "$work/image.sif" "$def" >&2
    mv "$work/image.sif" "$image"
    echo "built $image in $((SECONDS - start)) s ($(du -h "$image" | cut -f1))" >&2
fi
if [ -n "$out" ]; then cp "$image" "$out"; image=$(cd "$(dirname "$out")" && pwd)/$(basename "$out"); fi
echo "$image"
