"""Every stage and measurement on the GPU code path, against the same stage on NumPy.

The ``device`` fixture (conftest) runs each test on the stand-in library (NumPy arrays through
the GPU backend's portable functions and batched steps: always) and on CuPy (marker ``gpu``,
where a GPU is). Integer and boolean results must be equal; results that go through float
filters may differ where a device sums in another order (cupyx filters float32 data in float32),
so those allow a stated fraction of pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from hpcseg.config.compose import load_config
from hpcseg.data.synthetic import synthetic_frame, synthetic_stack
from hpcseg.pipeline import clean, label, measure, portable, refine, smooth, split, threshold
from hpcseg.pipeline.segment import segment
from hpcseg.results.evaluate import score, tp_column

# float-filter decisions: the fraction of pixels a device may decide differently
FLOAT_PIXELS = 1e-3


def _frame(index: int = 0):
    return synthetic_frame(11, index, shape=(160, 200))[0]


def _equal(device, got, expected):
    np.testing.assert_array_equal(device.to_host(got), expected)


def _mostly_equal(device, got, expected):
    differ = int((device.to_host(got) != expected).sum())
    assert differ <= FLOAT_PIXELS * expected.size, differ


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16])
def test_integer_gaussian_is_scipys_bit_for_bit(device, dtype):
    rng = np.random.default_rng(1)
    top = np.iinfo(dtype).max
    for shape, sigmas in [
        ((61, 73), (1.0, 1.0)),
        ((9, 40, 37), (0.5, 2.0, 2.0)),
        ((30, 31), (0.0, 3.5)),
    ]:
        image = rng.integers(0, top, size=shape, endpoint=True).astype(dtype)
        expected = ndi.gaussian_filter(image, sigmas, mode="reflect", truncate=4.0)
        got = portable.gaussian_filter_integer(device.from_host(image), sigmas)
        assert got.dtype == dtype
        _equal(device, got, expected)


@pytest.mark.parametrize("keep_dtype", [True, False])
def test_smooth(device, keep_dtype):
    image = _frame()
    expected = smooth.gaussian(image, 1.0, keep_dtype)
    got = smooth.gaussian(device.from_host(image), 1.0, keep_dtype)
    if keep_dtype:  # the blog's smoothing: scipy's bits
        _equal(device, got, expected)
    else:
        np.testing.assert_allclose(device.to_host(got), expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("method", ["otsu", "log_otsu", "li"])
def test_global_thresholds(device, method):
    image = smooth.gaussian(_frame(), 1.0, False)
    expected = getattr(threshold, method)(image)
    got = getattr(threshold, method)(device.from_host(image))
    assert got == pytest.approx(expected, rel=1e-6)


def test_local_gaussian_threshold_is_exact(device):
    image = smooth.gaussian(_frame(), 1.0, True)
    _equal(
        device, threshold.local_gaussian(device.from_host(image)), threshold.local_gaussian(image)
    )


def _mask():
    image = smooth.gaussian(_frame(), 1.0, False)
    return image > threshold.log_otsu(image)


def test_clean_stages(device):
    mask = _mask()
    footprint = clean.opening_footprint("disk", 2)
    on = device.from_host(mask)
    _equal(device, clean.open_mask(on, footprint), clean.open_mask(mask, footprint))
    _equal(device, clean.fill_holes(on), clean.fill_holes(mask))
    _equal(device, clean.fill_holes(on, 5), clean.fill_holes(mask, 5))
    for connectivity in (1, 2):
        _equal(
            device,
            clean.remove_small(on, 30, connectivity),
            clean.remove_small(mask, 30, connectivity),
        )


def test_label_stages(device):
    mask = _mask()
    components = label.connected_components(mask, 1)
    _equal(device, label.connected_components(device.from_host(mask), 1), components)
    shuffled = np.random.default_rng(2).permutation(components.max() + 1)[components] * (
        components > 0
    )
    _equal(device, label.raster_order(device.from_host(shuffled)), label.raster_order(shuffled))
    _equal(
        device, label.label_sizes(device.from_host(components), 5), label.label_sizes(components, 5)
    )
    _equal(device, label.label_sizes(device.from_host(np.zeros(0, np.int32)), 3), np.zeros(3, int))
    _equal(
        device,
        portable.clear_border(device.from_host(components)),
        portable.clear_border(components),
    )


def test_refine(device):
    image = smooth.gaussian(_frame(), 1.0, False)
    components = label.connected_components(image > threshold.log_otsu(image), 1)
    expected = refine.refine_objects(image, components, 0.3)
    _mostly_equal(
        device,
        refine.refine_objects(device.from_host(image), device.from_host(components), 0.3),
        expected,
    )
    # with a level at hand and the bright levels from a smoother image (the per-object cut)
    bright = smooth.gaussian(_frame(), 2.0, False)
    level = refine.background_level(image, components > 0)
    expected = refine.refine_objects(image, components, 0.4, None, 3, 31, level, bright)
    on = [device.from_host(a) for a in (image, components, level, bright)]
    _mostly_equal(
        device, refine.refine_objects(on[0], on[1], 0.4, None, 3, 31, on[2], on[3]), expected
    )


@pytest.mark.parametrize("landscape", ["distance", "intensity", "distance_intensity"])
def test_split_finds_the_same_objects(device, landscape):
    """The batched split (one distance transform, one flood) against the per-component one:
    the same objects (IoU > 0.9) for all but 1 % of them."""
    image = smooth.gaussian(_frame(1), 1.0, False)
    mask = clean.remove_small(image > threshold.log_otsu(image), 20)
    expected = label.raster_order(split.watershed_split(mask, 4, 1.0, 1, None, landscape, image))
    got = label.raster_order(
        split.watershed_split(
            device.from_host(mask), 4, 1.0, 1, None, landscape, device.from_host(image)
        )
    )
    scores = score(expected, device.to_host(got))
    assert scores[tp_column(0.9)] >= 0.99 * max(scores["n_true"], scores["n_pred"]), scores


@pytest.mark.parametrize("ndim", [2, 3])
def test_measure_columns(device, ndim):
    image = _frame(2) if ndim == 2 else synthetic_stack(3, 0, shape=(12, 64, 72))[0]
    labels = label.connected_components(image > threshold.otsu(image), 1)
    expected = measure.measure(labels, image, shape_features=True, microns=(0.5,) * ndim)
    got = measure.measure(device.from_host(labels), device.from_host(image), True, (0.5,) * ndim)
    assert list(got) == list(expected)
    for name, values in expected.items():
        np.testing.assert_allclose(
            device.to_host(got[name]), values, rtol=1e-9, atol=1e-9, err_msg=name
        )
    summary = measure.image_summary(device.from_host(labels), device.from_host(image), got["area"])
    assert summary == pytest.approx(measure.image_summary(labels, image, expected["area"]))


def test_a_frame_without_objects(device):
    """Blank frames: empty bincounts and label lists (CuPy's bincount refused an empty array
    before 14.2, which the gpu extras therefore require)."""
    blank = np.full((64, 80), 100, np.uint16)
    for preset in ("nuclei", "blog2021"):
        result = segment(device.from_host(blank), load_config([f"pipeline={preset}"]).pipeline)
        assert int(result.labels.max()) == 0
        assert all(len(v) == 0 for v in result.objects.values())
