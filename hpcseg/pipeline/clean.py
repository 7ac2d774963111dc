"""Mask clean-up: opening, hole filling, small-object removal."""

from __future__ import annotations

import numpy as np
import scipy.ndimage

from hpcseg.pipeline.backend import backend_of
from hpcseg.pipeline.label import label_sizes


def cross(ndim: int = 2) -> np.ndarray:
    """The cross (edge-neighbour) structuring element (a small host-side constant)."""
    return scipy.ndimage.generate_binary_structure(ndim, 1)


def open_mask(mask, footprint: np.ndarray):
    """Binary opening with border value 0 (as ``dask_image.ndmorph.binary_opening``)."""
    be = backend_of(mask)
    return be.ndimage.binary_opening(mask, structure=be.xp.asarray(footprint), border_value=0)


def opening_footprint(
    kind: str, radius: int, spacing: tuple[float, ...] = (1.0, 1.0)
) -> np.ndarray | None:
    """Footprint for ``kind`` in {'none', 'cross', 'disk'}; one axis per ``spacing`` entry.

    'disk' is every offset within ``radius`` in-plane pixels of the centre, measured with the
    voxel spacing: skimage's ``disk(radius)`` in 2-D, a ball (flattened along a coarser z) in 3-D.
    """
    if kind == "none":
        return None
    if kind == "cross":
        return cross(len(spacing))
    reach = [int(radius // s) for s in spacing]
    grid = np.ogrid[tuple(slice(-r, r + 1) for r in reach)]
    return sum((g * s) ** 2 for g, s in zip(grid, spacing, strict=True)) <= radius**2


def fill_holes(mask, max_size: int | None = None):
    """Fill background regions not connected to the image border (edge-connected background);
    with ``max_size``, only those of at most that many pixels.

    Same result as ``scipy.ndimage.binary_fill_holes`` (tested), by one labelling of the
    background instead of iterated dilations: several times faster on whole frames.
    """
    be = backend_of(mask)
    background, n = be.ndimage.label(~mask)
    if n == 0:
        return mask.copy()
    hole = be.xp.ones(int(n) + 1, bool)
    if max_size is not None:
        hole &= label_sizes(background, int(n) + 1) <= max_size
    for axis in range(mask.ndim):
        hole[be.xp.take(background, 0, axis=axis)] = False
        hole[be.xp.take(background, -1, axis=axis)] = False
    hole[0] = False  # label 0 is the mask itself
    return mask | hole[background]


def remove_small(mask, min_area: int, connectivity: int = 1):
    """Drop connected components with fewer than ``min_area`` pixels."""
    if min_area <= 1 or not mask.any():
        return mask
    be = backend_of(mask)
    structure = be.ndimage.generate_binary_structure(mask.ndim, connectivity)
    labels, _ = be.ndimage.label(mask, structure=structure)
    sizes = label_sizes(labels)
    keep = sizes >= min_area
    keep[0] = False
    return keep[labels]
