"""CuPy as a backend: the stages on an NVIDIA GPU, only the per-object table back on the host.

``cupyx.scipy.ndimage`` provides the filters, labelling, distance transforms and per-label
reductions; :mod:`hpcseg.pipeline.portable` the scikit-image functions (Otsu on a histogram made
on the device, clear_border, the watershed of :mod:`hpcseg.pipeline.flood`). CuPy is imported
here only, and only when a run asks for it (``pipeline.backend=cupy``, or ``auto`` on a worker).
"""

from __future__ import annotations

import functools
import os

from hpcseg.errors import UserError
from hpcseg.pipeline import backend as backends
from hpcseg.pipeline import portable

INSTALL_HINT = "pip install 'hpcseg[gpu]' (CuPy for CUDA 12; see the README's GPU section)"


def _cupy():
    try:
        import cupy
    except ImportError as exc:
        raise UserError(f"pipeline.backend=cupy needs CuPy, which is not installed here "
                        f"({exc}): {INSTALL_HINT}") from None  # fmt: skip
    return cupy


@functools.cache
def available() -> bool:
    """True where CuPy imports, sees a GPU and runs a kernel on it (what ``backend=auto`` asks:
    a broken CUDA toolkit falls back to NumPy instead of failing every image)."""
    try:
        cupy = _cupy()
        return _device_count(cupy) > 0 and int((cupy.arange(3) + 1).sum()) == 6
    except Exception:
        return False


def _device_count(cupy) -> int:
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # no driver, no device, CUDA_VISIBLE_DEVICES empty
        return 0


@functools.cache
def backend() -> backends.Backend:
    """The CuPy backend, registered for ``cupy.ndarray``; a UserError without CuPy or a GPU."""
    cupy = _cupy()
    if _device_count(cupy) == 0:
        raise UserError(
            "pipeline.backend=cupy, but CuPy sees no GPU here (CUDA_VISIBLE_DEVICES="
            f"{_visible_devices()}): run on a GPU node (cluster=local_gpu, slurm_gpu, "
            "pbs_gpu) or use pipeline.backend=auto"
        )
    import cupyx.scipy.ndimage

    gpu = backends.Backend(
        "cupy",
        cupy,
        cupyx.scipy.ndimage,
        portable.FILTERS,
        portable.SEGMENTATION,
        to_host=cupy.asnumpy,
        from_host=cupy.asarray,
        batched=True,
        synchronize=lambda: cupy.cuda.get_current_stream().synchronize(),
    )
    backends.register(cupy.ndarray, gpu)
    return gpu


def _visible_devices() -> str:
    return os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
