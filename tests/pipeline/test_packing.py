"""Packed per-object transforms equal one call per object, exactly (ties included)."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.segmentation
from scipy import ndimage as ndi

from hpcseg.pipeline import packing
from hpcseg.pipeline.packing import _markers_ranked, distance_each, pack, watershed_each


def _blobs(rng: np.random.Generator, shape: tuple[int, ...], ringed: bool) -> np.ndarray:
    """A random mask of a few blobs, with an all-background ring or touching the faces."""
    mask = ndi.binary_dilation(rng.random(shape) < 0.05, iterations=2)
    if ringed:
        for axis in range(len(shape)):
            index = [slice(None)] * len(shape)
            for end in (0, -1):
                index[axis] = end
                mask[tuple(index)] = False
    return mask


@pytest.mark.parametrize("ndim", [2, 3])
def test_pack_keeps_boxes_apart_inside_the_canvas(ndim):
    rng = np.random.default_rng(ndim)
    shapes = [tuple(int(x) for x in rng.integers(1, 30, ndim)) for _ in range(60)]
    canvas, places = pack(shapes, gap=1)
    taken = np.zeros(canvas, np.int32)
    for i, (shape, place) in enumerate(zip(shapes, places, strict=True), start=1):
        assert tuple(s.stop - s.start for s in place) == shape
        assert all(s.start >= 0 and s.stop <= n for s, n in zip(place, canvas, strict=True))
        grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in place)
        assert not taken[grown].any(), "boxes must be a gap apart"
        taken[place] = i
    assert (taken > 0).sum() == sum(int(np.prod(s)) for s in shapes)


@pytest.mark.parametrize("seed", range(6))
def test_distance_each_equals_one_transform_per_mask(seed):
    rng = np.random.default_rng(seed)
    ndim = 2 + seed % 2
    sampling = (2.5, 1.0, 1.0) if ndim == 3 else (1.0, 1.0)
    masks, ringed = [], []
    for _ in range(25):
        shape = tuple(int(x) for x in rng.integers(3, 25 if ndim == 2 else 10, ndim))
        ok = bool(rng.random() < 0.8)
        masks.append(_blobs(rng, shape, ok))
        ringed.append(ok)
    for mask, ok, got in zip(masks, ringed, distance_each(masks, sampling, ringed), strict=True):
        expected = ndi.distance_transform_edt(mask, sampling=sampling)
        assert np.array_equal(got, expected), ok


def test_distance_each_needs_the_ring_it_is_told_of():
    """The guard is real: a mask touching its faces, packed as if ringed, comes out wrong."""
    rng = np.random.default_rng(0)
    touching = np.ones((6, 9), bool)
    touching[3, 4] = False
    masks = [touching, _blobs(rng, (12, 12), True)]
    packed = distance_each(masks, None, [True, True])[0]
    assert not np.array_equal(packed, ndi.distance_transform_edt(masks[0]))


def _flooding_problems(seed: int, distinct_markers: bool) -> tuple[list, list, list]:
    """Random (image, markers, mask) triples on few grey levels (many ties, which only the
    order of entry into the flood breaks); ``distinct_markers``: each box's markers at
    distinct values below the rest."""
    rng = np.random.default_rng(seed)
    ndim = 2 + seed % 2
    images, markers, masks = [], [], []
    for _ in range(20):
        shape = tuple(int(x) for x in rng.integers(4, 30 if ndim == 2 else 12, ndim))
        mask = rng.random(shape) < 0.9
        image = -rng.integers(0, 4, shape).astype(np.float32)
        seeds = np.where(rng.random(shape) < 0.03, rng.integers(1, 500, shape), 0) * mask
        if distinct_markers:
            at = np.flatnonzero(seeds)
            image.ravel()[at] = -10.0 - rng.permutation(len(at))
        images.append(image)
        markers.append(seeds.astype(np.int32))
        masks.append(mask)
    return images, markers, masks


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("connectivity", [1, 2])
@pytest.mark.parametrize("distinct_markers", [True, False])
def test_watershed_each_equals_one_watershed_per_box(
    seed, connectivity, distinct_markers, monkeypatch
):
    images, markers, masks = _flooding_problems(seed, distinct_markers)
    _markers_ranked()  # its probe's own floods, before they are counted
    calls = []
    flood = skimage.segmentation.watershed
    monkeypatch.setattr(
        skimage.segmentation, "watershed", lambda *a, **k: calls.append(1) or flood(*a, **k)
    )
    packed = watershed_each(images, markers, masks, connectivity)
    if distinct_markers:
        assert len(calls) == 1, "boxes whose markers are ranked are flooded in one call"
    for image, marker, mask, got in zip(images, markers, masks, packed, strict=True):
        expected = flood(image, marker, mask=mask, connectivity=connectivity)
        assert np.array_equal(got, expected)


def test_where_markers_queue_at_one_value_every_box_runs_alone(monkeypatch):
    """scikit-image 0.25.0-0.25.1 queue all markers at -inf (the probe says so): no packing."""
    images, markers, masks = _flooding_problems(0, True)
    monkeypatch.setattr(packing, "_markers_ranked", lambda: False)
    calls = []
    flood = skimage.segmentation.watershed
    monkeypatch.setattr(
        skimage.segmentation, "watershed", lambda *a, **k: calls.append(1) or flood(*a, **k)
    )
    packed = watershed_each(images, markers, masks)
    assert len(calls) == len(images)
    for image, marker, mask, got in zip(images, markers, masks, packed, strict=True):
        assert np.array_equal(got, flood(image, marker, mask=mask, connectivity=1))


def test_the_probe_matches_the_installed_flood():
    """The probe's verdict is what the installed watershed does with two markers of different
    values around one pixel (the lower one floods it when markers queue at their values)."""
    low_last = skimage.segmentation.watershed(
        np.array([[0.0, 0.0, -1.0]]), np.array([[1, 0, 2]], np.int32), connectivity=1
    )
    low_first = skimage.segmentation.watershed(
        np.array([[-1.0, 0.0, 0.0]]), np.array([[1, 0, 2]], np.int32), connectivity=1
    )
    by_value = low_last[0, 1] == 2 and low_first[0, 1] == 1
    assert _markers_ranked() == by_value


def test_a_box_with_nan_or_wide_markers_floods_as_on_its_own():
    """NaN heights order nothing (such a box runs alone); int64 markers come back int64."""
    rng = np.random.default_rng(3)
    images, markers, masks = _flooding_problems(2, True)
    images[0] = images[0].copy()
    images[0].ravel()[rng.choice(images[0].size, 5, replace=False)] = np.nan
    markers = [m.astype(np.int64) + (2**40 if i == 1 else 0) * (m > 0) for i, m in
               enumerate(markers)]  # fmt: skip
    packed = watershed_each(images, markers, masks)
    for image, marker, mask, got in zip(images, markers, masks, packed, strict=True):
        expected = skimage.segmentation.watershed(image, marker, mask=mask, connectivity=1)
        assert got.dtype == expected.dtype == np.int64
        assert np.array_equal(got, expected)


def test_canvases_hold_at_most_their_pixels_and_every_box_once(monkeypatch):
    monkeypatch.setattr(packing, "CANVAS_PIXELS", 2000)
    rng = np.random.default_rng(1)
    shapes = [tuple(int(x) for x in rng.integers(1, 20, 3)) for _ in range(80)] + [(30, 30, 30)]
    seen = []
    for group, canvas, places in packing.canvases(shapes, gap=1):
        assert len(group) == 1 or sum(int(np.prod(shapes[i])) for i in group) <= 2000
        assert len(places) == len(group)
        assert all(s.stop <= n for place in places for s, n in zip(place, canvas, strict=True))
        seen += group
    assert sorted(seen) == list(range(len(shapes)))
