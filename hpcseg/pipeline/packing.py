"""Many small per-object transforms as one: the objects' boxes packed side by side.

The declumping works object by object, on each object's box: a distance transform per object,
a watershed per clump. Each call costs SciPy's or scikit-image's fixed overhead (measured here:
~57 µs a distance transform, ~0.4 ms a watershed) on top of its few hundred pixels, so on a
frame of ~60 nuclei the overhead outweighed the work. Packed into one array (shelf packing,
boxes apart by a gap; up to :data:`CANVAS_PIXELS` a call), one call does them all and each
box's result is the one its own call gives (why, in each function's docstring). For NumPy; a
batched backend (a GPU) takes whole-image transforms instead.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence

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


# box pixels (voxels) per packed call: bounds the transforms' temporaries (SciPy's distance
# transform takes ~16 bytes a pixel per axis) and keeps scikit-image's int32 queue ages far
# from overflowing, while the fixed cost of a call is spread over hundreds of boxes
CANVAS_PIXELS = 2**18


def canvases(
    shapes: Sequence[tuple[int, ...]], gap: int
) -> Iterator[tuple[list[int], tuple[int, ...], list[Box]]]:
    """The boxes in groups of at most :data:`CANVAS_PIXELS` pixels (a larger box alone), each
    with its canvas shape and the boxes' places (:func:`pack`): boxes of about the same middle
    extents together, so a 3-D canvas wastes little on its middle axis."""
    order = sorted(range(len(shapes)), key=lambda i: [-x for x in shapes[i][1:-1]])
    group: list[int] = []
    pixels = 0
    for i in order:
        size = math.prod(shapes[i])
        if group and pixels + size > CANVAS_PIXELS:
            yield group, *pack([shapes[j] for j in group], gap)
            group, pixels = [], 0
        group.append(i)
        pixels += size
    if group:
        yield group, *pack([shapes[j] for j in group], gap)


def distance_each(
    masks: Sequence[np.ndarray], sampling: Sequence[float] | None, ringed: Sequence[bool]
) -> list[np.ndarray]:
    """``scipy.ndimage.distance_transform_edt(mask, sampling=sampling)`` of each mask, the
    ``ringed`` ones (every face background, as an object's box grown by one pixel on every
    side) as one transform of them packed. Exact: for a pixel of one box, any background pixel
    outside its box is no nearer than the ring pixel it projects onto (each coordinate's
    distance can only shrink), so the nearest background pixel is its own box's; bit for bit,
    as SciPy's passes along each line never look past a background pixel on the box's faces.
    A box cut by the image's edge has no ring there (SciPy counts nothing beyond the array as
    background) and gets its own call."""
    if not masks:
        return []
    be = backend_of(masks[0])
    edt = be.ndimage.distance_transform_edt
    out: list[np.ndarray | None] = [None] * len(masks)
    packed = []
    for i, (mask, whole) in enumerate(zip(masks, ringed, strict=True)):
        if whole:
            packed.append(i)
        else:
            out[i] = edt(mask, sampling=sampling)
    for group, shape, places in canvases([masks[i].shape for i in packed], gap=0):
        canvas = be.xp.zeros(shape, bool)
        for k, place in zip(group, places, strict=True):
            canvas[place] = masks[packed[k]]
        distance = edt(canvas, sampling=sampling)
        for k, place in zip(group, places, strict=True):
            out[packed[k]] = distance[place]
    return out  # type: ignore[return-value]


@functools.cache
def _markers_ranked() -> bool:
    """Whether scikit-image's watershed takes its markers off the queue in the order of their
    image values (it queues them at their values, all of age 0). Where markers queue at one
    value (-inf), their order is the queue's internal one, which packing changes: then every
    watershed runs on its own. Probed with two markers either side of one pixel, the lower
    first and then last in raster order: by value, the lower floods the pixel both times
    (scikit-image 0.22-0.24 and 0.25.2 on do; 0.25.0-0.25.1 queue markers at -inf)."""
    segmentation = backend_of(np.zeros(1)).segmentation
    markers = np.array([[1, 0, 2]], np.int32)
    wins = [
        int(segmentation.watershed(np.array([image]), markers, connectivity=1)[0, 1])
        for image in ([0.0, 0.0, -1.0], [-1.0, 0.0, 0.0])
    ]
    return wins == [2, 1]


def _ranked(image: np.ndarray, markers: np.ndarray, mask: np.ndarray) -> bool:
    """Whether the flood orders this box's pixels strictly: its values inside ``mask`` are
    finite (NaN compares neither lower nor higher) and no two of its markers share a value
    (as the float64 the watershed floods in)."""
    inside = image[mask].astype(np.float64)
    values = image[(markers != 0) & mask].astype(np.float64)
    return bool(np.isfinite(inside).all()) and values.size == np.unique(values).size


def watershed_each(
    images: Sequence[np.ndarray],
    markers: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    connectivity: int = 1,
) -> list[np.ndarray]:
    """``skimage.segmentation.watershed(image, markers, mask=mask, connectivity=...)`` of each
    triple (NumPy), those the flood orders strictly (:func:`_ranked`) as one watershed of them
    packed a pixel apart: the gap is outside the mask, so no flood crosses between boxes.

    The same labels: the flood takes pixels off its queue by (value, age of entry); every pixel
    enters at its own age except the markers, which all enter at age 0. With a box's markers at
    distinct values every key of the box is distinct, so its pixels leave the queue in key
    order however they interleave with other boxes' pixels. A box with two markers at one value
    (a seed's plateau, two seeds at the same height) leaves them in the queue's internal order,
    which packing would change: it runs on its own, as does every box where scikit-image queues
    all markers at one value (:func:`_markers_ranked`)."""
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
    if not packed:
        return out  # type: ignore[return-value]
    be = backend_of(masks[packed[0]])
    dtype = np.result_type(*(markers[i].dtype for i in packed))  # as each call would return
    for group, shape, places in canvases([masks[i].shape for i in packed], gap=1):
        canvas = be.xp.zeros(shape, be.xp.float64)
        seeds = be.xp.zeros(shape, dtype)
        inside = be.xp.zeros(shape, bool)
        for k, place in zip(group, places, strict=True):
            canvas[place] = images[packed[k]]
            seeds[place] = markers[packed[k]]
            inside[place] = masks[packed[k]]
        flooded = be.segmentation.watershed(canvas, seeds, mask=inside, connectivity=connectivity)
        for k, place in zip(group, places, strict=True):
            out[packed[k]] = flooded[place]
    return out  # type: ignore[return-value]
