#!/usr/bin/env bash
# Install CellProfiler 5 (headless, no GUI) into its own virtualenv, for benchmarks/peers/cellprofiler_peer.py.
#
#   bash benchmarks/peers/install_cellprofiler.sh [VENV]
#
# VENV defaults to ${HPCSEG_PEERS:-$HOME/.cache/hpcseg/peers}/cellprofiler. Idempotent: exits at
# once when that venv's CellProfiler already imports and runs. Needs Python 3.9-3.11 (scipy<1.11,
# which CellProfiler 5 pins, has no wheels for 3.12+): $PYTHON, else python3, else python3.11.
#
# CellProfiler 5 is only published as nightly builds (cellprofiler-*-nightly) whose requirements
# include wxPython (the GUI, a long source build) and mysqlclient (needs the MySQL client headers),
# neither used headless. So: download the four nightly wheels without dependencies, read their
# Requires-Dist, install those minus wxPython and mysqlclient (and minus the four themselves)
# under the caps below, then install the four wheels with --no-deps.
set -euo pipefail

VERSION="${CELLPROFILER_VERSION:-5.0.0.dev784}"
VENV="${1:-${HPCSEG_PEERS:-$HOME/.cache/hpcseg/peers}/cellprofiler}"
PACKAGES=(cellprofiler-nightly cellprofiler-core-nightly cellprofiler-library-nightly centriole-nightly)
# versions known to work with this nightly (newer ones break its imports or its numpy<2 pin)
CAPS=("numpy<2" "scipy<1.11" "scikit-image<0.25" "scikit-learn<1.6" "zarr<3" "Pillow<12")
SKIP="wxpython mysqlclient"

# -I: no current or script directory on sys.path, where a local module would
# shadow the cellprofiler package
works() {
    [ -x "$VENV/bin/cellprofiler" ] &&
        "$VENV/bin/python" -I -c 'import cellprofiler_core.pipeline, cellprofiler.modules.identifyprimaryobjects, cellprofiler.modules.saveimages' \
            >/dev/null 2>&1
}

if works; then
    echo "CellProfiler already installed in $VENV"
    exit 0
fi

pick_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3 python3.11 python3.10 python3.9; do
        [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(not (3, 9) <= sys.version_info[:2] <= (3, 11))'; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}
PY="$(pick_python)" || {
    echo "error: need Python 3.9-3.11 with venv (set PYTHON=/path/to/python3.11)" >&2
    exit 1
}
echo "Installing CellProfiler $VERSION into $VENV with $("$PY" -V 2>&1)"
start=$SECONDS

if [ -e "$VENV" ]; then  # a broken earlier install: replace it, but never a non-venv folder
    [ -f "$VENV/pyvenv.cfg" ] || {
        echo "error: $VENV exists and is not a virtualenv; remove it or pick another path" >&2
        exit 1
    }
    rm -rf "$VENV"
fi
mkdir -p "$(dirname "$VENV")"
"$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input)
"${PIP[@]}" install --quiet --upgrade pip packaging

WHEELS="$(mktemp -d)"
trap 'rm -rf "$WHEELS"' EXIT
"${PIP[@]}" download --quiet --no-deps --only-binary=:all: -d "$WHEELS" \
    "${PACKAGES[@]/%/==$VERSION}"

# the wheels' own requirements (no extras), minus the skipped ones and the four nightlies
"$VENV/bin/python" - "$WHEELS" "$SKIP ${PACKAGES[*]}" >"$WHEELS/requirements.txt" <<'EOF'
import re, sys, zipfile
from pathlib import Path

from packaging.requirements import Requirement

skip = {re.sub(r"[-_.]+", "-", name).lower() for name in sys.argv[2].split()}
seen = set()
for wheel in sorted(Path(sys.argv[1]).glob("*.whl")):
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        for line in z.read(meta).decode().splitlines():
            if not line.startswith("Requires-Dist:"):
                continue
            req = Requirement(line.split(":", 1)[1].strip())
            name = re.sub(r"[-_.]+", "-", req.name).lower()
            if name in skip or (req.marker and "extra" in str(req.marker)):
                continue
            if req.marker and not req.marker.evaluate():
                continue
            text = str(req)
            if text not in seen:
                seen.add(text)
                print(text)
EOF
printf '%s\n' "${CAPS[@]}" >"$WHEELS/caps.txt"
echo "Dependencies (from the wheels' Requires-Dist): $(tr '\n' ' ' <"$WHEELS/requirements.txt")"
"${PIP[@]}" install --quiet --prefer-binary -c "$WHEELS/caps.txt" -r "$WHEELS/requirements.txt"
"${PIP[@]}" install --quiet --no-deps "$WHEELS"/*.whl

if ! works; then
    echo "error: CellProfiler was installed in $VENV but does not import" >&2
    "$VENV/bin/python" -I -c 'import cellprofiler.modules.identifyprimaryobjects' >&2 || true
    exit 1
fi
echo "CellProfiler $VERSION installed in $VENV in $((SECONDS - start)) s"
