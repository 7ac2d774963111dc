"""Many small per-object transforms as one: the objects' boxes packed side by side.

The declumping works object by object, on each object's box: a distance transform per object,
a watershed per clump. Each call costs SciPy's or scikit-image's fixed overhead (measured here:
~57 µs a distance transform, ~0.4 ms a watershed) on top of its few hundred pixels, so on a
frame of ~60 nuclei the overhead outweighed the work. Packed into one array (shelf packing,
boxes apart by a gap), one call does them all and each box's result is the one its own call
gives (why, in each function's docstring). For the backends that are not batched (NumPy); a GPU
takes whole-image transforms instead.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from hpcseg.pipeline.backend import backend_of

Box = tuple[slice, ...]


def pack(shapes: Sequence[tuple[int, ...]], gap: int = 1) -> tuple[tuple[int, ...], list[Box]]:
    """A canvas shape and each box's place in it (``shapes``' order), boxes ``gap`` pixels
    apart: boxes tallest first along the last axis in shelves about as wide as the canvas is
    tall, shelves stacked along the first axis (the middle axes of a 3-D box take the largest
    box's extent)."""
    if not shapes:
        return (), []
    ndim = len(shapes[0])
    middle = tuple(max(s[a] for s in shapes) for a in range(1, ndim - 1))
    area = sum((s[0] + gap) * (s[-1] + gap) for s in shapes)
    width = max(max(s[-1] for s in shapes), math.isqrt(area) + 1)
    places: list[Box | None] = [None] * len(shapes)
    top = x = tallest = 0
    for i in sorted(range(len(shapes)), key=lambda i: -shapes[i][0]):
        height, wide = shapes[i][0], shapes[i][-1]
        if x and x + wide > width:  # the shelf is full: start the next one below it
            top, x, tallest = top + tallest + gap, 0, 0
        mid = tuple(slice(0, shapes[i][a]) for a in range(1, ndim - 1))
        places[i] = (slice(top, top + height), *mid, slice(x, x + wide))
        x += wide + gap
        tallest = max(tallest, height)
    return (top + tallest, *middle, width), places  # type: ignore[return-value]


def distance_each(
    masks: Sequence[np.ndarray], sampling: Sequence[float] | None, ringed: Sequence[bool]
) -> list[np.ndarray]:
    """``scipy.ndimage.distance_transform_edt(mask, sampling=sampling)`` of each mask, the
    ``ringed`` ones (every face background, as an object's box grown by one pixel on every
    side) as one transform of them packed. Exact: for a pixel of one box, any background pixel
    outside its box is no nearer than the ring pixel it projects onto (each coordinate's
    distance can only shrink), so the nearest background pixel is its own box's. A box cut by
    the image's edge has no ring there (SciPy counts nothing beyond the array as background)
    and gets its own call."""
    if not masks:
        return []
    be = backend_of(masks[0])
    edt = be.ndimage.distance_transform_edt
    out: list[np.ndarray | None] = [None] * len(masks)
    packed = [i for i, ok in enumerate(ringed) if ok]
    for i, ok in enumerate(ringed):
        if not ok:
            out[i] = edt(masks[i], sampling=sampling)
    if packed:
        shape, places = pack([masks[i].shape for i in packed], gap=0)
        canvas = be.xp.zeros(shape, bool)
        for i, place in zip(packed, places, strict=True):
            canvas[place] = masks[i]
        distance = edt(canvas, sampling=sampling)
        for i, place in zip(packed, places, strict=True):
            out[i] = distance[place]
    return out  # type: ignore[return-value]


@functools.cache
def _markers_ranked() -> bool:
    """Whether scikit-image's watershed takes its markers off the queue in the order of their
    image values (it queues them at their values, all of age 0). Where markers queue at one
    value (-inf), their order is the queue's internal one, which packing changes: then every
    watershed runs on its own. Probed with two markers either side of one pixel, the lower
    first and then last in raster order: by value, the lower floods the pixel both times."""
    segmentation = backend_of(np.zeros(1)).segmentation
    markers = np.array([[1, 0, 2]], np.int32)
    wins = [
        int(segmentation.watershed(np.array([image]), markers, connectivity=1)[0, 1])
        for image in ([0.0, 0.0, -1.0], [-1.0, 0.0, 0.0])
    ]
    return wins == [2, 1]


def _ranked(image: np.ndarray, markers: np.ndarray, mask: np.ndarray) -> bool:
    """Whether no two of the markers (seed pixels inside ``mask``) share an image value."""
    values = image[(markers != 0) & mask]
    return values.size == np.unique(values).size


def watershed_each(
    images: Sequence[np.ndarray],
    markers: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    connectivity: int = 1,
) -> list[np.ndarray]:
    """``skimage.segmentation.watershed(image, markers, mask=mask, connectivity=...)`` of each
    triple, those whose markers have distinct image values as one watershed of them packed a
    pixel apart (the gap is outside the mask, so no flood crosses between boxes).

    The same labels: the flood takes pixels off its queue by (value, age of entry), where
    every pixel has a distinct age but the markers all enter at age 0. With the markers of a
    box at distinct values, its pixels are ordered strictly, so the other boxes' pixels never
    change which of its own goes first (a pixel queued later has a value no lower and a later
    age). A box with two markers at one value (a plateau of a seed, two seeds at the same
    height) is left to the queue's internal order for them, which packing would change: it
    runs on its own, as does every box where the markers all queue at one value
    (:func:`_markers_ranked`)."""
    out: list[np.ndarray | None] = [None] * len(images)
    ranked = _markers_ranked()
    packed = []
    for i, (image, marker, mask) in enumerate(zip(images, markers, masks, strict=True)):
        if ranked and _ranked(image, marker, mask):
            packed.append(i)
        else:
            out[i] = backend_of(mask).segmentation.watershed(
                image, marker, mask=mask, connectivity=connectivity
            )
    if packed:
        be = backend_of(masks[packed[0]])
        shape, places = pack([masks[i].shape for i in packed], gap=1)
        canvas = be.xp.zeros(shape, be.xp.float64)
        seeds = be.xp.zeros(shape, be.xp.int32)
        inside = be.xp.zeros(shape, bool)
        for i, place in zip(packed, places, strict=True):
            canvas[place] = images[i]
            seeds[place] = markers[i]
            inside[place] = masks[i]
        flooded = be.segmentation.watershed(canvas, seeds, mask=inside, connectivity=connectivity)
        for i, place in zip(packed, places, strict=True):
            out[i] = flooded[place]
    return out  # type: ignore[return-value]
