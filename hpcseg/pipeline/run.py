"""Chain the stages for one image according to a :class:`hpcseg.config.PipelineConfig`."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from skimage.segmentation import clear_border

from hpcseg.config import PipelineConfig
from hpcseg.pipeline import clean, label, refine, smooth, split, threshold
from hpcseg.pipeline.measure import image_summary, measure
from hpcseg.pipeline.sampling import Sampling

STAGES = ("smooth", "threshold", "clean", "split", "refine", "label", "measure")


@dataclass
class Segmentation:
    """The result of one image: labels, per-object columns, stage timings, decisions."""

    labels: np.ndarray
    objects: dict[str, np.ndarray]
    seconds: dict[str, float] = field(default_factory=dict)
    threshold: float | None = None
    summary: dict = field(default_factory=dict)


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = now - self._t
        self._t = now


def min_object_size(cfg: PipelineConfig, ndim: int, sampling: Sampling) -> int:
    """The size filter in pixels (voxels): ``clean.min_area``, raised by the µm² (2-D) or µm³
    (3-D) filter when the pixel size is known."""
    size = cfg.clean.min_area
    microns = sampling.microns(ndim)
    physical = cfg.clean.min_area_um2 if ndim == 2 else cfg.clean.min_volume_um3
    if physical is not None and microns:
        size = max(size, math.ceil(physical / math.prod(microns) - 1e-9))
    return size


def segment(
    image: np.ndarray, cfg: PipelineConfig, sampling: Sampling | None = None
) -> Segmentation:
    """smooth → threshold → clean → split → label → measure for one 2-D frame or 3-D stack.

    ``sampling`` (µm per pixel, µm between planes) scales every length of a z-stack's stages to
    its voxel spacing, turns the µm size filters into pixels and adds the µm columns.
    """
    timer = _Timer()
    sampling = sampling or Sampling()
    spacing = sampling.spacing(image.ndim)
    min_area = min_object_size(cfg, image.ndim, sampling)
    smoother = smooth.gaussian if cfg.smooth.method == "gaussian" else smooth.identity
    smoothed = smoother(image, cfg.smooth.sigma, cfg.smooth.keep_dtype, spacing)
    timer.lap("smooth")

    th = cfg.threshold
    if th.method == "local_gaussian":
        mask, value = threshold.local_gaussian(smoothed, th.block_size, th.offset)
    elif th.method == "log_otsu":
        mask, value = threshold.log_otsu(smoothed, th.correction)
    elif th.method == "li":
        mask, value = threshold.li(smoothed, th.correction)
    else:
        mask, value = threshold.otsu(smoothed, th.correction)
    timer.lap("threshold")

    cl = cfg.clean
    footprint = clean.opening_footprint(cl.opening, cl.opening_radius, spacing)
    if footprint is not None:
        mask = clean.open_mask(mask, footprint)
    if cl.fill_holes:
        mask = clean.fill_holes(mask)
    mask = clean.remove_small(mask, min_area, cfg.label.connectivity)
    timer.lap("clean")

    def cut(objects: np.ndarray) -> np.ndarray:
        """Each object at its own threshold (no hole filling after: it would fill the gaps
        the refinement opened between nuclei)."""
        refined = refine.refine_objects(smoothed, objects, cfg.refine.fraction, spacing) > 0
        return clean.remove_small(refined, min_area, cfg.label.connectivity)

    def watershed(m: np.ndarray) -> np.ndarray:
        return split.watershed_split(
            m,
            cfg.split.min_distance,
            cfg.split.smoothing,
            cfg.label.connectivity,
            spacing,
            cfg.split.landscape.value,
            smoothed,
        )

    if cfg.refine.method == "components":
        mask = cut(label.connected_components(mask, cfg.label.connectivity))
    timer.lap("refine")

    split_labels = watershed(mask) if cfg.split.method == "watershed" else None
    if split_labels is not None and cfg.refine.method == "objects":
        split_labels = watershed(cut(split_labels))
    timer.lap("split")

    if split_labels is None:
        labels = label.connected_components(mask, cfg.label.connectivity)
    else:
        labels = label.raster_order(split_labels)
    if cfg.clean.exclude_border and labels.any():
        labels = label.raster_order(clear_border(labels))
    timer.lap("label")

    objects = measure(labels, image, cfg.measure.shape_features, sampling.microns(image.ndim))
    summary = image_summary(labels, image, objects["area"])
    timer.lap("measure")
    return Segmentation(labels, objects, timer.seconds, value, summary)
