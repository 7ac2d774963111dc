"""Shape features of every object at once: perimeter, Euler number, convex area (solidity).

Each equals what ``skimage.measure.regionprops`` computes on the object's own crop (tested
against it), without a per-object Python loop where the whole image can be processed at once:

- perimeter: skimage's 4-neighbourhood border-pixel weighting, on the whole label image;
- Euler number: in 2-D two neighbour counts per object (the only configurations with non-zero
  coefficients); in 3-D skimage's 2x2x2 configuration histogram, counted per label over the
  windows that touch objects (a window holding several labels counts once for each, with that
  label's voxels only);
- convex area: the hull of each object's row-end pixels (diamond corners, as skimage's
  ``convex_hull_image``) by a monotone chain run on all objects at once, then the pixel centres
  inside or on it counted row by row in exact integer arithmetic (the corners are half-integers,
  so doubled coordinates are integers). 3-D hulls: qhull per object, then the voxel centres
  inside it counted line by line (skimage's test).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
from scipy.spatial import ConvexHull, QhullError
from skimage.measure._regionprops_utils import EULER_COEFS3D_26

# skimage.measure.euler_number's 3-D configuration kernel (a convolution) and coefficients for
# connectivity 3, the one regionprops uses
_EULER_KERNEL_3D = np.array(
    [
        [[0, 0, 0], [0, 0, 0], [0, 0, 0]],
        [[0, 0, 0], [0, 1, 4], [0, 2, 8]],
        [[0, 0, 0], [0, 16, 64], [0, 32, 128]],
    ]
)
_EULER_COEFS_3D = np.asarray(EULER_COEFS3D_26, np.int64)


def _neighbours(labels: np.ndarray):
    """The label image padded by one background pixel (flat), the flat positions of its object
    pixels, and a function giving the label at an (dy, dx) offset from each of them."""
    padded = np.pad(labels, 1)
    width = padded.shape[1]
    flat = padded.ravel()
    pixels = np.flatnonzero(flat)

    def at(where: np.ndarray, dy: int, dx: int) -> np.ndarray:
        return flat[where + (dy * width + dx)]

    return flat, pixels, at


def perimeter_2d(labels: np.ndarray, n: int) -> np.ndarray:
    """skimage.measure.perimeter (4-neighbourhood) of every object at once, indexed by label.

    skimage weights each border pixel (an object pixel with a 4-neighbour outside the object) by
    the pattern of border pixels of the same object around it.
    """
    flat, pixels, at = _neighbours(labels)
    own = flat[pixels]
    interior = np.ones(len(pixels), bool)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        interior &= at(pixels, dy, dx) == own
    border, lab = pixels[~interior], own[~interior]
    is_border = np.zeros(flat.shape, bool)
    is_border[border] = True
    code = np.ones(len(border), np.int64)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                where = border + (dy * (labels.shape[1] + 2) + dx)
                code += (10 if dy and dx else 2) * ((flat[where] == lab) & is_border[where])
    weights = np.zeros(50)
    weights[[5, 7, 15, 17, 25, 27]] = 1
    weights[[21, 33]] = math.sqrt(2)
    weights[[13, 23]] = (1 + math.sqrt(2)) / 2
    return np.bincount(lab, weights=weights[code], minlength=n + 1)


def _euler_2d(labels: np.ndarray, present: np.ndarray) -> np.ndarray:
    """The 8-connectivity Euler number from two pixel counts per object.

    skimage's coefficients are non-zero for three 2x2 configurations only: the top-left pixel
    alone (+1), and the two anti-diagonal pixels without the bottom-right one, with or without
    the top-left (-1 each). Per object, that is: pixels whose right, lower and lower-right
    neighbours are all outside it, minus pixels whose upper-right neighbour is in it and whose
    right neighbour is not.
    """
    flat, pixels, at = _neighbours(labels)
    own = flat[pixels]
    right_out = at(pixels, 0, 1) != own
    alone = right_out & (at(pixels, 1, 0) != own) & (at(pixels, 1, 1) != own)
    bridge = right_out & (at(pixels, -1, 1) == own)
    n = int(labels.max(initial=0))
    count = np.bincount(own[alone], minlength=n + 1) - np.bincount(own[bridge], minlength=n + 1)
    return count[present].astype(np.int64)


def euler_numbers(labels: np.ndarray, present: np.ndarray) -> np.ndarray:
    """skimage.measure.euler_number(object, connectivity=ndim) of every present label.

    skimage sums a coefficient per 2x2x2 window configuration of the object's padded crop. Here
    every window that holds an object voxel is visited once, and each label in it counts the
    configuration of its own voxels there.
    """
    if labels.ndim == 2:
        return _euler_2d(labels, present)
    kernel, coefs = _EULER_KERNEL_3D, _EULER_COEFS_3D
    padded = np.pad(labels, 1)
    flat = padded.ravel()
    strides = np.array(padded.strides) // padded.itemsize
    # the window corner with bit b lies at (anchor - shift), shift in {0, 1} per axis
    corners = sorted((int(kernel[tuple(i)]), int(((i - 1) * strides).sum()))
                     for i in np.argwhere(kernel))  # fmt: skip
    objects = np.flatnonzero(flat)
    touched = np.zeros(flat.shape, bool)
    for _, offset in corners:
        touched[objects + offset] = True
    anchors = np.flatnonzero(touched)
    values = [flat[anchors - offset] for _, offset in corners]
    n = int(labels.max(initial=0))
    total = np.zeros(n + 1, np.int64)
    for k, (bit, _) in enumerate(corners):
        owner = values[k]
        counted = owner > 0  # each label once per window: at its first corner in bit order
        for earlier in values[:k]:
            counted &= earlier != owner
        code = np.full(owner.shape, bit, np.int64)
        for (later_bit, _), later in zip(corners[k + 1 :], values[k + 1 :], strict=True):
            code += later_bit * (later == owner)
        total += np.bincount(owner[counted], weights=coefs[code[counted]], minlength=n + 1).astype(
            np.int64
        )
    return np.trunc(0.125 * total[present]).astype(np.int64)  # skimage: int(0.125 * sum)


def convex_areas(labels: np.ndarray, present: np.ndarray, boxes: list[tuple[slice, ...]]):
    """Pixels (voxels) inside each object's convex hull, as regionprops' ``area_convex``."""
    if labels.ndim != 2:
        volumes = [_convex_volume(labels[box] == i) for i, box in zip(present, boxes, strict=True)]
        return np.array(volumes, np.float64)
    return _convex_areas_2d(labels, present)


def _convex_volume(own: np.ndarray) -> int:
    """Voxels inside the hull of the object's voxel diamonds (as skimage's
    ``convex_hull_image``, which returns an empty hull for an object lying in one plane: here
    every voxel is offset instead, so flat objects get their true convex area)."""
    # the first and last voxel of every (z, y) line span the same hull as all voxels
    lines = own.any(axis=-1)
    first = np.argmax(own, axis=-1)[lines]
    last = own.shape[-1] - 1 - np.argmax(own[..., ::-1], axis=-1)[lines]
    zy = np.argwhere(lines)
    coords = np.concatenate([np.c_[zy, first], np.c_[zy, last]]).astype(np.float64)
    with contextlib.suppress(QhullError):  # fewer than 4 voxels, or all in one plane
        coords = coords[ConvexHull(coords).vertices]  # fewer points before offsetting
    offsets = np.zeros((2 * own.ndim, own.ndim))
    for axis in range(own.ndim):
        offsets[2 * axis : 2 * axis + 2, axis] = (-0.5, 0.5)
    hull = ConvexHull(np.unique((coords[:, None, :] + offsets).reshape(-1, own.ndim), axis=0))
    return _count_in_hull_3d(hull.equations, own.shape)


def _count_in_hull_3d(equations: np.ndarray, shape: tuple[int, ...], tol: float = 1e-10) -> int:
    """Voxel centres p of the crop with ``a . p + d < tol`` for every facet (skimage's test),
    counted as one x-interval per (z, y) line of the crop instead of voxel by voxel."""
    zz, yy = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    rest = equations[:, :1] * zz.ravel() + equations[:, 1:2] * yy.ravel() + equations[:, 3:]
    ax = equations[:, 2:3]
    up, down = ax > 1e-12, ax < -1e-12  # the facet bounds x from above / below
    bound = (tol - rest) / np.where(up | down, ax, 1.0)
    hi = np.where(up, np.ceil(bound) - 1, np.inf).min(axis=0)  # x < bound
    lo = np.where(down, np.floor(bound) + 1, -np.inf).max(axis=0)  # x > bound
    blocked = (~(up | down) & (rest >= tol)).any(axis=0)  # a facet parallel to x, line outside
    hi, lo = np.minimum(hi, shape[2] - 1), np.maximum(lo, 0)
    return int(np.where(blocked, 0, np.maximum(hi - lo + 1, 0)).sum())


def _row_ends(labels: np.ndarray):
    """Per object and row: the first and last column of its pixels (raster order)."""
    width = labels.shape[1]
    flat = np.flatnonzero(labels)
    lab = labels.ravel()[flat]
    order = np.argsort(lab, kind="stable")  # grouped by label, raster order within
    flat, lab = flat[order], lab[order]
    row = flat // width
    key = lab.astype(np.int64) * labels.shape[0] + row
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    last = np.r_[first[1:] - 1, len(key) - 1]
    return lab[first], row[first], flat[first] % width, flat[last] % width


def _hull_candidates(obj: np.ndarray, row: np.ndarray, left: np.ndarray, right: np.ndarray):
    """Doubled coordinates of the diamond corners of every row's end pixels (the hull of these
    is the hull of all the object's pixel diamonds), and their object."""
    r2, lc2, rc2 = 2 * row, 2 * left, 2 * right
    corners = [
        np.c_[r2 - 1, lc2], np.c_[r2 + 1, lc2], np.c_[r2, lc2 - 1],
        np.c_[r2 - 1, rc2], np.c_[r2 + 1, rc2], np.c_[r2, rc2 + 1],
    ]  # fmt: skip
    return np.concatenate(corners), np.tile(obj, len(corners))


def _chain(points: np.ndarray, owner: np.ndarray, turn: int):
    """Andrew's monotone chain for all objects at once: ``points`` sorted by (owner, row, col)
    and distinct;
    keeps the lower (``turn=1``) or upper (``turn=-1``) hull of each owner's points.

    A point that does not turn the right way between its two neighbours lies on the wrong side
    of (or inside) the chord joining two other points of the set, so it is no hull vertex; all
    such points are dropped in parallel until none is left. Each owner's first and last points
    always stay.
    """
    while True:
        prev, mid, nxt = points[:-2], points[1:-1], points[2:]
        cross = (mid[:, 0] - prev[:, 0]) * (nxt[:, 1] - mid[:, 1]) - (mid[:, 1] - prev[:, 1]) * (
            nxt[:, 0] - mid[:, 0]
        )
        same = (owner[:-2] == owner[1:-1]) & (owner[1:-1] == owner[2:])
        drop = same & (turn * cross <= 0)
        if not drop.any():
            return points, owner
        keep = np.r_[True, ~drop, True]
        points, owner = points[keep], owner[keep]


def _convex_areas_2d(labels: np.ndarray, present: np.ndarray) -> np.ndarray:
    if not len(present):
        return np.zeros(0)
    obj, row, left, right = _row_ends(labels)
    points, owner = _hull_candidates(obj, row, left, right)
    order = np.lexsort((points[:, 1], points[:, 0], owner))
    points, owner = points[order], owner[order]
    distinct = np.r_[True, (points[1:] != points[:-1]).any(axis=1) | (owner[1:] != owner[:-1])]
    points, owner = points[distinct], owner[distinct]  # _chain needs distinct points
    lower, lower_owner = _chain(points, owner, 1)
    upper, upper_owner = _chain(points, owner, -1)
    # counter-clockwise edges: the lower hull left to right, the upper hull right to left
    in_lower = lower_owner[:-1] == lower_owner[1:]
    in_upper = upper_owner[:-1] == upper_owner[1:]
    p = np.concatenate([lower[:-1][in_lower], upper[1:][in_upper]])
    q = np.concatenate([lower[1:][in_lower], upper[:-1][in_upper]])
    edge_owner = np.concatenate([lower_owner[:-1][in_lower], upper_owner[:-1][in_upper]])
    e_obj = np.searchsorted(present, edge_owner)
    first = np.searchsorted(obj, present)
    return _count_inside(p, q, e_obj, np.minimum.reduceat(row, first),
                         np.maximum.reduceat(row, first))  # fmt: skip


def _count_inside(p, q, e_obj, rows_lo, rows_hi) -> np.ndarray:
    """Pixel centres inside or on each convex polygon (edges p -> q, counter-clockwise, doubled
    integer coordinates), row by row in integer arithmetic."""
    # every (edge, row of its object) pair; a pixel centre (2r, 2c) is inside or on the hull
    # when cross(q - p, x - p) >= 0 for every edge: u * 2c >= k with u = q_r - p_r
    n_rows = rows_hi - rows_lo + 1
    per_edge = n_rows[e_obj]
    pair_edge = np.repeat(np.arange(len(p)), per_edge)
    first_pair = np.repeat(np.cumsum(per_edge) - per_edge, per_edge)
    row_in_object = np.arange(len(pair_edge)) - first_pair
    pair_row = rows_lo[e_obj][pair_edge] + row_in_object
    u = (q[:, 0] - p[:, 0])[pair_edge]
    w = (q[:, 1] - p[:, 1])[pair_edge]
    k = u * p[pair_edge, 1] + w * (2 * pair_row - p[pair_edge, 0])
    big = np.iinfo(np.int64).max // 4
    lo = np.where(u > 0, -((-k) // np.maximum(2 * u, 1)), -big)  # c >= ceil(k / 2u)
    hi = np.where(u < 0, k // np.minimum(2 * u, -1), big)  # c <= floor(k / 2u), 2u < 0
    hi = np.where((u == 0) & (k > 0), -big, hi)  # a horizontal edge the row lies outside
    row_start = np.r_[0, np.cumsum(n_rows)[:-1]]
    row_id = row_start[e_obj[pair_edge]] + row_in_object
    lo_row = np.full(int(n_rows.sum()), -big)
    hi_row = np.full(int(n_rows.sum()), big)
    np.maximum.at(lo_row, row_id, lo)
    np.minimum.at(hi_row, row_id, hi)
    inside = np.maximum(hi_row - lo_row + 1, 0)
    return np.bincount(np.repeat(np.arange(len(n_rows)), n_rows), weights=inside)
