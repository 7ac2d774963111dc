"""Packed per-object transforms equal one call per object, exactly (ties included)."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.segmentation
from scipy import ndimage as ndi

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


def test_the_probe_finds_markers_queued_at_their_values():
    """The installed scikit-image queues markers at their image values (the probe's premise;
    if a release changes that, the packed watershed turns itself off and this says so)."""
    assert _markers_ranked()
