"""Labelling and canonical label order."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from hpcseg.pipeline import label
from hpcseg.pipeline.label import label_sizes


def test_raster_order_relabels_by_first_pixel():
    labels = np.array([[0, 7, 7], [3, 0, 0], [3, 0, 9]])
    assert label.raster_order(labels).tolist() == [[0, 1, 1], [2, 0, 0], [2, 0, 3]]


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(0, 6), max_size=60),
    run=st.integers(1, 9),
    minlength=st.integers(0, 12),
    dtype=st.sampled_from([np.uint8, np.uint16, np.int32, np.int64]),
)
def test_label_sizes_equal_bincount(values, run, minlength, dtype):
    labels = np.repeat(np.asarray(values, dtype), run)  # runs of equal labels, as in images
    expected = np.bincount(labels, minlength=minlength)
    got = label_sizes(labels.reshape(-1, run) if labels.size else labels, minlength)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == expected.dtype


@settings(max_examples=60, deadline=None)
@given(
    shape=st.sampled_from([(1, 1), (7, 1), (1, 9), (23, 31), (64, 48), (5, 9, 11), (3, 1, 4)]),
    density=st.sampled_from([0.0, 0.01, 0.1, 0.4, 0.8, 1.0]),
    seed=st.integers(0, 2**31),
)
def test_sparse_labels_equal_scipy_label_with_full_connectivity(shape, density, seed):
    """label_sparse numbers the seeds exactly as scipy.ndimage.label with the full structure
    (raster order of first pixels), from empty masks to full ones, 2-D and 3-D."""
    mask = np.random.default_rng(seed).random(shape) < density
    expected, n = ndi.label(mask, structure=np.ones((3,) * mask.ndim, bool), output=np.int32)
    got, m = label.label_sparse(mask)
    assert m == n and got.dtype == np.int32
    np.testing.assert_array_equal(got, expected)
