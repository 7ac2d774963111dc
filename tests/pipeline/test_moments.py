"""Mergeable per-label sums: chunks' partial sums merge into exactly the whole image's."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hpcseg.pipeline.measure import column_names, from_moments, measure
from hpcseg.pipeline.moments import label_moments, merge

INTEGER_FIELDS = ("label", "count", "bbox_start", "bbox_stop")
FLOAT_FIELDS = ("intensity_sum", "intensity_min", "intensity_max", "coord_sum",
                "coord_products", "weighted_coord_sum")  # fmt: skip


def chunk_moments(labels, intensity, cuts):
    """The partial sums of each chunk of a grid cut at ``cuts`` (one list per axis)."""
    edges = [[0, *sorted(set(c)), n] for c, n in zip(cuts, labels.shape, strict=True)]
    parts = []
    for index in np.ndindex(*(len(e) - 1 for e in edges)):
        box = tuple(slice(e[i], e[i + 1]) for e, i in zip(edges, index, strict=True))
        origin = tuple(b.start for b in box)
        parts.append(label_moments(labels[box], intensity[box], origin))
    return [p for p in parts if len(p)] or parts[:1]


@st.composite
def labelled(draw, ndim):
    shape = draw(st.tuples(*[st.integers(2, 14)] * ndim))
    labels = draw(arrays(np.int32, shape, elements=st.integers(0, 5)))
    intensity = draw(arrays(np.uint16, shape, elements=st.integers(0, 65535)))
    cuts = [draw(st.lists(st.integers(1, n - 1), max_size=3)) for n in shape]
    return labels, intensity, cuts


@settings(max_examples=60, deadline=None)
@given(data=st.one_of(labelled(2), labelled(3)))
def test_merged_chunks_equal_the_whole_image(data):
    labels, intensity, cuts = data
    whole = label_moments(labels, intensity)
    merged = merge(chunk_moments(labels, intensity, cuts))
    for name in INTEGER_FIELDS:  # counts and boxes: exactly
        assert np.array_equal(getattr(merged, name), getattr(whole, name)), name
    for name in FLOAT_FIELDS:  # sums of integers below 2**53: exactly
        assert np.array_equal(getattr(merged, name), getattr(whole, name)), name
    # M2 merged by Chan's formula: equal up to rounding
    assert np.allclose(merged.intensity_m2, whole.intensity_m2, rtol=1e-9, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(data=labelled(2))
def test_columns_from_merged_sums_equal_measure(data):
    labels, intensity, cuts = data
    direct = measure(labels, intensity)
    merged = from_moments(merge(chunk_moments(labels, intensity, cuts)), labels.shape)
    for name in column_names(2, shape_features=False):
        assert np.allclose(merged[name], direct[name], rtol=1e-9, atol=1e-9, equal_nan=True), name


def test_std_of_a_bright_flat_object_has_no_cancellation():
    """E[x²] - E[x]² would lose the spread of values near 65535; M2 keeps it."""
    labels = np.ones((40, 40), np.int32)
    intensity = np.full((40, 40), 65534, np.uint16)
    intensity[::2] = 65535  # std exactly 0.5
    parts = chunk_moments(labels, intensity, [[7, 19, 33], [5]])
    assert len(parts) == 8
    std = from_moments(merge(parts), labels.shape)["intensity_std"]
    assert abs(std[0] - 0.5) < 1e-12


def test_one_part_merges_to_itself_and_absent_labels_are_skipped():
    labels = np.zeros((6, 6), np.int32)
    labels[1:3, 1:3] = 4
    m = label_moments(labels, np.arange(36, dtype=np.uint16).reshape(6, 6))
    assert merge([m]) is m
    assert m.label.tolist() == [4] and m.count.tolist() == [4]
    assert m.bbox_start.tolist() == [[1, 1]] and m.bbox_stop.tolist() == [[3, 3]]
    assert m.intensity_min.tolist() == [7.0] and m.intensity_max.tolist() == [14.0]
