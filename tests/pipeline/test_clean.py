"""Mask clean-up: hole filling and small-object removal."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage as ndi

from hpcseg.pipeline import clean


def test_fill_holes_and_remove_small():
    mask = np.zeros((20, 20), bool)
    mask[2:9, 2:9] = True
    mask[5, 5] = False  # a hole
    mask[15, 15] = True  # a one-pixel speck
    filled = clean.fill_holes(mask)
    assert filled[5, 5] and filled.sum() == 49 + 1
    kept = clean.remove_small(filled, min_area=2)
    assert not kept[15, 15] and kept.sum() == 49


@settings(max_examples=150, deadline=None)
@given(mask=arrays(bool, st.tuples(st.integers(1, 30), st.integers(1, 30))))
def test_fill_holes_equals_scipy(mask):
    assert np.array_equal(clean.fill_holes(mask), ndi.binary_fill_holes(mask))


@settings(max_examples=150, deadline=None)
@given(
    mask=arrays(bool, st.tuples(st.integers(1, 30), st.integers(1, 30))),
    max_size=st.integers(0, 20),
)
def test_fill_holes_up_to_a_size_fills_exactly_the_small_holes(mask, max_size):
    holes, _ = ndi.label(ndi.binary_fill_holes(mask) & ~mask)
    sizes = np.bincount(holes.ravel())
    small = (sizes <= max_size)[holes] & (holes > 0)
    assert np.array_equal(clean.fill_holes(mask, max_size), mask | small)
