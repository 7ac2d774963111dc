"""What a worker runs for one chunk of a tiled image, pass by pass.

Every function here takes the :class:`TileJob`, the chunk's number and grid index and what the
driver decided in the passes before; it reads the crop it needs (its core grown by the halo of
its operators) from the scratch arrays (the first pass: its core from the image), writes its
core to a scratch array and returns a small dict of per-label values (never pixels, except the
chunk's faces). Each pass gives the same pixels the whole-image pipeline
(:mod:`hpcseg.pipeline.segment`) computes there: the halos are the operators' exact reach, and
the crops are clipped at the image border, where the operators' own border rules then apply as
on the whole image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
from scipy import ndimage as ndi

from hpcseg.config.schemas import PipelineConfig
from hpcseg.pipeline import clean, histogram, smooth, threshold
from hpcseg.pipeline.bands import in_bands
from hpcseg.pipeline.grid import ChunkGrid, Region, box, boxes, union, within
from hpcseg.pipeline.label import label_seeds, label_sizes
from hpcseg.pipeline.measure import shape_columns
from hpcseg.pipeline.moments import label_moments
from hpcseg.pipeline.packing import distance_each, watershed_each
from hpcseg.pipeline.sampling import Sampling, per_axis, window
from hpcseg.pipeline.stitch import faces_of, label_chunk
from hpcseg.results.scratch import Scratch

SMOOTHERS = {"none": smooth.identity, "gaussian": smooth.gaussian}


def gaussian_radius(sigmas: tuple[float, ...]) -> tuple[int, ...]:
    """scipy's kernel radius per axis (truncate 4); 0 where the axis is not filtered."""
    return tuple(int(4.0 * s + 0.5) if s > 1e-15 else 0 for s in sigmas)


def _half(sizes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(s // 2 for s in sizes)


def _add(*halos: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(sum(h)) for h in zip(*halos, strict=True))


@dataclass(frozen=True)
class TileJob:
    """One tiled image: its pixels, the pipeline, the grid and the scratch folder."""

    image: Any  # has .shape, .dtype and .read(region) (hpcseg.data.large.LargeImage)
    pipeline: PipelineConfig
    sampling: Sampling
    grid: ChunkGrid
    scratch_dir: str
    min_size: int
    keep_labels: bool = True  # store the final labels (to save, score or shape them)

    @property
    def scratch(self) -> Scratch:
        return Scratch(self.scratch_dir, self.grid)

    @property
    def spacing(self) -> tuple[float, ...]:
        return self.sampling.spacing(self.grid.ndim)

    @property
    def structure(self) -> np.ndarray:
        return ndi.generate_binary_structure(self.grid.ndim, self.pipeline.label.connectivity)

    @property
    def log_scale(self) -> bool:
        """Whether the global threshold is log_otsu's (on log intensity, above a floor)."""
        return str(self.pipeline.threshold.method) == "log_otsu"

    @property
    def floor(self) -> int | float:
        """The global threshold's floor for this image
        (:func:`hpcseg.pipeline.threshold.floor_for`)."""
        return threshold.floor_for(self.image.dtype, self.pipeline.threshold.floor)

    @property
    def smoothed_dtype(self) -> np.dtype:
        keep = self.pipeline.smooth.keep_dtype
        return np.dtype(self.image.dtype) if keep else np.dtype(np.float32)

    @property
    def smooth_halo(self) -> tuple[int, ...]:
        c = self.pipeline.smooth
        if str(c.method) == "none" or c.sigma <= 0:
            return (0,) * self.grid.ndim
        return gaussian_radius(per_axis(c.sigma, self.spacing))

    @property
    def local_sizes(self) -> tuple[int, ...]:
        """local_gaussian's block per axis: the configured one, else the chunk (the blog passes
        ``images.chunksize``)."""
        block = self.pipeline.threshold.block_size
        return (block,) * self.grid.ndim if block else self.grid.chunk

    @property
    def global_threshold(self) -> bool:
        return str(self.pipeline.threshold.method) != "local_gaussian"

    @property
    def threshold_halo(self) -> tuple[int, ...]:
        if self.global_threshold:
            return (0,) * self.grid.ndim
        return gaussian_radius(tuple((s - 1.0) / 6.0 for s in self.local_sizes))

    @property
    def peak_sigma(self) -> float:
        """refine=objects: the smoothing of the image its bright levels come from (0: the
        smoothed image's)."""
        r = self.pipeline.refine
        return float(r.peak_smoothing or 0.0) if str(r.method) == "objects" else 0.0

    @property
    def footprint(self) -> np.ndarray | None:
        c = self.pipeline.clean
        return clean.opening_footprint(str(c.opening), c.opening_radius, self.spacing)

    @property
    def opening_halo(self) -> tuple[int, ...]:
        fp = self.footprint
        return (0,) * self.grid.ndim if fp is None else tuple(2 * (s // 2) for s in fp.shape)


@dataclass(frozen=True)
class Relabelled:
    """Per-chunk labels (scratch ``array``) read as global ids: chunk k's label i is
    ``luts[k][i]`` (the driver's decision after joining the chunks; no pass rewrites them)."""

    array: str
    luts: tuple[np.ndarray, ...]

    def read(self, job: TileJob, region: Region) -> np.ndarray:
        return job.scratch.read_mapped(self.array, region, self.luts)


@dataclass(frozen=True)
class LabelsRead:
    """Objects' labels read once over ``region``, for the crops a task needs of them (one
    read of the scratch array, with its lookups, instead of one per crop)."""

    region: Region
    labels: np.ndarray

    @classmethod
    def of(
        cls,
        job: TileJob,
        objects: Relabelled,
        region: Region,
        boxes: tuple | None = None,
        meeting: Region | None = None,
        among: np.ndarray | None = None,
    ) -> LabelsRead:
        """``objects`` read over ``region`` and the boxes (start, stop arrays by id) of every
        object (of ``among``, a mask by id, if given) whose box meets ``meeting`` (default
        ``region``): those that may have pixels there."""
        if boxes is not None:
            near = _meeting(*boxes, region if meeting is None else meeting)
            if among is not None:
                near = near[among[near]]
            if len(near):
                region = union(region, box(boxes[0][near].min(axis=0),
                                           boxes[1][near].max(axis=0)))  # fmt: skip
        return cls(region, objects.read(job, region))

    def crop(self, region: Region) -> np.ndarray:
        """The labels of ``region`` (inside the region read): a view."""
        inside = all(r.start >= o.start and r.stop <= o.stop
                     for r, o in zip(region, self.region, strict=True))  # fmt: skip
        if not inside:
            raise ValueError(f"{region} is not inside the labels read, {self.region}")
        return self.labels[within(region, self.region)]


def _meeting(starts: np.ndarray, stops: np.ndarray, region: Region) -> np.ndarray:
    """The ids (1, 2, ...; row 0 is the background's) whose non-empty box meets ``region``."""
    low = np.array([r.start for r in region])
    high = np.array([r.stop for r in region])
    hit = np.all((starts < high) & (stops > low) & (stops > starts), axis=1)
    hit[0] = False
    return np.flatnonzero(hit)


def committed(step: str, fn, job: TileJob, k: int, index: tuple[int, ...], extra: Any) -> dict:
    """Run one chunk of a pass and commit its result (after the arrays it wrote)."""
    result = fn(job, k, index, extra)
    result["slurm_job_id"] = np.asarray(os.environ.get("SLURM_JOB_ID", ""))  # who ran it
    result["container"] = np.asarray(os.environ.get("APPTAINER_CONTAINER", ""))
    job.scratch.save_result(step, k, result)
    return result


# ------------------------------------------------------------------------------ pixel passes
def voters(job: TileJob, smoothed: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """The smoothed values the global threshold counts: those of the pixels whose ``raw``
    value is above the image's floor (:func:`hpcseg.pipeline.threshold.voters`)."""
    return threshold.voters(smoothed, job.floor, raw)


def threshold_values(job: TileJob, values: np.ndarray) -> np.ndarray:
    """The threshold input of counted smoothed values: their log for log_otsu."""
    if job.log_scale:
        return threshold.log_intensity(values, job.floor)
    return values


def threshold_input(job: TileJob, smoothed: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """What the global threshold is computed on (possibly nothing: no pixel above the floor),
    as the whole image's :func:`hpcseg.pipeline.threshold.voters` (their logs for log_otsu,
    :func:`hpcseg.pipeline.threshold.log_votes`)."""
    return threshold_values(job, voters(job, smoothed, raw))


def raw_chunk(job: TileJob, k: int, index: tuple[int, ...], extra: Any) -> dict:
    """The image's pixels of this core, read once (scratch ``raw``): the later passes read
    them, with their halos, from there. A core read with its halo from the image decodes the
    neighbouring storage chunks too: a 2048² core of a Zstd Zarr of 512² chunks took 57-62 ms
    alone and 117-128 ms with a 16-px halo, of a BigTIFF 18 and 29-34 ms; from scratch 2-5 ms."""
    core = job.grid.core(index)
    job.scratch.write("raw", core, np.ascontiguousarray(job.image.read(core)))
    return {}


def smooth_chunk(job: TileJob, k: int, index: tuple[int, ...], extra: Any) -> dict:
    """The smoothed core (scratch ``smoothed``); the threshold input's range."""
    core = job.grid.core(index)
    crop = job.grid.grow(core, job.smooth_halo)
    c = job.pipeline.smooth
    smoother = SMOOTHERS[str(c.method)]
    raw = raw_pixels(job, crop)
    smoothed = in_bands(lambda rows: smoother(rows, c.sigma, c.keep_dtype, job.spacing),
                        raw, job.smooth_halo[0])  # fmt: skip
    smoothed = np.ascontiguousarray(smoothed[within(core, crop)])
    job.scratch.write("smoothed", core, smoothed)
    if not job.global_threshold:
        return {}
    # the range from every pixel's input: NumPy's float32 log is not monotone (1,430 steps
    # down over the float32 values >= 1, checked here), so log(min) can differ from min(log)
    raw = raw[within(core, crop)]
    values = threshold_input(job, smoothed, raw)
    if not values.size:  # no pixel above the floor here: no range (low > high), no counts
        out = {"low": _extreme(values.dtype, 1), "high": _extreme(values.dtype, -1)}
    else:
        out = {"low": np.asarray(values.min()), "high": np.asarray(values.max())}
    if smoothed.dtype.kind in "iu" and smoothed.dtype.itemsize <= 2:
        out["value_low"], out["value_counts"] = value_counts(voters(job, smoothed, raw))
    return out


def _extreme(dtype: np.dtype, sign: int) -> np.ndarray:
    """The largest (``sign`` 1) or smallest (-1) value of ``dtype``: an empty range's ends."""
    if dtype.kind in "iu":
        limits = np.iinfo(dtype)
        return np.asarray(limits.max if sign > 0 else limits.min, dtype)
    return np.asarray(sign * np.inf, dtype)


def raw_pixels(job: TileJob, region: Region) -> np.ndarray:
    """The image's pixels of ``region``, after the raw pass (from scratch ``raw``)."""
    return job.scratch.read("raw", region)


def value_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How many pixels have each value, from the smallest (returned first) to the largest, of
    an integer array of at most 16 bits: the global histogram's input, summed over chunks, so
    that no second pass over the pixels is needed. None counted: (0, no counts)."""
    if not values.size:
        return np.asarray(0), np.zeros(0, np.int64)
    low = int(values.min())
    if low >= 0:
        counts = np.bincount(values.ravel())[low:]
    else:  # bincount takes no negatives
        counts = np.bincount(values.ravel().astype(np.int32) - low)
    return np.asarray(low), counts.astype(np.int64)


def histogram_chunk(job: TileJob, k: int, index: tuple[int, ...], extra: Any) -> dict:
    """The chunk's histogram of the threshold input over the image's range ``extra``."""
    low, high = extra
    core = job.grid.core(index)
    raw = raw_pixels(job, core)  # the floor is decided on the pixels as read
    values = threshold_input(job, job.scratch.read("smoothed", core), raw)
    if np.issubdtype(values.dtype, np.integer):  # skimage: one bin per integer value
        counts = np.bincount(
            values.ravel().astype(np.int64) - int(low), minlength=int(high) - int(low) + 1
        )
    else:
        counts = np.histogram(values, histogram.BINS, (low, high))[0]
    return {"counts": counts.astype(np.int64)}


def mask_chunk(job: TileJob, k: int, index: tuple[int, ...], extra: Any) -> dict:
    """The thresholded and opened core (scratch ``mask``); with hole filling, the holes that
    lie wholly inside the core filled there, and per background label of the core (before that
    filling) whether it touches the image border (``border``) and the core's border (``edge``),
    with the faces: whether an ``edge`` label is a hole is decided across chunks
    (:func:`clean_chunk`)."""
    core = job.grid.core(index)
    opened_crop = job.grid.grow(core, job.opening_halo)
    crop = job.grid.grow(opened_crop, job.threshold_halo)
    smoothed = job.scratch.read("smoothed", crop)
    c = job.pipeline.threshold
    if job.global_threshold:
        mask = threshold.apply(smoothed, extra)
    else:
        mask = threshold.local_gaussian(smoothed, offset=c.offset, sizes=job.local_sizes)
    mask = mask[within(opened_crop, crop)]
    if job.footprint is not None:
        mask = clean.open_mask(mask, job.footprint)
    mask = np.ascontiguousarray(mask[within(core, opened_crop)])
    if not job.pipeline.clean.fill_holes:
        job.scratch.write("mask", core, mask.astype(np.uint8))
        return {}
    # fill_holes labels ~mask with the cross; a background label is a hole unless it touches
    # the image border: one that does not touch the core's border cannot, so it is filled here
    labels, n = label_chunk(~mask, clean.cross(mask.ndim))
    border = np.zeros(n + 1, bool)
    edge = np.zeros(n + 1, bool)
    for axis, (lo, hi) in enumerate(zip(core, job.grid.shape, strict=False)):
        first, last = np.take(labels, 0, axis=axis), np.take(labels, -1, axis=axis)
        edge[first] = edge[last] = True
        if lo.start == 0:
            border[first] = True
        if lo.stop == hi:
            border[last] = True
    inside = ~edge
    inside[0] = False
    if inside.any():
        mask |= inside[labels]
    job.scratch.write("mask", core, mask.astype(np.uint8))
    return {"n": np.asarray(n), "border": border[1:], "edge": edge[1:], **_faces(labels)}


def present_ids(labels: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
    """The nonzero global ids in ``labels``, ascending: a count (``counts``, its bincount, when
    the caller has it), not a sort, as the ids are compact."""
    counts = label_sizes(labels) if counts is None else counts
    ids = np.flatnonzero(counts)
    return ids[ids > 0]


def _global_index(flat: np.ndarray, core: Region, shape: tuple[int, ...]) -> np.ndarray:
    """Raster indices in a core's array as raster indices in the whole image."""
    coords = np.unravel_index(flat, tuple(r.stop - r.start for r in core))
    starts = tuple(c + r.start for c, r in zip(coords, core, strict=True))
    return np.ravel_multi_index(starts, shape).astype(np.int64)


def _faces(labels: np.ndarray) -> dict:
    out = {}
    for axis, (first, last) in enumerate(faces_of(labels)):
        out[f"face{axis}_0"], out[f"face{axis}_1"] = first, last
    return out


def faces_from(result: dict, ndim: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The faces a chunk result carries (see :func:`faces_of`)."""
    return [(result[f"face{a}_0"], result[f"face{a}_1"]) for a in range(ndim)]


def _parts(labels: np.ndarray, n: int, core: Region) -> dict:
    """Per-label pixel count, box and first pixel (global raster index) of a chunk's labels,
    with its faces."""
    counts = label_sizes(labels, n + 1)[1:]
    start = np.zeros((n, labels.ndim), np.int64)
    stop = np.zeros((n, labels.ndim), np.int64)
    found = ndi.find_objects(labels, max_label=n)
    present = [i for i, f in enumerate(found) if f is not None]
    if present:
        bounds = np.array([(s.start, s.stop) for i in present for s in found[i]], np.int64)
        origin = np.array([c.start for c in core], np.int64)[None, :, None]
        bounds = bounds.reshape(len(present), labels.ndim, 2) + origin
        start[present], stop[present] = bounds[:, :, 0], bounds[:, :, 1]
    return {"n": np.asarray(n), "count": counts.astype(np.int64), "start": start, "stop": stop,
            **_faces(labels)}  # fmt: skip


def clean_chunk(job: TileJob, k: int, index: tuple[int, ...], extra: Any) -> dict:
    """The holes across the core's border filled (``extra``: None when there are none, else
    whether each background label of the mask pass that touches the core's border, in
    ascending order after a 0 for the mask, is a hole), then the components labelled (scratch
    ``parts``) with their sizes and boxes."""
    core = job.grid.core(index)
    mask = job.scratch.read("mask", core).astype(bool)
    if extra is not None:
        # the mask pass filled the other holes, so the background's labels here are exactly
        # its labels that touch the core's border, numbered in the same (raster) order
        mask |= extra[label_chunk(~mask, clean.cross(mask.ndim))[0]]
    labels, n = label_chunk(mask, job.structure)
    job.scratch.write("parts", core, labels)
    return _parts(labels, n, core)


# ------------------------------------------------------------------------------ refinement
def refine_windows(job: TileJob) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The box dilation's and the background window's sizes per axis (refine.refine_objects)."""
    c = job.pipeline.refine
    return window(c.margin, job.spacing), window(c.window // 2, job.spacing)


def refine_stats_chunk(job: TileJob, k: int, index: tuple[int, ...], extra: Any) -> dict:
    """The refinement's sums (:func:`_refine_sums`) of the objects (``extra``:
    :class:`Relabelled`) in this core, by their global ids."""
    core = job.grid.core(index)
    read = LabelsRead.of(job, extra, _refine_label_crop(job, core))
    return _refine_sums(job, core, read, read.crop(core))


def _refine_label_crop(job: TileJob, core: Region) -> Region:
    """The objects' region the refinement's background level of ``core`` needs."""
    near_size, bg_size = refine_windows(job)
    return job.grid.grow(job.grid.grow(core, _half(bg_size)), _half(near_size))


def pieces_stats_chunk(job: TileJob, k: int, index: tuple[int, ...], extra: Any) -> dict:
    """refine=objects: the pieces of a first split of this core's objects (``extra``: the
    objects, :class:`Relabelled`, and the split as :func:`_keys` takes it), numbered 1..m in
    this core (scratch ``pieces``; ``table``: the key of each number, 0 first), and their
    refinement sums (:func:`_refine_sums`; ``ids``: the local numbers). The pieces cover the
    objects, so the background level around them comes from the objects' union."""
    objects, split_by = extra
    core = job.grid.core(index)
    keys, read = _keys(job, core, objects, split_by, also=_refine_label_crop(job, core))
    local, table, _ = _numbered_keys(keys)
    job.scratch.write("pieces", core, local)
    return {**_refine_sums(job, core, read, local), "table": table}


def _refine_sums(job: TileJob, core: Region, union_of: LabelsRead, own: np.ndarray) -> dict:
    """Per object of ``own`` (this core's labels) its pixel count, the sums of the bright-level
    image (:func:`_bright`) and its square, the sum of the local background level where it is
    defined and the count where it is not; the sum and count of the smoothed background pixels
    (the fallback). The background level needs the objects' union around the core
    (``union_of``: read over :func:`_refine_label_crop` at least)."""
    near_size, bg_size = refine_windows(job)
    bright = _bright(job, core)
    level_crop = job.grid.grow(core, _half(bg_size))
    label_crop = _refine_label_crop(job, core)
    labels = union_of.crop(label_crop)
    near = in_bands(lambda rows: ndi.maximum_filter(rows, size=near_size), labels > 0,
                    near_size[0] // 2)[within(level_crop, label_crop)]  # fmt: skip
    intensity = job.scratch.read("smoothed", level_crop)
    weights = (~near).astype(np.float32)

    def box_mean(values: np.ndarray) -> np.ndarray:
        return in_bands(lambda rows: ndi.uniform_filter(rows, bg_size), values, bg_size[0] // 2)

    weighted = intensity.astype(np.float32, copy=False) * weights  # the background's values
    level = box_mean(weighted)
    norm = box_mean(weights)
    inner = within(core, level_crop)
    # the objects' pixels only, read through views of the core (no copies of the whole core)
    inside = own > 0
    group = own[inside]  # compact ids: per-id sums by bincount, then the ids present
    norm_at = norm[inner][inside]
    ok = norm_at > 1e-3
    lv = level[inner][inside] / np.maximum(norm_at, 1e-3)  # float32, as the whole image
    v = (intensity[inner] if bright is None else bright)[inside].astype(np.float64)
    count = label_sizes(group)
    ids = present_ids(group, count)

    def per_id(weights) -> np.ndarray:
        return np.bincount(group, weights=weights, minlength=len(count))[ids]

    return {
        "ids": ids.astype(np.int64),
        "count": count[ids].astype(np.int64),
        "sum": per_id(v),
        "sum2": per_id(v * v),
        "level": per_id(np.where(ok, lv, 0.0)),  # bincount adds float32 weights in float64
        "undefined": per_id(~ok).astype(np.int64),
        "bg_sum": np.asarray(_background_sum(intensity[inner], weighted[inner], weights[inner])),
        "bg_count": np.asarray(int(weights[inner].sum(dtype=np.int64))),
    }


def _background_sum(values: np.ndarray, weighted: np.ndarray, weights: np.ndarray) -> float:
    """The sum of ``values`` where ``weights`` is 1 (the background, in float64): from
    ``weighted`` (values x weights, float32, 0 near objects) when float32 holds the values
    exactly, else from the values themselves."""
    if values.dtype in FLOAT32_EXACT:
        return float(weighted.sum(dtype=np.float64))
    return float(values[weights > 0].astype(np.float64).sum())


def _bright(job: TileJob, core: Region) -> np.ndarray | None:
    """The image the objects' bright levels are measured on in this core: the raw pixels
    smoothed at ``refine.peak_smoothing`` (refine=objects, as ``segment._refine_objects``);
    None: the smoothed image itself."""
    sigma = job.peak_sigma
    if not sigma:
        return None
    radius = gaussian_radius(per_axis(sigma, job.spacing))
    crop = job.grid.grow(core, radius)
    bright = in_bands(lambda rows: smooth.gaussian(rows, sigma, False, job.spacing),
                      raw_pixels(job, crop), radius[0])  # fmt: skip
    return np.ascontiguousarray(bright[within(core, crop)])


def refine_apply_chunk(job: TileJob, k: int, index: tuple[int, ...], extra: Any) -> dict:
    """Each object cut at its own threshold (``extra``: the objects, :class:`Relabelled`, and
    the cut per object id), the remaining components labelled (scratch ``refined``) with sizes
    and boxes."""
    objects, cut = extra
    core = job.grid.core(index)
    labels = objects.read(job, core)
    values = job.scratch.read("smoothed", core)
    if values.dtype in FLOAT32_EXACT:  # the same decisions in float32, half the bytes
        cut = float32_at_or_below(cut)
    else:
        values = values.astype(np.float64)
    kept = (labels > 0) & (values > cut[labels])
    parts, n = label_chunk(kept, job.structure)
    job.scratch.write("refined", core, parts)
    return _parts(parts, n, core)


FLOAT32_EXACT = tuple(np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.float32))


def float32_at_or_below(cut: np.ndarray) -> np.ndarray:
    """The largest float32 at or below each (float64) cut: a value v exact in float32 is above
    the cut exactly when it is above this one, as no float32 lies between the two."""
    with np.errstate(over="ignore"):  # beyond float32's range: inf, stepped down below
        down = cut.astype(np.float32)
    over = down.astype(np.float64) > cut
    down[over] = np.nextafter(down[over], np.float32(-np.inf))
    return down


# ------------------------------------------------------------------------------ watershed
def split_radii(job: TileJob) -> tuple[tuple[int, ...], tuple[int, ...], tuple[float, ...]]:
    """The seed window's half-size, the landscape smoothing's radius and sigmas, per axis."""
    c = job.pipeline.split
    sigmas = per_axis(c.smoothing, job.spacing) if c.smoothing > 0 else (0.0,) * job.grid.ndim
    return _half(window(c.min_distance, job.spacing)), gaussian_radius(sigmas), sigmas


def seeds_chunk(job: TileJob, k: int, index: tuple[int, ...], extra: Any) -> dict:
    """The watershed landscape of this core (scratch ``height``: each object's distance to its
    edge, from the object's whole box, smoothed) and its seeds (the window maxima) labelled
    (its pixels returned: ``seed_at``, ``seed_label``) with each seed's first pixel and the
    object it falls in.

    ``extra``: the objects (:class:`Relabelled`), their boxes (start, stop), indexed by id, and
    the scratch array the landscape goes to.
    """
    objects, (starts, stops), height_array = extra
    half, radius, sigmas = split_radii(job)
    core = job.grid.core(index)
    peak_crop = job.grid.grow(core, half)
    region = job.grid.grow(peak_crop, radius)
    shape = np.asarray(job.grid.shape)
    # each object's box grown by one pixel (as object_distance), clipped to the image
    padded = (np.maximum(starts - 1, 0), np.minimum(stops + 1, shape))
    read = LabelsRead.of(job, objects, region, padded)
    labels = read.crop(region)
    # the objects whose box meets the region: those with pixels there, and rarely one without
    # (its distance is computed and not used), found without a pass over the pixels
    ids = _meeting(starts, stops, region)
    low, high = padded[0][ids], padded[1][ids]  # the boxes, (objects, ndim) each
    outer = union(region, box(low.min(axis=0), high.max(axis=0))) if len(ids) else region
    all_labels = read.crop(outer)
    distance = np.zeros(all_labels.shape, np.float32)
    wheres = boxes(low, high, [o.start for o in outer])
    owns = [all_labels[where] == i for i, where in zip(ids.tolist(), wheres, strict=True)]
    ringed = (np.all(starts[ids] > 0, axis=1) & np.all(stops[ids] < shape, axis=1)).tolist()
    for where, own, d in zip(wheres, owns, distance_each(owns, job.spacing, ringed), strict=True):
        distance[where][own] = d[own]
    height = distance[within(region, outer)]
    if job.pipeline.split.smoothing > 0:
        height = in_bands(lambda rows: ndi.gaussian_filter(rows, sigmas), height, radius[0])
        height[labels == 0] = 0
    size = window(job.pipeline.split.min_distance, job.spacing)
    peaks_height = height[within(peak_crop, region)]
    maxima = in_bands(lambda rows: ndi.maximum_filter(rows, size=size), peaks_height,
                      size[0] // 2)  # fmt: skip
    inner = within(core, peak_crop)
    core_height = np.ascontiguousarray(peaks_height[inner])
    peaks = (core_height == maxima[inner]) & (core_height > 0)
    job.scratch.write(height_array, core, core_height)
    seeds, n = label_seeds(peaks)
    flat = seeds.ravel()
    pixels = np.flatnonzero(flat)
    local = flat[pixels]
    first_local = pixels[np.unique(local, return_index=True)[1]]
    first = _global_index(first_local, core, job.grid.shape)
    at = np.unravel_index(first_local, seeds.shape)  # not a copy of the core's labels
    owner = labels[within(core, region)][at].astype(np.int64)
    origin = np.array([c.start for c in core], np.int64)[:, None]
    where = np.stack(np.unravel_index(pixels, seeds.shape)).astype(np.int64) + origin
    return {"n": np.asarray(n), "first": first, "owner": owner, "seed_at": where,
            "seed_label": local.astype(np.int32), **_faces(seeds)}  # fmt: skip


@dataclass(frozen=True)
class SeedPixels:
    """The watershed's seeds of the whole image, kept sparse (a few pixels per nucleus): the
    pixels' coordinates (ndim x n) and their global seed ids. Sent to every chunk of a pass
    instead of a stored seed image (writing that mostly empty image took 7 % of a seeds task,
    line profile, 2048² chunks)."""

    at: np.ndarray
    ids: np.ndarray

    def read(self, job: TileJob, region: Region) -> np.ndarray:
        """The seed ids painted into ``region`` (0 elsewhere), as a seed image would read."""
        out = np.zeros(tuple(r.stop - r.start for r in region), np.int32)
        start = np.array([r.start for r in region], np.int64)[:, None]
        stop = np.array([r.stop for r in region], np.int64)[:, None]
        inside = np.flatnonzero(np.all((self.at >= start) & (self.at < stop), axis=0))
        out[tuple(self.at[:, inside] - start)] = self.ids[inside]
        return out


def objects_chunk(job: TileJob, k: int, index: tuple[int, ...], extra: Any) -> dict:
    """The final objects of this core as keys (:func:`_keys`, scratch ``keys``) with their
    mergeable measurements and first pixels."""
    core = job.grid.core(index)
    return _measure(job, _keys(job, core, *extra)[0], core)


def _keys(job: TileJob, core: Region, objects: Relabelled, split_by: tuple | None,
          also: Region | None = None) -> tuple[np.ndarray, LabelsRead]:  # fmt: skip
    """The objects of ``core`` as keys: object id x base + the seed id that flooded the pixel
    (0 for an object that is not split), each split object flooded on its whole box; and the
    objects' labels as read (over the core, the split objects' boxes and ``also``).

    ``objects``: the objects (:class:`Relabelled`); ``split_by``: None (no split) or (is_split
    per object id, boxes (start, stop), base, the seeds (:class:`SeedPixels`), the scratch array
    of the landscape).
    """
    cover = core if also is None else union(core, also)
    if split_by is None:
        read = LabelsRead.of(job, objects, cover)
        return read.crop(core).astype(np.int64), read
    is_split, (starts, stops), base, seeds, height = split_by
    read = LabelsRead.of(job, objects, cover, (starts, stops), meeting=core, among=is_split)
    labels = read.crop(core)
    keys = labels.astype(np.int64) * base
    # the split objects whose box meets the core (one without pixels there floods for nothing)
    near = _meeting(starts, stops, core)
    split = near[is_split[near]]
    if len(split):
        # one read of the arrays over all split objects' boxes, then crops in memory
        region = box(starts[split].min(axis=0), stops[split].max(axis=0))
        all_labels = read.crop(region)
        all_seeds = seeds.read(job, region)
        all_height = job.scratch.read(height, region)
        wheres = boxes(starts[split], stops[split], [r.start for r in region])
        owns = [all_labels[where] == i for i, where in zip(split.tolist(), wheres, strict=True)]
        floods = watershed_each(
            [-all_height[where] for where in wheres],
            [all_seeds[where] * own for where, own in zip(wheres, owns, strict=True)],
            owns, job.pipeline.label.connectivity,
        )  # fmt: skip
        # each box's part inside the core, as slices of the box and of the core
        origin = np.array([c.start for c in core])
        part_low = np.maximum(starts[split], origin)
        part_high = np.minimum(stops[split], [c.stop for c in core])
        of_core = boxes(part_low, part_high, origin)
        of_box = boxes(part_low, part_high, starts[split])
        for i, own, flooded, in_box, in_core in zip(split.tolist(), owns, floods, of_box,
                                                    of_core, strict=True):  # fmt: skip
            inside = own[in_box]
            piece = flooded[in_box][inside].astype(np.int64)
            keys[in_core][inside] = i * base + piece
    return keys, read


def _measure(job: TileJob, keys: np.ndarray, core: Region) -> dict:
    """Mergeable per-key sums of the raw pixels, first pixels, and the background's value
    counts; the keys numbered 1..m in this chunk (scratch ``keys``, with the table of them)."""
    raw = raw_pixels(job, core)
    local, uniq, first_local = _numbered_keys(keys)
    if job.keep_labels:
        job.scratch.write("keys", core, local)
    moments = label_moments(local, raw, offset=tuple(c.start for c in core))
    first = _global_index(first_local, core, job.grid.shape)
    out = {name: getattr(moments, name) for name in moments.__dataclass_fields__}
    out["label"] = uniq[moments.label]
    out["table"] = uniq  # scratch ``keys`` holds this chunk's local label i for key uniq[i]
    out["first"] = first.astype(np.int64)
    outside = raw[keys == 0]
    if np.issubdtype(raw.dtype, np.integer) and outside.size:
        out["bg_low"], out["bg_counts"] = value_counts(outside)
    return out


def _numbered_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A core's keys numbered 1..m (int32, 0 background), the key of each number (0 first,
    int64) and each number's first pixel (raster index in the core): a sort of the objects'
    pixels only."""
    flat = keys.ravel()
    pixels = np.flatnonzero(flat)
    values = flat[pixels]
    # an object's pixels come in runs along the rows: sort the runs, not the pixels (about a
    # 17th as many on 2048² cores; first run of a key = its first pixel, as raster order holds)
    starts = np.flatnonzero(np.concatenate([[len(values) > 0], values[1:] != values[:-1]]))
    table, first, inverse = np.unique(values[starts], return_index=True, return_inverse=True)
    local = np.zeros(keys.shape, np.int32)
    local.ravel()[pixels] = np.repeat(inverse + 1, np.diff(np.append(starts, len(values))))
    return local, np.concatenate([[0], table]).astype(np.int64), pixels[starts[first]]


def number_keys(keys: np.ndarray, block: np.ndarray) -> np.ndarray:
    """``block`` of keys as labels: ``keys[i]`` becomes i + 1, any other key 0."""
    if not len(keys):
        return np.zeros(block.shape, np.int32)
    order = np.argsort(keys, kind="stable")
    at = np.clip(np.searchsorted(keys, block, sorter=order), 0, len(keys) - 1)
    found = (keys[order[at]] == block) & (block > 0)
    return np.where(found, order[at] + 1, 0).astype(np.int32)


def labels_chunk(job: TileJob, k: int, index: tuple[int, ...], extra: Any) -> dict:
    """The final labels of this core written to the output array ``extra = (path, final)``
    (``final``: the labels 1..n, numbered by first pixel, :class:`Relabelled`)."""
    path, final = extra
    core = job.grid.core(index)
    zarr.open_array(path, mode="r+")[core] = final.read(job, core)
    return {}


def shape_chunk(job: TileJob, k: int, index: tuple[int, ...], extra: Any) -> dict:
    """Perimeter (2-D), Euler number and solidity of the objects whose first pixel is in this
    core, each from its whole box of scratch ``keys`` (other objects blanked), as
    :func:`hpcseg.pipeline.measure.shape_columns` on the whole image.

    ``extra``: the final labels (:class:`Relabelled`) and per object 1..n its first pixel
    (raster index) and box.
    """
    final, first, starts, stops = extra
    core = job.grid.core(index)
    coords = np.unravel_index(first, job.grid.shape)
    inside = np.all([(c >= r.start) & (c < r.stop) for c, r in zip(coords, core, strict=True)], 0)
    owned = np.flatnonzero(inside)
    if not len(owned):
        return {"ids": np.zeros(0, np.int64)}
    region = box(starts[owned].min(axis=0), stops[owned].max(axis=0))
    renumber = np.zeros(len(first) + 1, np.int32)  # owned object j is local label j + 1
    renumber[owned + 1] = np.arange(1, len(owned) + 1)
    local = renumber[final.read(job, region)]
    moments = label_moments(local, np.zeros(local.shape, np.uint8))
    columns = shape_columns(local, moments)
    out = {"ids": (owned[moments.label - 1] + 1).astype(np.int64)}
    out.update({name: np.asarray(values, np.float64) for name, values in columns.items()})
    return out
