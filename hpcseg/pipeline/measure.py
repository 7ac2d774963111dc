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

Everything but the shape features comes from mergeable per-label sums
(:mod:`hpcseg.pipeline.moments`): :func:`from_moments` turns the sums of a whole image, or the
merged sums of its chunks, into the columns.
"""

from __future__ import annotations

import math

import numpy as np

from hpcseg.pipeline import portable, shape
from hpcseg.pipeline.backend import backend_of
from hpcseg.pipeline.moments import LabelMoments, label_moments

BASIC_COLUMNS = (
    "label", "area", "mean_intensity", "intensity_integrated", "intensity_min", "intensity_max",
    "intensity_std", "equivalent_diameter_area", "extent", "touches_border",
)  # fmt: skip
AXIS_COLUMNS = ("axis_major_length", "axis_minor_length")
ANGLE_COLUMNS_2D = ("eccentricity", "orientation")
LENGTH_COLUMNS = ("equivalent_diameter_area", *AXIS_COLUMNS, "perimeter")


def shape_feature_columns(ndim: int) -> list[str]:
    """The columns that need each object's whole pixel set (not mergeable sums)."""
    return ["perimeter", "euler_number", "solidity"] if ndim == 2 else ["euler_number", "solidity"]


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
        names += shape_feature_columns(ndim)
    if physical:
        names += physical_unit_columns(names, ndim)
    return names


def physical_unit_columns(names: list[str], ndim: int) -> list[str]:
    """The µm columns added to these pixel columns."""
    out = [f"{c}_um" for c in names if c.startswith("centroid-")]
    out += ["area_um2" if ndim == 2 else "volume_um3"]
    out += [f"{c}_um" for c in LENGTH_COLUMNS if c in names]
    return out


def image_summary(labels, intensity, areas) -> dict:
    """Per-image values: total and mean object area, background level (median outside objects,
    from every 4th background pixel)."""
    xp = backend_of(labels).xp
    outside = intensity[labels == 0][::4]
    return {
        "area_total": int(areas.sum()),
        "area_mean": float(areas.mean()) if len(areas) else None,
        "background": float(xp.median(outside)) if outside.size else None,
    }


def measure(
    labels,
    intensity,
    shape_features: bool = False,
    microns: tuple[float, ...] | None = None,
) -> dict:
    """One entry per object label 1..labels.max() present in ``labels``.

    ``microns``: the voxel size in µm along each axis; adds the physical columns.
    """
    moments = label_moments(labels, intensity)
    out = from_moments(moments, labels.shape, microns)
    if shape_features:
        out.update(shape_columns(labels, moments))
        if microns is not None and "perimeter" in out:  # 2-D pixels are square
            out["perimeter_um"] = out["perimeter"] * float(microns[0])
    return {
        name: out[name] for name in column_names(labels.ndim, shape_features, microns is not None)
    }


def shape_columns(labels, moments: LabelMoments) -> dict:
    """Perimeter (2-D), Euler number and solidity of the labels in ``moments`` (CPU: qhull)."""
    be = backend_of(labels)
    if be.xp is not np:
        portable.on_host("measure.shape_features", be.name)
    host = be.to_host(labels)
    present = be.to_host(moments.label)
    starts, stops = be.to_host(moments.bbox_start), be.to_host(moments.bbox_stop)
    boxes = [tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
             for lo, hi in zip(starts, stops, strict=True)]  # fmt: skip
    n = int(host.max()) if host.size else 0
    out = {}
    if host.ndim == 2:
        out["perimeter"] = shape.perimeter_2d(host, n)[present]
    out["euler_number"] = shape.euler_numbers(host, present)
    out["solidity"] = be.to_host(moments.count) / shape.convex_areas(host, present, boxes)
    return {k: be.xp.asarray(v) for k, v in out.items()}


def from_moments(
    moments: LabelMoments, image_shape: tuple[int, ...], microns: tuple[float, ...] | None = None
) -> dict:
    """The mergeable columns (all but the shape features) from per-label sums."""
    xp = backend_of(moments.label).xp
    ndim = moments.ndim
    count = moments.count.astype(xp.float64)
    total = moments.intensity_sum
    out: dict = {"label": moments.label.astype(xp.int32), "area": moments.count.astype(xp.int64)}
    out["mean_intensity"] = total / count
    out["intensity_integrated"] = total
    out["intensity_min"] = moments.intensity_min
    out["intensity_max"] = moments.intensity_max
    out["intensity_std"] = xp.sqrt(moments.intensity_m2 / count)
    for axis in range(ndim):
        out[f"centroid-{axis}"] = moments.coord_sum[:, axis] / count
    with np.errstate(divide="ignore", invalid="ignore"):  # an all-zero object has no weights
        for axis in range(ndim):
            out[f"centroid_weighted-{axis}"] = moments.weighted_coord_sum[:, axis] / total
    starts, stops = moments.bbox_start, moments.bbox_stop
    for axis in range(ndim):
        out[f"bbox-{axis}"] = starts[:, axis]
    for axis in range(ndim):
        out[f"bbox-{axis + ndim}"] = stops[:, axis]
    out["equivalent_diameter_area"] = (2 * ndim * count / math.pi) ** (1 / ndim)
    out["extent"] = count / xp.prod(stops - starts, axis=1)
    out["touches_border"] = xp.any((starts == 0) | (stops == xp.asarray(image_shape)), axis=1)
    cov = _covariances(moments, count)
    out.update(_axes(cov))
    if microns is not None:
        out.update(_physical(out, cov, count, microns))
    return out


def _covariances(moments: LabelMoments, count):
    """Per-object covariance matrices of the pixel coordinates, shape (objects, ndim, ndim),
    from exact integer sums (so symmetric objects stay exactly symmetric)."""
    xp = backend_of(count).xp
    ndim = moments.ndim
    sums, products = moments.coord_sum, moments.coord_products
    cov = xp.empty((len(count), ndim, ndim))
    for i in range(ndim):
        for j in range(i, ndim):
            cross = products[:, i, j]
            cov[:, i, j] = cov[:, j, i] = (count * cross - sums[:, i] * sums[:, j]) / (
                count * count
            )
    return cov


def _axes(cov) -> dict:
    """regionprops' axis lengths (and in 2-D eccentricity and orientation) from the inertia
    tensor ``trace(cov) I - cov``."""
    xp = backend_of(cov).xp
    ndim = cov.shape[1]
    if ndim == 2:
        mu20, mu02, mu11 = cov[:, 0, 0], cov[:, 1, 1], cov[:, 0, 1]
        a, b, d = mu02, -mu11, mu20  # skimage's inertia tensor [[a, b], [b, d]]
        half = xp.sqrt(((a - d) / 2) ** 2 + b * b)
        l1 = xp.maximum((a + d) / 2 + half, 0)
        l2 = xp.maximum((a + d) / 2 - half, 0)
        out = {"axis_major_length": 4 * xp.sqrt(l1), "axis_minor_length": 4 * xp.sqrt(l2)}
        with np.errstate(divide="ignore", invalid="ignore"):
            out["eccentricity"] = xp.where(l1 == 0, 0.0, xp.sqrt(xp.maximum(1 - l2 / l1, 0)))
        orientation = 0.5 * xp.arctan2(-2 * b, d - a)
        symmetric = (a - d) == 0
        out["orientation"] = xp.where(
            symmetric, xp.where(b < 0, math.pi / 4, -math.pi / 4), orientation
        )
        return out
    tensor = xp.trace(cov, axis1=1, axis2=2)[:, None, None] * xp.eye(ndim) - cov
    ev = xp.clip(xp.linalg.eigvalsh(tensor), 0, None)[:, ::-1] if len(cov) else xp.zeros((0, 3))
    return {
        "axis_major_length": xp.sqrt(xp.maximum(10 * (ev[:, 0] + ev[:, 1] - ev[:, 2]), 0)),
        "axis_minor_length": xp.sqrt(xp.maximum(10 * (-ev[:, 0] + ev[:, 1] + ev[:, 2]), 0)),
    }


def _physical(out: dict, cov, count, microns) -> dict:
    """µm columns: scaled centroids, the physical area or volume, and lengths from the
    covariances of the scaled coordinates (exact for anisotropic voxels, as regionprops)."""
    xp = backend_of(count).xp
    ndim = len(microns)
    scale = xp.asarray(microns, dtype=xp.float64)
    phys = {f"centroid-{a}_um": out[f"centroid-{a}"] * scale[a] for a in range(ndim)}
    size = count * float(xp.prod(scale))
    phys["area_um2" if ndim == 2 else "volume_um3"] = size
    phys["equivalent_diameter_area_um"] = (2 * ndim * size / math.pi) ** (1 / ndim)
    axes = _axes(cov * xp.outer(scale, scale))
    for name in AXIS_COLUMNS:
        phys[f"{name}_um"] = axes[name]
    return phys
