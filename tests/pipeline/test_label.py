"""Labelling and canonical label order."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

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
