"""Per-label partial sums that merge exactly: the measurements' raw material.

:func:`label_moments` reduces the pixels of a label image (or of one chunk of it, with the
chunk's ``offset`` in the whole image) to per-label sums: pixel count, intensity sum, min and
max, the sum of squared deviations from the label's mean, coordinate sums and coordinate
products, intensity-weighted coordinate sums and the bounding box. :func:`merge` combines the
partial sums of several chunks into those of the union. Every column of
:func:`hpcseg.pipeline.measure.measure` except the shape features follows from them, so a
chunked mode measures with work that grows with chunks, not with labels x chunks.

Intensity spread is kept as M2 (sum of squared deviations from the label's own mean) and
merged with Chan et al.'s formula, not as a raw sum of squares: one chunk gives exactly the
two-pass value, and merged values do not suffer the cancellation of ``E[x²] - E[x]²``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpcseg.pipeline.backend import backend_of
from hpcseg.pipeline.label import label_sizes


@dataclass
class LabelMoments:
    """Sums per label (rows in ascending label order); coordinates are in the whole image."""

    label: np.ndarray  # (n,) int64, ascending
    count: np.ndarray  # (n,) int64 pixels
    intensity_sum: np.ndarray  # (n,) float64
    intensity_m2: np.ndarray  # (n,) float64: sum of (value - label mean)²
    intensity_min: np.ndarray  # (n,) float64
    intensity_max: np.ndarray  # (n,) float64
    coord_sum: np.ndarray  # (n, ndim) float64
    coord_products: np.ndarray  # (n, ndim, ndim) float64: sum of c_i * c_j
    weighted_coord_sum: np.ndarray  # (n, ndim) float64: sum of c_i * value
    bbox_start: np.ndarray  # (n, ndim) int64, inclusive
    bbox_stop: np.ndarray  # (n, ndim) int64, exclusive

    @property
    def ndim(self) -> int:
        return self.coord_sum.shape[1]

    def __len__(self) -> int:
        return len(self.label)


def _min_max(xp, values, lab, present):
    """Per-label minimum and maximum: from one stable sort by label on NumPy; by scattering
    into one slot per label elsewhere (CuPy's ufuncs have no ``reduceat`` but ``add``'s)."""
    if xp is not np:
        slot = xp.searchsorted(present, lab)
        low = xp.full(len(present), xp.inf)
        high = xp.full(len(present), -xp.inf)
        xp.minimum.at(low, slot, values)
        xp.maximum.at(high, slot, values)
        return low, high
    order = xp.argsort(lab, kind="stable")
    sorted_values = values[order]
    starts = xp.searchsorted(lab[order], present)
    return xp.minimum.reduceat(sorted_values, starts), xp.maximum.reduceat(sorted_values, starts)


def _boxes(be, labels, present, lab, local):
    """(n, ndim, 2) start and stop (exclusive) of each present label, in local coordinates.

    NumPy: ``find_objects``. Elsewhere the min and max of the object pixels' coordinates
    (``local``, labels ``lab``) are scattered per label: no loop over the objects on the host
    (and CuPy 13 has no find_objects).
    """
    xp, ndim = be.xp, labels.ndim
    if xp is np:
        slices = be.ndimage.find_objects(labels)
        bounds = [[(slices[i - 1][a].start, slices[i - 1][a].stop) for a in range(ndim)]
                  for i in present.tolist()]  # fmt: skip
        return xp.asarray(bounds, dtype=xp.int64).reshape(-1, ndim, 2)
    box = xp.empty((len(present), ndim, 2), xp.int64)
    for axis, c in enumerate(local):
        low, high = _min_max(xp, c.astype(xp.float64), lab, present)
        box[:, axis, 0], box[:, axis, 1] = low.astype(xp.int64), high.astype(xp.int64) + 1
    return box


def label_moments(labels, intensity, offset: tuple[int, ...] | None = None) -> LabelMoments:
    """The per-label sums of the object pixels of ``labels`` (0 is background).

    ``offset``: where this array starts in the whole image (a chunk's origin), so coordinates
    and boxes are global.
    """
    be = backend_of(labels)
    xp = be.xp
    ndim = labels.ndim
    origin = xp.asarray(offset if offset is not None else (0,) * ndim, dtype=xp.int64)
    n = int(labels.max()) if labels.size else 0
    foreground = xp.flatnonzero(labels)  # work on object pixels only
    lab = labels.ravel()[foreground]
    area = label_sizes(lab, n + 1)
    present = xp.nonzero(area[1:])[0] + 1

    def per_label(weights):
        return xp.bincount(lab, weights=weights, minlength=n + 1)[present]

    # sums of integer pixels in float64 are exact below 2**53
    values = intensity.ravel()[foreground].astype(xp.float64)
    total = per_label(values)
    count = area[present].astype(xp.int64)
    if len(present):
        low, high = _min_max(xp, values, lab, present)
    else:
        low = high = xp.zeros(0)
    mean_at = xp.zeros(n + 1)
    mean_at[present] = total / count
    deviation = values - mean_at[lab]
    m2 = per_label(deviation * deviation)

    local = xp.unravel_index(foreground, labels.shape)
    shift = offset if offset is not None else (0,) * ndim
    coords = [c.astype(xp.float64) + float(shift[a]) for a, c in enumerate(local)]
    coord_sum = xp.stack([per_label(c) for c in coords], axis=1).reshape(-1, ndim)
    products = xp.empty((len(present), ndim, ndim))
    for i in range(ndim):
        for j in range(i, ndim):
            products[:, i, j] = products[:, j, i] = per_label(coords[i] * coords[j])
    weighted = xp.stack([per_label(c * values) for c in coords], axis=1).reshape(-1, ndim)

    box = _boxes(be, labels, present, lab, local) + origin[None, :, None]
    return LabelMoments(
        label=present.astype(xp.int64),
        count=count,
        intensity_sum=total,
        intensity_m2=m2,
        intensity_min=low.astype(xp.float64),
        intensity_max=high.astype(xp.float64),
        coord_sum=coord_sum,
        coord_products=products,
        weighted_coord_sum=weighted,
        bbox_start=box[:, :, 0],
        bbox_stop=box[:, :, 1],
    )


def merge(parts: list[LabelMoments]) -> LabelMoments:
    """The sums of the union of the pixels the ``parts`` were computed over (labels that
    appear in several parts are combined; the others pass through)."""
    if len(parts) == 1:
        return parts[0]
    xp = backend_of(parts[0].label).xp
    label = xp.concatenate([p.label for p in parts])
    uniq, group = xp.unique(label, return_inverse=True)
    k = len(uniq)

    def cat(name: str):
        return xp.concatenate([getattr(p, name) for p in parts])

    def add(values):
        out = xp.zeros((k, *values.shape[1:]), dtype=values.dtype)
        xp.add.at(out, group, values)
        return out

    count = add(cat("count"))
    total = add(cat("intensity_sum"))
    part_count = cat("count")
    part_mean = cat("intensity_sum") / part_count
    mean = total / count
    # Chan et al.: M2 of a union = sum of the parts' M2 + n_k (mean_k - mean)²
    m2 = add(cat("intensity_m2") + part_count * (part_mean - mean[group]) ** 2)
    low = xp.full(k, xp.inf)
    xp.minimum.at(low, group, cat("intensity_min"))
    high = xp.full(k, -xp.inf)
    xp.maximum.at(high, group, cat("intensity_max"))
    start = cat("bbox_start")
    box_start = xp.full((k, start.shape[1]), xp.iinfo(xp.int64).max, dtype=xp.int64)
    xp.minimum.at(box_start, group, start)
    box_stop = xp.full((k, start.shape[1]), xp.iinfo(xp.int64).min, dtype=xp.int64)
    xp.maximum.at(box_stop, group, cat("bbox_stop"))
    return LabelMoments(
        label=uniq,
        count=count,
        intensity_sum=total,
        intensity_m2=m2,
        intensity_min=low,
        intensity_max=high,
        coord_sum=add(cat("coord_sum")),
        coord_products=add(cat("coord_products")),
        weighted_coord_sum=add(cat("weighted_coord_sum")),
        bbox_start=box_start,
        bbox_stop=box_stop,
    )
