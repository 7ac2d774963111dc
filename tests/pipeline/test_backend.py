"""The array-library seam: an array of another library flows through every stage unchanged.

A stand-in library (a NumPy subclass whose namespaces record each call and hand back the
stand-in type, as CuPy's would) is registered as a backend; segmenting one of its arrays must
reach every stage through it and give the same labels and columns as plain NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import skimage.filters
import skimage.segmentation

from hpcseg.config.schemas import PipelineConfig
from hpcseg.data.synthetic import synthetic_frame
from hpcseg.pipeline import backend
from hpcseg.pipeline.segment import segment


class Traced(np.ndarray):
    """The stand-in library's array type."""


class Recorder:
    """A namespace that records which functions are called and wraps array results."""

    def __init__(self, module, calls: list[str]):
        self._module, self._calls = module, calls

    def __getattr__(self, name):
        value = getattr(self._module, name)
        if isinstance(value, np.ufunc):  # keeps .at / .reduceat; recorded when looked up
            self._calls.append(f"{self._module.__name__}.{name}")
            return value
        if not callable(value) or isinstance(value, type):
            return value

        def call(*args, **kwargs):
            self._calls.append(f"{self._module.__name__}.{name}")
            return _wrap(value(*args, **kwargs))

        return call


def _wrap(result):
    if isinstance(result, np.ndarray) and not isinstance(result, Traced):
        return result.view(Traced)
    if isinstance(result, tuple):
        return tuple(_wrap(r) for r in result)
    return result


@pytest.fixture
def traced():
    calls: list[str] = []
    stand_in = backend.Backend(
        "traced",
        Recorder(np, calls),
        Recorder(scipy.ndimage, calls),
        Recorder(skimage.filters, calls),
        Recorder(skimage.segmentation, calls),
        to_host=lambda x: np.asarray(x).view(np.ndarray),
    )
    backend.register(Traced, stand_in)
    yield calls
    backend.unregister(Traced)


def test_unknown_array_types_are_refused():
    with pytest.raises(TypeError, match="no array backend"):
        backend.backend_of([1, 2, 3])


def test_numpy_arrays_get_the_numpy_backend():
    assert backend.backend_of(np.zeros(3)) is backend.NUMPY


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # nuclei: log-Otsu, refine components, watershed on distance
        {"refine": "objects", "landscape": "distance_intensity", "threshold": "otsu"},
        {"threshold": "local_gaussian", "split": "none", "refine": "none", "opening": "cross"},
    ],
)
def test_a_stand_in_array_reaches_every_stage(traced, overrides):
    image, _ = synthetic_frame(5, 0, shape=(128, 160))
    cfg = PipelineConfig()
    cfg.threshold.method = overrides.get("threshold", cfg.threshold.method)
    cfg.refine.method = overrides.get("refine", cfg.refine.method)
    cfg.split.method = overrides.get("split", cfg.split.method)
    cfg.split.landscape = overrides.get("landscape", cfg.split.landscape)
    cfg.clean.opening = overrides.get("opening", cfg.clean.opening)
    cfg.clean.exclude_border = True
    plain = segment(image, cfg)
    result = segment(image.view(Traced), cfg)

    assert type(result.labels) is Traced  # the stand-in type comes out
    assert np.array_equal(np.asarray(result.labels), plain.labels)
    for name, values in plain.objects.items():
        assert np.array_equal(np.asarray(result.objects[name]), values, equal_nan=True), name
    called = set(traced)
    expected = {
        "scipy.ndimage.gaussian_filter",  # smooth
        "scipy.ndimage.label",  # clean / label
        "numpy.bincount",  # clean, measure
        "numpy.searchsorted",  # measure: per-label min, max and boxes off NumPy
        "skimage.segmentation.clear_border",  # label: exclude_border
    }
    if cfg.threshold.method == "local_gaussian":
        expected.add("numpy.nonzero")
    else:
        expected.add("skimage.filters.threshold_otsu")
    if cfg.split.method == "watershed":
        expected |= {
            "scipy.ndimage.maximum_filter",
            "scipy.ndimage.find_objects",  # per-component distance and watershed boxes
            "skimage.segmentation.watershed",
        }
    if cfg.refine.method != "none":
        expected.add("scipy.ndimage.uniform_filter")  # refine: local background
    if cfg.clean.opening != "none":
        expected.add("scipy.ndimage.binary_opening")
    assert expected <= called, sorted(expected - called)
