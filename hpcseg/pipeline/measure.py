"""Per-object measurements, vectorised over all labels of an image (2-D frames or 3-D stacks).

Column names and values follow ``skimage.measure.regionprops_table`` (tested against it):
``label``, ``area``, ``bbox-*``, ``centroid-*``, ``centroid_weighted-*``, ``mean_intensity``,
``intensity_min``, ``intensity_max``, ``intensity_std``, ``equivalent_diameter_area``,
``extent``, ``axis_major_length``, ``axis_minor_length``, in 2-D also ``eccentricity`` and
``orientation``; with ``shape_features`` also ``euler_number``, ``solidity`` and, in 2-D,
``perimeter``. Plus ``intensity_integrated`` (sum of the object's pixels) and
``touches_border``. In 3-D, "area" is the number of voxels, as in regionprops.

Given the voxel size in µm, physical columns are added: ``centroid-*_um``, ``area_um2`` (2-D) or
``volume_um3`` (3-D) and ``*_um`` lengths, equal to regionprops with ``spacing=`` (tested).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from hpcseg.pipeline import shape

BASIC_COLUMNS = (
    "label", "area", "mean_intensity", "intensity_integrated", "intensity_min", "intensity_max",
    "intensity_std", "equivalent_diameter_area", "extent", "touches_border",
)  # fmt: skip
AXIS_COLUMNS = ("axis_major_length", "axis_minor_length")
ANGLE_COLUMNS_2D = ("eccentricity", "orientation")
LENGTH_COLUMNS = ("equivalent_diameter_area", *AXIS_COLUMNS, "perimeter")


def column_names(ndim: int, shape_features: bool, physical: bool = False) -> list[str]:
    """The columns :func:`measure` returns, in order."""
    names = list(BASIC_COLUMNS)
    names += [f"centroid-{a}" for a in range(ndim)]
    names += [f"centroid_weighted-{a}" for a in range(ndim)]
    names += [f"bbox-{a}" for a in range(2 * ndim)]
    names += AXIS_COLUMNS
    if ndim == 2:
        names += ANGLE_COLUMNS_2D
    if shape_features:
        names += (
            ["perimeter", "euler_number", "solidity"] if ndim == 2 else ["euler_number", "solidity"]
        )
    if physical:
        names += physical_unit_columns(names, ndim)
    return names


def physical_unit_columns(names: list[str], ndim: int) -> list[str]:
    """The µm columns added to these pixel columns."""
    out = [f"{c}_um" for c in names if c.startswith("centroid-")]
    out += ["area_um2" if ndim == 2 else "volume_um3"]
    out += [f"{c}_um" for c in LENGTH_COLUMNS if c in names]
    return out


def image_summary(labels: np.ndarray, intensity: np.ndarray, areas: np.ndarray) -> dict:
    """Per-image values: total and mean object area, background level (median outside objects,
    from every 4th background pixel)."""
    outside = intensity[labels == 0][::4]
    return {
        "area_total": int(areas.sum()),
        "area_mean": float(areas.mean()) if len(areas) else None,
        "background": float(np.median(outside)) if outside.size else None,
    }


def _min_max(values: np.ndarray, lab: np.ndarray, present: np.ndarray):
    """Per-object minimum and maximum from one stable sort by label."""
    order = np.argsort(lab, kind="stable")
    sorted_values = values[order]
    starts = np.searchsorted(lab[order], present)
    return np.minimum.reduceat(sorted_values, starts), np.maximum.reduceat(sorted_values, starts)


def measure(
    labels: np.ndarray,
    intensity: np.ndarray,
    shape_features: bool = False,
    microns: tuple[float, ...] | None = None,
) -> dict[str, np.ndarray]:
    """One entry per object label 1..labels.max() present in ``labels``.

    ``microns``: the voxel size in µm along each axis; adds the physical columns.
    """
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

    coords = [c.astype(np.float64) for c in np.unravel_index(foreground, labels.shape)]
    sums = [per_object(c) for c in coords]
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

    cov = _covariances(coords, sums, per_object, count)
    out.update(_axes(cov))
    if shape_features:
        boxes = [slices[i - 1] for i in present]
        if ndim == 2:
            out["perimeter"] = shape.perimeter_2d(labels, n)[present]
        out["euler_number"] = shape.euler_numbers(labels, present)
        out["solidity"] = count / shape.convex_areas(labels, present, boxes)
    if microns is not None:
        out.update(_physical(out, cov, count, microns))
    return {name: out[name] for name in column_names(ndim, shape_features, microns is not None)}


def _covariances(coords, sums, per_object, count: np.ndarray) -> np.ndarray:
    """Per-object covariance matrices of the pixel coordinates, shape (objects, ndim, ndim),
    from exact integer sums (so symmetric objects stay exactly symmetric)."""
    ndim = len(coords)
    cov = np.empty((len(count), ndim, ndim))
    for i in range(ndim):
        for j in range(i, ndim):
            cross = per_object(coords[i] * coords[j])
            cov[:, i, j] = cov[:, j, i] = (count * cross - sums[i] * sums[j]) / (count * count)
    return cov


def _axes(cov: np.ndarray) -> dict[str, np.ndarray]:
    """regionprops' axis lengths (and in 2-D eccentricity and orientation) from the inertia
    tensor ``trace(cov) I - cov``."""
    ndim = cov.shape[1]
    if ndim == 2:
        mu20, mu02, mu11 = cov[:, 0, 0], cov[:, 1, 1], cov[:, 0, 1]
        a, b, d = mu02, -mu11, mu20  # skimage's inertia tensor [[a, b], [b, d]]
        half = np.sqrt(((a - d) / 2) ** 2 + b * b)
        l1 = np.maximum((a + d) / 2 + half, 0)
        l2 = np.maximum((a + d) / 2 - half, 0)
        out = {"axis_major_length": 4 * np.sqrt(l1), "axis_minor_length": 4 * np.sqrt(l2)}
        with np.errstate(divide="ignore", invalid="ignore"):
            out["eccentricity"] = np.where(l1 == 0, 0.0, np.sqrt(np.maximum(1 - l2 / l1, 0)))
        orientation = 0.5 * np.arctan2(-2 * b, d - a)
        symmetric = (a - d) == 0
        out["orientation"] = np.where(
            symmetric, np.where(b < 0, math.pi / 4, -math.pi / 4), orientation
        )
        return out
    tensor = np.trace(cov, axis1=1, axis2=2)[:, None, None] * np.eye(ndim) - cov
    ev = np.clip(np.linalg.eigvalsh(tensor), 0, None)[:, ::-1] if len(cov) else np.zeros((0, 3))
    return {
        "axis_major_length": np.sqrt(np.maximum(10 * (ev[:, 0] + ev[:, 1] - ev[:, 2]), 0)),
        "axis_minor_length": np.sqrt(np.maximum(10 * (-ev[:, 0] + ev[:, 1] + ev[:, 2]), 0)),
    }


def _physical(out: dict, cov: np.ndarray, count: np.ndarray, microns) -> dict[str, np.ndarray]:
    """µm columns: scaled centroids, the physical area or volume, and lengths from the
    covariances of the scaled coordinates (exact for anisotropic voxels, as regionprops)."""
    ndim = len(microns)
    scale = np.asarray(microns, np.float64)
    phys = {f"centroid-{a}_um": out[f"centroid-{a}"] * scale[a] for a in range(ndim)}
    size = count * float(np.prod(scale))
    phys["area_um2" if ndim == 2 else "volume_um3"] = size
    phys["equivalent_diameter_area_um"] = (2 * ndim * size / math.pi) ** (1 / ndim)
    axes = _axes(cov * np.outer(scale, scale))
    for name in AXIS_COLUMNS:
        phys[f"{name}_um"] = axes[name]
    if "perimeter" in out:  # 2-D pixels are square (dataset.pixel_size is one number)
        phys["perimeter_um"] = out["perimeter"] * scale[0]
    return phys
