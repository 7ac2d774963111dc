"""The array-library seam: every stage takes its array library from its input.

A stage calls ``backend_of(image)`` and uses the returned namespaces (``xp`` for NumPy-like
array functions, ``ndimage`` for ``scipy.ndimage``-like filters and labelling, ``filters`` and
``segmentation`` for the scikit-image functions it needs), so an array of another library flows
through the whole pipeline unchanged and comes out as the same type. This is dask-image's
dispatch by chunk type, reduced to one lookup. NumPy is built in; CuPy
(:mod:`hpcseg.pipeline.gpu`: ``cupyx.scipy.ndimage`` and the portable scikit-image functions of
:mod:`hpcseg.pipeline.portable`) is registered by :func:`hpcseg.pipeline.devices.select` when
``pipeline.backend`` asks for it, so importing hpcseg never needs CuPy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import scipy.ndimage
import skimage.filters
import skimage.segmentation


@dataclass(frozen=True)
class Backend:
    """The namespaces one array library provides to the stages."""

    name: str
    xp: ModuleType | Any  # numpy-like: zeros, bincount, unique, ...
    ndimage: ModuleType | Any  # scipy.ndimage-like: gaussian_filter, label, find_objects, ...
    filters: ModuleType | Any  # skimage.filters-like: threshold_otsu, threshold_li
    segmentation: ModuleType | Any  # skimage.segmentation-like: watershed, clear_border
    to_host: Callable[[Any], np.ndarray] = np.asarray  # to a NumPy array (CPU-only steps)
    from_host: Callable[[np.ndarray], Any] = np.asarray  # a NumPy array into this library
    # whole-array steps instead of per-object loops (a GPU launches a kernel per call and
    # waits on each Python-side decision, so many small calls cost more than one big one)
    batched: bool = False
    # wait for the device's queued work (kernels run asynchronously; a stage's time is read
    # after it), a no-op on NumPy
    synchronize: Callable[[], None] = lambda: None


NUMPY = Backend("numpy", np, scipy.ndimage, skimage.filters, skimage.segmentation)

# (array type, backend), most specific first: a subclass registered later is found first
_REGISTRY: list[tuple[type, Backend]] = [(np.ndarray, NUMPY)]


def register(array_type: type, backend: Backend) -> None:
    """Use ``backend`` for arrays of ``array_type`` (and its subclasses)."""
    _REGISTRY.insert(0, (array_type, backend))


def unregister(array_type: type) -> None:
    _REGISTRY[:] = [(t, b) for t, b in _REGISTRY if t is not array_type]


def backend_of(array: Any) -> Backend:
    """The backend of ``array``'s library; TypeError for a library none is registered for."""
    for array_type, backend in _REGISTRY:
        if isinstance(array, array_type):
            return backend
    raise TypeError(
        f"no array backend is registered for {type(array).__module__}.{type(array).__qualname__}"
    )
