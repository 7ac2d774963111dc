#!/usr/bin/env bash
# The GPU check, in two halves (the lent GPU machine has no network: its wheels go with it).
#
#   bash benchmarks/gpu_check.sh wheels   # here: wheels for the GPU machine into .gpu-wheels/
#   bash benchmarks/gpu_check.sh device   # there (run tool, carry .gpu-wheels): install them,
#                                         # run the gpu-marked tests, then bench_gpu.py
#
# The GPU machine has Python 3.12, CUDA 13, cupy-cuda13x, numpy, scipy, scikit-image,
# tifffile and pyarrow installed, and not dask, distributed, hydra-core or zarr: those (and
# pytest) are the wheels. dask-cuda is not among them (it pulls numba and pandas: over the
# 64 MiB a run may carry), so bench_gpu.py runs its GPU rows with cluster=local and one worker.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=.gpu-wheels
FRAMES=${GPU_CHECK_FRAMES:-200}
PY=${GPU_CHECK_PYTHON:-3.12}  # the GPU machine's Python (another, to try the install here)

case "${1:-}" in
wheels)
    rm -rf "$WHEELS" && mkdir -p "$WHEELS"
    pip wheel -q --no-deps -w "$WHEELS" antlr4-python3-runtime==4.9.3  # an sdist on PyPI
    pip download -q -d "$WHEELS" --find-links "$WHEELS" --only-binary=:all: \
        --python-version "$PY" --implementation cp --abi "cp${PY/./}" --abi abi3 --abi none \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
        -c containers/constraints.txt \
        "dask[array]" distributed dask-jobqueue cryptography "zarr>=3" hydra-core omegaconf \
        pyyaml tqdm pytest hypothesis "setuptools>=77"
    rm -f "$WHEELS"/numpy-*.whl  # the GPU machine's own NumPy stays
    du -sh "$WHEELS"
    ;;
device)
    python3 -m venv --system-site-packages /tmp/hpcseg-gpu-venv
    py=/tmp/hpcseg-gpu-venv/bin/python
    $py -m pip install -q --no-index --find-links "$WHEELS" \
        "dask[array]" distributed dask-jobqueue cryptography "zarr>=3" hydra-core omegaconf \
        pyyaml tqdm pytest hypothesis
    # hpcseg itself (its conf/ becomes hpcseg.conf only in an install), built from these wheels
    $py -m pip install -q --no-index --find-links "$WHEELS" --no-deps .
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    $py -c "import cupy; print('cupy', cupy.__version__, cupy.cuda.runtime.getDeviceCount(), 'GPU(s)')" ||
        echo "CuPy does not import or sees no GPU: the gpu tests will skip"
    # the GPU sides of the stage tests (and their stand-in sides, as a control)
    # from another folder, so that Python imports the installed hpcseg, not ./hpcseg
    repo=$PWD
    cd /tmp
    $py -m pytest -q -o addopts="" -p no:cacheprovider -rs \
        "$repo"/tests/pipeline/test_stages_on_devices.py "$repo"/tests/pipeline/test_portable.py \
        "$repo"/tests/pipeline/test_flood.py && tests=0 || tests=$?
    $py "$repo"/benchmarks/bench_gpu.py --frames "$FRAMES" --workers "$(nproc)"
    [ "$tests" = 0 ] || echo "gpu_check: the tests failed (exit code $tests, above)" >&2
    exit "$tests"
    ;;
*)
    echo "usage: bash benchmarks/gpu_check.sh wheels|device" >&2
    exit 2
    ;;
esac
