"""A seeded watershed made of whole-array operations, for array libraries without one (CuPy).

``skimage.segmentation.watershed`` floods from the markers with a priority queue: the lowest
pixel next, ties first-come first-served, and each pixel takes the label of the neighbour whose
pop labelled it. Neither CuPy nor cuCIM has a watershed, and a priority queue does not map onto
array operations. :func:`watershed` reaches the same result by relaxation instead. Each pixel
has a key ``(level, steps)``: ``level`` is the highest value on its way from a marker (the flood
level at which the queue pops it) and ``steps`` the pixels since that level was reached (the
queue's first-come order on a plateau). Each pass gives every pixel the label of its neighbour
with the smallest key (the neighbour the queue pops first) and the key that follows from it,
until a pass changes nothing: keys only fall, and a pixel's key is always above its source's,
so the passes end after about as many as the longest flood path has pixels. A pass is slices,
comparisons and ``where`` over the whole array: no per-pixel loop, no sort, no queue.

The labels agree with scikit-image's on the same image, markers and mask except where two
floods reach a pixel with equal keys (the queue's global arrival order is not kept);
``tests/pipeline/test_flood.py`` measures the agreement on clumps of nuclei.
"""

from __future__ import annotations

import itertools
from typing import Any

from hpcseg.pipeline.backend import backend_of

Array = Any


def neighbour_offsets(ndim: int, connectivity: int) -> list[tuple[int, ...]]:
    """The offsets of a pixel's neighbours: at most ``connectivity`` axes change (by one)."""
    return [
        offset
        for offset in itertools.product((-1, 0, 1), repeat=ndim)
        if 0 < sum(map(abs, offset)) <= connectivity
    ]


def _shifted(offset: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """(pixels, their neighbours at ``offset``) as two slicings of the same shape."""
    here = tuple(slice(None, -1) if k > 0 else slice(1, None) if k < 0 else slice(None)
                 for k in offset)  # fmt: skip
    there = tuple(slice(1, None) if k > 0 else slice(None, -1) if k < 0 else slice(None)
                  for k in offset)  # fmt: skip
    return here, there


def watershed(image: Array, markers: Array, mask: Array | None = None, connectivity: int = 1):
    """Labels of ``markers`` flooded over ``image`` within ``mask`` (skimage's arguments).

    ``markers``: positive labels at the seeds, 0 elsewhere; pixels outside ``mask`` are 0.
    Only the bounding box of ``mask`` is flooded.
    """
    xp = backend_of(image).xp
    if mask is None:
        mask = xp.ones(image.shape, bool)
    labels = xp.zeros(markers.shape, markers.dtype)
    box = bounding_box(mask)
    if box is not None:
        seeds = xp.where(mask[box], markers[box], 0)
        labels[box] = _flood(image[box], seeds, mask[box], connectivity)
    return labels


def bounding_box(mask: Array) -> tuple[slice, ...] | None:
    """The smallest box holding every true pixel of ``mask``; None if there is none."""
    xp = backend_of(mask).xp
    box = []
    for axis in range(mask.ndim):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        where = xp.flatnonzero(mask.any(axis=others) if others else mask)
        if len(where) == 0:
            return None
        box.append(slice(int(where[0]), int(where[-1]) + 1))
    return tuple(box)


def _flood(image: Array, markers: Array, mask: Array, connectivity: int):
    """The relaxation on one box (module docstring)."""
    xp = backend_of(image).xp
    labels = markers
    height = image if image.dtype.kind == "f" else image.astype(xp.float64)
    free = mask & (labels == 0)  # the pixels the flood labels
    level = xp.where(labels > 0, height, xp.inf).astype(height.dtype)  # key: (level, steps)
    steps = xp.zeros(image.shape, xp.int32)
    moves = [_shifted(offset) for offset in neighbour_offsets(image.ndim, connectivity)]
    while True:
        # every free pixel's smallest-keyed neighbour (the first in offset order on a tie)
        best_level = xp.full(image.shape, xp.inf, height.dtype)
        best_steps = xp.zeros(image.shape, xp.int32)
        best_label = xp.zeros(image.shape, labels.dtype)
        for here, there in moves:
            their_level, their_steps = level[there], steps[there]
            better = (their_level < best_level[here]) | (
                (their_level == best_level[here]) & (their_steps < best_steps[here])
            )
            best_level[here] = xp.where(better, their_level, best_level[here])
            best_steps[here] = xp.where(better, their_steps, best_steps[here])
            best_label[here] = xp.where(better, labels[there], best_label[here])
        reached = free & (best_label > 0)
        new_level = xp.where(reached, xp.maximum(best_level, height), xp.inf)
        new_steps = xp.where(reached & (new_level == best_level), best_steps + 1, 0)
        new_label = xp.where(reached, best_label, 0)
        changed = free & ((new_label != labels) | (new_level != level) | (new_steps != steps))
        if not bool(changed.any()):
            return labels
        level = xp.where(free, new_level, level).astype(height.dtype, copy=False)
        steps = xp.where(free, new_steps, steps).astype(xp.int32, copy=False)
        labels = xp.where(free, new_label, labels).astype(markers.dtype, copy=False)
