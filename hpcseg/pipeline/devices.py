"""Which array library a worker's stages use: ``pipeline.backend`` resolved where they run."""

from __future__ import annotations

from hpcseg.pipeline import gpu
from hpcseg.pipeline.backend import NUMPY, Backend


def select(name: str) -> Backend:
    """The backend ``pipeline.backend`` names: ``numpy``; ``cupy`` (a UserError saying what is
    missing where CuPy or a GPU is); ``auto``: CuPy where this process sees a GPU, else NumPy."""
    if name == "numpy":
        return NUMPY
    if name == "cupy":
        return gpu.backend()
    if name == "auto":
        return gpu.backend() if gpu.available() else NUMPY
    raise ValueError(f"unknown array backend {name!r}: auto, numpy or cupy")
