"""Filters run band by band (hpcseg.pipeline.bands) give the whole array's values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from hpcseg.pipeline.bands import in_bands

FILTERS = {
    "gaussian sigma 2 (reach 8)": (lambda a: ndi.gaussian_filter(a, 2.0), 8),
    "gaussian per axis (reach 4)": (lambda a: ndi.gaussian_filter(a, (1.0, 3.0)), 4),
    "maximum 9 (reach 4)": (lambda a: ndi.maximum_filter(a, size=9), 4),
    "maximum 4x7, even (reach 2)": (lambda a: ndi.maximum_filter(a, size=(4, 7)), 2),
    "box 31 (reach 15)": (lambda a: ndi.uniform_filter(a, 31), 15),
}


@pytest.mark.parametrize("name", list(FILTERS))
@pytest.mark.parametrize("rows", [1, 7, 64])
def test_bands_equal_the_whole_array(name, rows):
    fn, reach = FILTERS[name]
    rng = np.random.default_rng(0)
    image = rng.integers(0, 4000, (203, 57)).astype(np.float32)  # rows do not divide 203
    np.testing.assert_array_equal(in_bands(fn, image, reach, rows), fn(image))
    mask = rng.random((203, 57)) < 0.3
    if "maximum" in name:
        np.testing.assert_array_equal(in_bands(fn, mask, reach, rows), fn(mask))


def test_a_short_reach_shows():
    """The check above can fail: bands without the filter's whole reach differ."""
    fn, _ = FILTERS["gaussian sigma 2 (reach 8)"]
    image = np.random.default_rng(1).random((100, 40)).astype(np.float32)
    assert not np.array_equal(in_bands(fn, image, 3, 10), fn(image))


def test_3d_and_small_arrays_go_whole_and_long_reaches_widen_the_bands():
    calls = []

    def fn(a):
        calls.append(a.shape)
        return a * 2

    volume = np.ones((40, 30, 30), np.float32)
    np.testing.assert_array_equal(in_bands(fn, volume, 1, 8), volume * 2)
    assert calls == [(40, 30, 30)]  # 3-D: whole, although 40 planes make five bands of 8
    in_bands(fn, np.ones((16, 5)), 1, 8)
    assert calls[1:] == [(16, 5)]  # not more than two bands
    in_bands(fn, np.ones((40, 5)), 2, 8)
    assert calls[2:] == [(10, 5), (12, 5), (12, 5), (12, 5), (10, 5)]
    del calls[:]
    in_bands(fn, np.ones((2000, 3)), 100)  # default bands: 4 x reach = 400 rows, not 256
    assert calls == [(500, 3), (600, 3), (600, 3), (600, 3), (500, 3)]
