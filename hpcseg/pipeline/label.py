"""Connected-component labelling and canonical label order."""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix, csgraph

from hpcseg.pipeline.backend import backend_of


def connected_components(mask, connectivity: int = 1):
    """Label the mask's components 1..n in raster order (scipy.ndimage.label)."""
    ndi = backend_of(mask).ndimage
    structure = ndi.generate_binary_structure(mask.ndim, connectivity)
    labels, _ = ndi.label(mask, structure=structure)
    return labels


def raster_order(labels):
    """Relabel to 1..n by each object's first pixel in raster order (stable, gap-free)."""
    xp = backend_of(labels).xp
    flat = labels.ravel()
    present = flat > 0
    if not present.any():
        return xp.zeros_like(labels, dtype=xp.int32)
    uniq, first = xp.unique(flat[present], return_index=True)
    order = xp.argsort(first, kind="stable")
    lut = xp.zeros(int(uniq.max()) + 1, xp.int32)
    lut[uniq[order]] = xp.arange(1, len(uniq) + 1, dtype=xp.int32)
    return lut[labels]


def label_sizes(labels, minlength: int = 0):
    """Pixels per label value (``bincount`` of the non-negative ``labels``, any shape), counted
    by runs: a label image is mostly long runs of one value, and NumPy's bincount, adding one
    to the same counter pixel after pixel, waits on each add (about 3x slower on a 2048x2048
    chunk of nuclei labels here). Other array types (CuPy) use their own bincount."""
    xp = backend_of(labels).xp
    flat = labels.ravel()
    if flat.size == 0:  # (CuPy's bincount refuses an empty array before 14.2)
        return xp.zeros(minlength, xp.intp)
    if xp is not np:
        return xp.bincount(flat, minlength=minlength)
    starts = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    values = np.concatenate([flat[:1], flat[starts]])
    lengths = np.diff(np.concatenate([[0], starts, [flat.size]]))
    return np.bincount(values, weights=lengths, minlength=minlength).astype(np.intp)


# pixels: from here the sparse labelling wins (a 520x696 frame's seeds 1.0 against 1.75 ms;
# a 40x60x70 stack's 1.9 against 1.4 ms)
SPARSE_FROM = 2**18


def label_seeds(peaks) -> tuple:
    """The watershed's seeds: ``peaks`` (a sparse mask) labelled with full connectivity, as
    ``scipy.ndimage.label`` labels them (int32), by :func:`label_sparse` on a large NumPy
    array."""
    be = backend_of(peaks)
    if be.xp is np and peaks.size >= SPARSE_FROM:
        return label_sparse(peaks)
    full = be.xp.ones((3,) * peaks.ndim, bool)
    labels, n = be.ndimage.label(peaks, structure=full, output=be.xp.int32)
    return labels, int(n)


def label_sparse(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """``scipy.ndimage.label(mask, structure=ones((3,) * ndim))`` (int32, the same numbers:
    raster order of each component's first pixel) for a sparse NumPy mask, such as the
    watershed's seed pixels: the components of the pixels' neighbour graph
    (``scipy.sparse.csgraph``), so the cost follows the pixels set, not the array's size
    (measured: 5.4 against 58.6 ms for the seeds of a 2048x2048 chunk)."""
    flat = np.flatnonzero(mask)  # ascending: raster order
    labels = np.zeros(mask.shape, np.int32)
    if not len(flat):
        return labels, 0
    coords = np.stack(np.unravel_index(flat, mask.shape))
    shape = np.asarray(mask.shape)[:, None]
    src, dst = [], []
    for offset in np.ndindex((3,) * mask.ndim):
        step = np.asarray(offset) - 1
        if not np.any(step) or step[np.flatnonzero(step)[0]] < 0:
            continue  # each pair once: the offsets after the pixel in raster order
        near = coords + step[:, None]
        inside = np.flatnonzero(np.all((near >= 0) & (near < shape), axis=0))
        target = np.ravel_multi_index(tuple(near[:, inside]), mask.shape)
        at = np.minimum(np.searchsorted(flat, target), len(flat) - 1)
        hit = flat[at] == target
        src.append(inside[hit])
        dst.append(at[hit])
    src, dst = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(len(flat),) * 2)
    n, component = csgraph.connected_components(graph, directed=False)
    first = np.full(n, len(flat))
    np.minimum.at(first, component, np.arange(len(flat)))
    number = np.empty(n, np.int32)
    number[np.argsort(first)] = np.arange(1, n + 1, dtype=np.int32)
    labels.ravel()[flat] = number[component]
    return labels, int(n)
