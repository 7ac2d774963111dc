"""Per-object measurements, vectorised over all labels of an image.

Column names and values follow ``skimage.measure.regionprops_table`` (tested against it):
``label``, ``area``, ``bbox-*``, ``centroid-*``, ``centroid_weighted-*``, ``mean_intensity``,
``intensity_min``, ``intensity_max``, ``intensity_std``, ``equivalent_diameter_area``,
``extent``, and in 2-D ``axis_major_length``, ``axis_minor_length``, ``eccentricity``,
``orientation``, ``perimeter``, ``euler_number``, ``solidity``; plus ``intensity_integrated``
(sum of the object's pixels) and ``touches_border``. Everything but the convex hull (solidity)
and the Euler number is computed for all objects at once (bincounts, one sort); those two use each
object's bounding-box crop and are only computed with ``shape_features=True``, as is the
perimeter.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import euler_number
from skimage.morphology import convex_hull_image


def image_summary(labels: np.ndarray, intensity: np.ndarray, areas: np.ndarray) -> dict:
    """Per-image values: total and mean object area, background level (median outside objects,
    from every 4th background pixel)."""
    outside = intensity[labels == 0][::4]
    return {
        "area_total": int(areas.sum()),
        "area_mean": float(areas.mean()) if len(areas) else None,
        "background": float(np.median(outside)) if outside.size else None,
    }


def _perimeter_2d(labels: np.ndarray, n: int) -> np.ndarray:
    """skimage.measure.perimeter (4-neighbourhood) of every object at once."""
    padded = np.pad(labels, 1)
    core = padded[1:-1, 1:-1]

    def neighbour(dy: int, dx: int) -> np.ndarray:
        return padded[1 + dy : padded.shape[0] - 1 + dy, 1 + dx : padded.shape[1] - 1 + dx]

    interior = core > 0
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        interior &= neighbour(dy, dx) == core
    border = (core > 0) & ~interior
    border_padded = np.pad(border, 1)
    code = border.astype(np.int64)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == dx == 0:
                continue
            weight = 10 if dy and dx else 2
            same = neighbour(dy, dx) == core
            near_border = border_padded[1 + dy : border_padded.shape[0] - 1 + dy,
                                        1 + dx : border_padded.shape[1] - 1 + dx]  # fmt: skip
            code += weight * (same & near_border & border)
    weights = np.zeros(50)
    weights[[5, 7, 15, 17, 25, 27]] = 1
    weights[[21, 33]] = math.sqrt(2)
    weights[[13, 23]] = (1 + math.sqrt(2)) / 2
    idx = np.flatnonzero(border)
    return np.bincount(labels.ravel()[idx], weights=weights[code.ravel()[idx]], minlength=n + 1)


BASIC_COLUMNS = (
    "label", "area", "mean_intensity", "intensity_integrated", "intensity_min", "intensity_max",
    "intensity_std", "equivalent_diameter_area", "extent", "touches_border",
)  # fmt: skip
SHAPE_2D_COLUMNS = ("axis_major_length", "axis_minor_length", "eccentricity", "orientation")
SLOW_COLUMNS = ("perimeter", "euler_number", "solidity")


def column_names(ndim: int, shape_features: bool) -> list[str]:
    """The columns :func:`measure` returns, in order."""
    names = list(BASIC_COLUMNS)
    names += [f"centroid-{a}" for a in range(ndim)] + [
        f"centroid_weighted-{a}" for a in range(ndim)
    ]
    names += [f"bbox-{a}" for a in range(2 * ndim)]
    if ndim == 2:
        names += SHAPE_2D_COLUMNS
    if shape_features:
        names += ["perimeter", "euler_number", "solidity"] if ndim == 2 else ["euler_number"]
    return names


LENGTH_COLUMNS = ("equivalent_diameter_area", "axis_major_length", "axis_minor_length", "perimeter")


def physical_unit_columns(names: list[str]) -> list[str]:
    """The µm columns :func:`physical_units` adds for these pixel columns."""
    out = [f"{c}_um" for c in names if c.startswith("centroid-")]
    out += ["area_um2"] + [f"{c}_um" for c in LENGTH_COLUMNS if c in names]
    return out


def physical_units(columns: dict[str, np.ndarray], pixel_size: float) -> dict[str, np.ndarray]:
    """µm and µm² versions of the positional and size columns (isotropic pixels)."""
    out = {f"{c}_um": columns[c] * pixel_size for c in columns if c.startswith("centroid-")}
    out["area_um2"] = columns["area"] * pixel_size**2
    out.update({f"{c}_um": columns[c] * pixel_size for c in LENGTH_COLUMNS if c in columns})
    return out


def _min_max(values: np.ndarray, lab: np.ndarray, present: np.ndarray):
    """Per-object minimum and maximum from one stable sort by label."""
    order = np.argsort(lab, kind="stable")
    sorted_values = values[order]
    starts = np.searchsorted(lab[order], present)
    return np.minimum.reduceat(sorted_values, starts), np.maximum.reduceat(sorted_values, starts)


def measure(
    labels: np.ndarray, intensity: np.ndarray, shape_features: bool = False
) -> dict[str, np.ndarray]:
    """One entry per object label 1..labels.max() present in ``labels``."""
    ndim = labels.ndim
    n = int(labels.max()) if labels.size else 0
    foreground = np.flatnonzero(labels)  # work on object pixels only
    lab = labels.ravel()[foreground]
    area = np.bincount(lab, minlength=n + 1)
    present = np.nonzero(area[1:])[0] + 1
    count = area[present].astype(np.float64)
    out: dict[str, np.ndarray] = {"label": present.astype(np.int32)}
    out["area"] = area[present].astype(np.int64)

    def per_object(weights: np.ndarray) -> np.ndarray:
        return np.bincount(lab, weights=weights, minlength=n + 1)[present]

    # sums of integer pixels in float64 are exact below 2**53, so this equals np.mean per object
    values = intensity.ravel()[foreground].astype(np.float64)
    total = per_object(values)
    out["mean_intensity"] = total / count
    out["intensity_integrated"] = total
    if len(present):
        out["intensity_min"], out["intensity_max"] = _min_max(values, lab, present)
    else:
        out["intensity_min"] = out["intensity_max"] = np.zeros(0)
    mean_at = np.zeros(n + 1)
    mean_at[present] = out["mean_intensity"]
    deviation = values - mean_at[lab]
    out["intensity_std"] = np.sqrt(per_object(deviation * deviation) / count)

    coords = [c.astype(np.int64) for c in np.unravel_index(foreground, labels.shape)]
    sums = [per_object(c.astype(np.float64)) for c in coords]
    for axis in range(ndim):
        out[f"centroid-{axis}"] = sums[axis] / count
    with np.errstate(divide="ignore", invalid="ignore"):  # an all-zero object has no weights
        for axis in range(ndim):
            out[f"centroid_weighted-{axis}"] = per_object(coords[axis] * values) / total

    slices = ndi.find_objects(labels)
    starts = np.array([[slices[i - 1][a].start for a in range(ndim)] for i in present], np.int64)
    stops = np.array([[slices[i - 1][a].stop for a in range(ndim)] for i in present], np.int64)
    starts = starts.reshape(-1, ndim)
    stops = stops.reshape(-1, ndim)
    for axis in range(ndim):
        out[f"bbox-{axis}"] = starts[:, axis]
    for axis in range(ndim):
        out[f"bbox-{axis + ndim}"] = stops[:, axis]
    out["equivalent_diameter_area"] = (2 * ndim * count / math.pi) ** (1 / ndim)
    out["extent"] = count / np.prod(stops - starts, axis=1)
    out["touches_border"] = np.any((starts == 0) | (stops == np.array(labels.shape)), axis=1)

    if ndim == 2:
        _shape_2d(out, lab, coords, present, n, count)
    if not shape_features:
        return {name: out[name] for name in column_names(ndim, False)}
    if ndim == 2:
        out["perimeter"] = _perimeter_2d(labels, n)[present]
    euler, solidity = [], []
    for i in present:
        own = labels[slices[i - 1]] == i
        euler.append(euler_number(own, ndim))
        if ndim == 2:
            solidity.append(own.sum() / convex_hull_image(own).sum())
    out["euler_number"] = np.array(euler, np.int64)
    if ndim == 2:
        out["solidity"] = np.array(solidity, np.float64)
    return {name: out[name] for name in column_names(ndim, True)}


def _shape_2d(out: dict, lab, coords, present, n: int, count: np.ndarray) -> None:
    """Axis lengths, eccentricity and orientation from the central second moments, computed
    from exact integer sums so symmetric objects stay exactly symmetric."""
    r, c = coords

    def isum(x: np.ndarray) -> np.ndarray:
        return np.bincount(lab, weights=x.astype(np.float64), minlength=n + 1)[present]

    sr, sc = isum(r), isum(c)
    mu20 = (count * isum(r * r) - sr * sr) / (count * count)  # row variance
    mu02 = (count * isum(c * c) - sc * sc) / (count * count)  # column variance
    mu11 = (count * isum(r * c) - sr * sc) / (count * count)
    a, b, d = mu02, -mu11, mu20  # skimage's inertia tensor [[a, b], [b, d]]
    half = np.sqrt(((a - d) / 2) ** 2 + b * b)
    l1 = np.maximum((a + d) / 2 + half, 0)
    l2 = np.maximum((a + d) / 2 - half, 0)
    out["axis_major_length"] = 4 * np.sqrt(l1)
    out["axis_minor_length"] = 4 * np.sqrt(l2)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["eccentricity"] = np.where(l1 == 0, 0.0, np.sqrt(np.maximum(1 - l2 / l1, 0)))
    orientation = 0.5 * np.arctan2(-2 * b, d - a)
    symmetric = (a - d) == 0
    out["orientation"] = np.where(
        symmetric, np.where(b < 0, math.pi / 4, -math.pi / 4), orientation
    )
