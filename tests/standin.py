"""A stand-in array library for the GPU code path: NumPy arrays of a subclass whose namespaces
hand back that subclass (as CuPy's hand back CuPy arrays), with the GPU backend's portable
scikit-image functions and ``batched=True``. Tests register it to run CuPy's code path here."""

from __future__ import annotations

import numpy as np
import scipy.ndimage

from hpcseg.pipeline import backend, portable


class OnDevice(np.ndarray):
    """The stand-in library's array type. Like CuPy's, it refuses to meet a NumPy array (one
    that is not a scalar) in an arithmetic operation or comparison: code that mixes host and
    device arrays fails here as it would on a GPU."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        for x in (*inputs, *kwargs.get("out", ())):
            if type(x) is np.ndarray and x.ndim > 0:
                raise TypeError(f"{ufunc.__name__}: a NumPy array met a device array")
        host = [x.view(np.ndarray) if isinstance(x, OnDevice) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(
                o.view(np.ndarray) if isinstance(o, OnDevice) else o for o in kwargs["out"]
            )
        return _wrap(getattr(ufunc, method)(*host, **kwargs))


def _wrap(result):
    if isinstance(result, np.ndarray) and not isinstance(result, OnDevice):
        return result.view(OnDevice)
    if isinstance(result, tuple):
        return tuple(_wrap(r) for r in result)
    return result


class Wrapping:
    """A namespace whose functions return the stand-in type."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        value = getattr(self._module, name)
        if not callable(value) or isinstance(value, type | np.ufunc):
            return value
        return lambda *args, **kwargs: _wrap(value(*args, **kwargs))


def register() -> backend.Backend:
    """Register the stand-in (undo with :func:`unregister`) and return it."""
    stand_in = backend.Backend(
        "stand-in",
        Wrapping(np),
        Wrapping(scipy.ndimage),
        Wrapping(portable.FILTERS),
        Wrapping(portable.SEGMENTATION),
        to_host=lambda x: np.asarray(x).view(np.ndarray),
        from_host=lambda x: np.asarray(x).view(OnDevice),
        batched=True,
    )
    backend.register(OnDevice, stand_in)
    return stand_in


def unregister() -> None:
    backend.unregister(OnDevice)
