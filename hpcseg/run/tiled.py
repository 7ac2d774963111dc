"""The tiled mode: one image too large for a worker, segmented chunk by chunk, equal to the
whole-image pipeline.

The driver runs the passes of :mod:`hpcseg.run.tile_tasks` over the chunk grid and makes the
decisions that need the whole image between them, from the chunks' small results only:

0. ``raw``: each core's pixels read from the image once and kept in scratch, where the later
   passes read them with their halos (a halo read from a Zarr decodes the neighbouring
   storage chunks: twice the work of the core alone; a core decodes only its own when
   ``mode.chunk_size`` is a multiple of the storage chunk).
1. ``smooth``: each core smoothed (halo: the Gaussian's radius); the threshold input's range
   and, for 8/16-bit smoothed values, how many pixels have each value.
2. Global thresholds: the threshold input's histogram over the image's range, as scikit-image
   computes it from the whole image: from the value counts (each value's threshold input
   computed once and weighted), else from a ``histogram`` pass (per-chunk histograms added).
3. ``mask``: thresholded (the local Gaussian threshold with its own halo), opened; with hole
   filling its background labelled: a background component is a hole unless it touches the
   image border. One inside the core is filled there; those that reach the core's border are
   joined across chunks (:class:`~hpcseg.pipeline.stitch.Components`).
4. ``clean``: the holes across chunk borders filled (only in the chunks that have one),
   components labelled and joined; those below the size filter go.
5. ``refine_stats`` / ``refine_apply``: per-object sums give each object its cut; the cut
   objects are labelled, joined and size-filtered again. refine=components cuts the clean
   components; refine=objects first splits them (``first_seeds`` as 6; ``refine_stats``
   floods the split objects as 6 does, numbers the pieces in its chunk and sums them; the
   driver numbers them over the image from the chunks' key tables), measures each piece's
   bright level on the raw image smoothed at ``refine.peak_smoothing``, and cuts the pieces.
6. ``seeds`` (split=watershed): each object's distance map from its whole box, the smoothed
   landscape and its window maxima; seeds joined across chunks and given to the object of their
   first pixel; ``objects``: every object with two or more seeds is flooded on its own box.
7. The final objects are numbered by their first pixel in raster order (as the whole-image
   labelling numbers them) and measured from per-chunk partial sums
   (:func:`hpcseg.pipeline.moments.merge`).

No pass rewrites labels: a join's result is a table per chunk (local label -> global id,
:class:`~hpcseg.run.tile_tasks.Relabelled`) that the next passes apply as they read.
Tasks grow with chunks; the driver's work with objects and chunk faces; a worker holds a chunk
and its halo (an object's box when it floods or measures a split object).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from distributed import wait
from skimage.filters import threshold_otsu

from hpcseg.pipeline import clean, histogram, threshold
from hpcseg.pipeline.grid import Region
from hpcseg.pipeline.measure import column_names, from_moments, shape_feature_columns
from hpcseg.pipeline.moments import LabelMoments, merge
from hpcseg.pipeline.stitch import Components
from hpcseg.results.scratch import ScratchReleased
from hpcseg.run import tile_tasks as tasks
from hpcseg.run.signals import Stop
from hpcseg.run.tile_tasks import Relabelled, SeedPixels, TileJob, faces_from

# the passes' layout (their names, scratch arrays and results): a scratch folder written with
# another one is not resumed (2: refine=objects tiled, seeds sent as pixels, 2026-12-07;
# 3: the first split's landscape in its own array, arrays released once read; 4: the mask
# pass fills the holes inside its core; the raw pass copies every image's pixels to scratch;
# 5: log_otsu's range and histogram over the pixels above its floor only; 6: otsu's too (li
# is not tiled))
PASSES_FORMAT = 6

log = logging.getLogger("hpcseg")

# a mapper runs fn(job, k, index, extra) for every (k, index, extra) and returns the results
# in order; ``shared`` is the extra of items whose own extra is None (sent once per worker)
Mapper = Callable[[str, Callable, TileJob, list, Any], list[dict]]


@dataclass
class TiledSegmentation:
    """What a tiled image gives: the objects' columns (as :func:`measure`), the decisions,
    and what it took."""

    objects: dict
    threshold: float | None
    summary: dict
    n_chunks: int
    chunk_grid: tuple[int, ...]
    n_tasks: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    final: Relabelled | None = None  # the labels 1..n (by first pixel), 0 background
    slurm_job_ids: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)

    def labels(self, job: TileJob, region: Region) -> np.ndarray:
        """The final labels of ``region`` (from the scratch folder, while it exists)."""
        return self.final.read(job, region)


def serial_mapper(step: str, fn: Callable, job: TileJob, items: list, shared: Any) -> list:
    """Run the chunks one after another in this process (tests, one-core runs)."""
    return [tasks.committed(step, fn, job, k, index, shared if extra is None else extra)
            for k, index, extra in items]  # fmt: skip


class TiledStopped(Exception):
    """A signal stopped the image between (or, after the grace, during) its passes; the
    chunks committed so far are kept for the next run."""


def dask_mapper(client, stop: Stop | None = None) -> Mapper:
    """Run the chunks as tasks on a Dask client (the shared value is sent once per worker);
    ``stop``: a signal's grace ends the pass (its committed chunks stay)."""

    sent: dict[int, Any] = {}  # the job, sent to the workers once for all its passes

    def run(step: str, fn: Callable, job: TileJob, items: list, shared: Any) -> list:
        if not items:
            return []
        if id(job) not in sent:
            sent.clear()
            sent[id(job)] = client.scatter([job], broadcast=True, hash=False)[0]
        job_f = sent[id(job)]
        shared_f = (
            client.scatter([shared], broadcast=True, hash=False)[0] if shared is not None else None
        )
        futures = [
            client.submit(tasks.committed, step, fn, job_f, k, index,
                          shared_f if extra is None else extra,
                          key=f"hpcseg-tile-{step}-{k}-{time.monotonic_ns()}", pure=False)
            for k, index, extra in items
        ]  # fmt: skip
        while stop is not None:
            try:
                wait(futures, timeout=0.5)
                break
            except TimeoutError:  # not all done yet (distributed's wait raises)
                pass
            if stop.expired():
                client.cancel(futures)
                raise TiledStopped
        return client.gather(futures)

    return run


class _Passes:
    """Runs passes, reusing the chunks an earlier (killed) run committed."""

    def __init__(self, job: TileJob, mapper: Mapper, progress: Callable[[str, int], None] | None,
                 stop: Stop | None = None):  # fmt: skip
        self.job, self.mapper, self.progress, self.stop = job, mapper, progress, stop
        self.indices = job.grid.indices()
        self.n_tasks = 0
        self.job_ids: set[str] = set()  # the SLURM jobs whose workers ran chunks
        self.containers: set[str] = set()  # the images the workers ran in
        self.seconds: dict[str, float] = {}

    def run(self, step: str, fn: Callable, per_chunk: list | None = None, shared: Any = None):
        if self.stop is not None and self.stop.requested.is_set():
            raise TiledStopped
        t0 = time.perf_counter()
        results = [self.job.scratch.load_result(step, k) for k in range(len(self.indices))]
        todo = [
            (k, index, per_chunk[k] if per_chunk is not None else None)
            for k, index in enumerate(self.indices)
            if results[k] is None
        ]
        for (k, _, _), result in zip(
            todo, self.mapper(step, fn, self.job, todo, shared), strict=True
        ):
            results[k] = result
        self.n_tasks += len(todo)
        self.job_ids.update(i for i in {str(r.get("slurm_job_id", "")) for r in results} if i)
        self.containers.update(i for i in {str(r.get("container", "")) for r in results} if i)
        self.seconds[step] = time.perf_counter() - t0
        if self.progress:
            self.progress(step, len(todo))
        return results


def segment_tiled(
    job: TileJob,
    mapper: Mapper = serial_mapper,
    progress: Callable | None = None,
    labels_to: Callable[[bool], str] | None = None,
    stop: Stop | None = None,
) -> TiledSegmentation:
    """Segment and measure ``job.image`` chunk by chunk (see the module doc); with
    ``labels_to(fresh)`` (the output label array's path; created anew when ``fresh``) the
    final labels are written there chunk by chunk too.

    A resumed run whose committed results cannot all be read again (a damaged file) while the
    arrays they came from were already released starts the image afresh (a warning)."""
    try:
        return _segment(job, mapper, progress, labels_to, stop)
    except ScratchReleased as exc:
        log.warning("%s; a chunk result it came from is unreadable: segmenting this image afresh",
                    exc)  # fmt: skip
        job.scratch.clear()
        return _segment(job, mapper, progress, labels_to, stop)


def _segment(
    job: TileJob,
    mapper: Mapper,
    progress: Callable | None,
    labels_to: Callable[[bool], str] | None,
    stop: Stop | None,
) -> TiledSegmentation:
    """The passes of :func:`segment_tiled`, reusing the chunks committed before."""
    cfg, grid = job.pipeline, job.grid
    for name, dtype in (("raw", np.dtype(job.image.dtype)),
                        ("smoothed", job.smoothed_dtype), ("mask", np.uint8),
                        ("parts", np.int32), ("refined", np.int32),
                        ("first_height", np.float32), ("height", np.float32),
                        ("pieces", np.int32), ("keys", np.int32)):  # fmt: skip
        job.scratch.create(name, dtype)
    passes = _Passes(job, mapper, progress, stop)
    n = len(passes.indices)

    passes.run("raw", tasks.raw_chunk)
    smoothed = passes.run("smooth", tasks.smooth_chunk)
    value = None
    if job.global_threshold:
        value = _global_threshold(job, passes, smoothed)
    masks = passes.run("mask", tasks.mask_chunk, shared=value)
    holes: list | None = None
    if cfg.clean.fill_holes:
        background = Components.join(grid, _counts(masks), _faces(masks, grid.ndim),
                                     clean.cross(grid.ndim))  # fmt: skip
        touches = np.zeros(background.n_components + 1, bool)
        np.logical_or.at(
            touches, background.component[1:], np.concatenate([m["border"] for m in masks])
        )
        is_hole = ~touches
        is_hole[0] = False
        holes = []
        for k, m in enumerate(masks):  # the holes across chunk k's border, if any
            edge = is_hole[background.of_chunk(k)][1:][m["edge"]]
            holes.append(np.concatenate([[False], edge]) if edge.any() else None)
    parts = passes.run("clean", tasks.clean_chunk, per_chunk=holes or [None] * n)
    job.scratch.release("mask")  # each array goes once no later pass reads it
    n_objects, boxes, objects = _keep(job, parts, "parts")
    method = str(cfg.refine.method)
    if method == "components" and n_objects:
        stats = passes.run("refine_stats", tasks.refine_stats_chunk, shared=objects)
        n_objects, boxes, objects = _cut(job, passes, objects, n_objects, stats)
    elif method == "objects" and n_objects:  # a first split's objects cut, then split again
        first = _seeds(job, passes, objects, n_objects, boxes, "first_seeds", "first_height")
        stats = passes.run("refine_stats", tasks.pieces_stats_chunk, shared=(objects, first))
        job.scratch.release("parts", "first_height")  # the pieces hold the first split
        n_pieces, pieces = _numbered(stats)
        stats = [{**s, "ids": lut[s["ids"]]} for s, lut in zip(stats, pieces.luts, strict=True)]
        n_objects, boxes, objects = _cut(job, passes, pieces, n_pieces, stats)
    # the refinement's inputs go (the objects are ``refined`` now, or still ``parts``)
    job.scratch.release("smoothed", "pieces", *sorted({"parts", "refined"} - {objects.array}))
    split = None
    if str(cfg.split.method) == "watershed" and n_objects:
        split = _seeds(job, passes, objects, n_objects, boxes)
    measured = passes.run("objects", tasks.objects_chunk, shared=(objects, split))
    job.scratch.release(objects.array, "height", "raw")  # scratch ``keys`` holds the objects
    objects, summary, final = _objects(job, passes, measured)
    if labels_to is not None:  # a fresh label array unless a killed run began writing it
        resumed = job.scratch.result_path("labels", 0).parent.is_dir()
        passes.run("labels", tasks.labels_chunk, shared=(labels_to(not resumed), final))
    return TiledSegmentation(
        objects=objects,
        threshold=value,
        summary=summary,
        n_chunks=n,
        chunk_grid=grid.counts,
        n_tasks=passes.n_tasks,
        seconds=passes.seconds,
        final=final,
        slurm_job_ids=sorted(passes.job_ids),
        containers=sorted(passes.containers),
    )


def _counts(results: list[dict]) -> list[int]:
    return [int(r["n"]) for r in results]


def _faces(results: list[dict], ndim: int) -> list:
    return [faces_from(r, ndim) for r in results]


def _global_threshold(job: TileJob, passes: _Passes, smoothed: list[dict]) -> float:
    """Otsu (on intensity or log intensity) from the sum of the chunks' histograms, lowered
    (``threshold.lower``) on that histogram: the same bins, counts and arithmetic as the
    whole-image :func:`hpcseg.pipeline.threshold.otsu` and ``log_otsu``."""
    low = min(r["low"] for r in smoothed)[()]
    high = max(r["high"] for r in smoothed)[()]
    t = job.pipeline.threshold
    if low > high:  # no pixel above the floor: the floor, nothing foreground
        return float(job.floor)
    if low == high:  # skimage returns the single value
        found = low
    else:
        if all("value_counts" in r for r in smoothed):  # 8/16-bit: from the smooth pass's counts
            counts = _histogram_of_counts(job, smoothed, low, high)
        else:
            histograms = passes.run("histogram", tasks.histogram_chunk, shared=(low, high))
            counts = np.sum([h["counts"] for h in histograms], axis=0)
        if np.issubdtype(low.dtype, np.integer):
            centres = np.arange(low.item(), high.item() + 1)
        else:  # numpy scalars, as the whole image's range: edges in the image's dtype
            centres = histogram.centres(histogram.float_edges(low.dtype, low, high))
        found = threshold.lowered(
            threshold_otsu(hist=(counts, centres)),
            counts,
            centres,
            threshold.lower_for(t.lower, job.grid.ndim),
            t.noise,
        )
    if job.log_scale:
        found = np.exp(found)
    return float(found) * t.correction


def _histogram_of_counts(job: TileJob, smoothed: list[dict], low, high) -> np.ndarray:
    """The threshold input's histogram (as :func:`tasks.histogram_chunk` gives it, summed)
    from the chunks' counts of each smoothed value: each value's threshold input is computed
    once, the same arithmetic as on its pixels, and weighted by its count."""
    counted = [(r["value_low"], r["value_counts"]) for r in smoothed if len(r["value_counts"])]
    first, total = _added(counted)
    values = np.arange(first, first + len(total)).astype(job.smoothed_dtype)
    present = total > 0
    inputs = tasks.threshold_values(job, values[present])
    if np.issubdtype(inputs.dtype, np.integer):  # one bin per integer value, low..high
        out = np.zeros(int(high) - int(low) + 1, np.int64)
        out[inputs.astype(np.int64) - int(low)] = total[present]
        return out
    return np.histogram(inputs, histogram.BINS, (low, high), weights=total[present])[0]


def _keep(job: TileJob, parts: list[dict], array: str) -> tuple[int, tuple, Relabelled]:
    """Join the chunks' components (scratch ``array``), drop those below the size filter,
    number the rest 1..n: how many, their boxes (start, stop), indexed by id, and the objects
    as :class:`Relabelled` labels."""
    comps = Components.join(job.grid, _counts(parts), _faces(parts, job.grid.ndim), job.structure)
    sizes = comps.total(np.concatenate([p["count"] for p in parts]))
    keep = sizes >= max(job.min_size, 1) if job.min_size > 1 else sizes > 0
    keep[0] = False
    new_id = np.where(keep, np.cumsum(keep), 0)
    starts = comps.minimum(np.concatenate([p["start"] for p in parts]).reshape(-1, job.grid.ndim))
    stops = comps.maximum(np.concatenate([p["stop"] for p in parts]).reshape(-1, job.grid.ndim))
    order = np.flatnonzero(keep)
    boxes = (np.concatenate([np.zeros((1, job.grid.ndim), np.int64), starts[order]]),
             np.concatenate([np.zeros((1, job.grid.ndim), np.int64), stops[order]]))  # fmt: skip
    luts = tuple(new_id[comps.of_chunk(k)].astype(np.int32) for k in range(len(parts)))
    return int(keep.sum()), boxes, Relabelled(array, luts)


def _cut(job: TileJob, passes: _Passes, objects: Relabelled, n_objects: int,
         stats: list[dict]) -> tuple:  # fmt: skip
    """Each object cut at its own threshold (from its sums ``stats``, by global id), the cut
    objects joined and size-filtered again (as :func:`_keep`)."""
    cut = _cuts(job, stats, n_objects)
    parts = passes.run("refine_apply", tasks.refine_apply_chunk, shared=(objects, cut))
    return _keep(job, parts, "refined")


def _numbered(pieces: list[dict]) -> tuple[int, Relabelled]:
    """A first split's pieces (the chunks' tables of keys, :func:`tasks.pieces_stats_chunk`)
    numbered 1..n over the image: how many, and the labels (:class:`Relabelled`)."""
    keys = np.unique(np.concatenate([p["table"] for p in pieces]))  # 0 first
    luts = tuple(np.searchsorted(keys, p["table"]).astype(np.int32) for p in pieces)
    return len(keys) - 1, Relabelled("pieces", luts)


def _cuts(job: TileJob, stats: list[dict], n_objects: int) -> np.ndarray:
    """Each object's cut (refine.refine_objects), from its chunks' sums; index 0: never."""

    def total(name: str, dtype) -> np.ndarray:
        out = np.zeros(n_objects + 1, dtype)
        for s in stats:
            np.add.at(out, s["ids"], s[name])
        return out

    bg_count = sum(int(s["bg_count"]) for s in stats)
    fallback = sum(float(s["bg_sum"]) for s in stats) / bg_count if bg_count else 0.0
    counts = np.maximum(total("count", np.int64), 1)
    mean = total("sum", np.float64) / counts
    spread = np.sqrt(np.maximum(total("sum2", np.float64) / counts - mean**2, 0))
    peak = mean + 1.28 * spread
    undefined = total("undefined", np.int64)
    level = (total("level", np.float64) + undefined * float(np.float32(fallback))) / counts
    cut = level + job.pipeline.refine.fraction * (peak - level)
    cut[0] = np.inf
    return cut


def _seeds(job: TileJob, passes: _Passes, objects: Relabelled, n_objects: int,
           boxes: tuple, step: str = "seeds", height: str = "height") -> tuple:  # fmt: skip
    """The seeds joined across chunks, each given to the object of its first pixel: which
    objects have two or more, their boxes, the key base, the seeds (:class:`SeedPixels`), the
    scratch array of the landscape (``height``)."""
    found = passes.run(step, tasks.seeds_chunk, shared=(objects, boxes, height))
    seeds = Components.join(job.grid, _counts(found), _faces(found, job.grid.ndim),
                            np.ones((3,) * job.grid.ndim, bool))  # fmt: skip
    first = np.concatenate([f["first"] for f in found])
    owner = np.concatenate([f["owner"] for f in found])
    seed = seeds.component[1:]
    order = np.lexsort((first, seed))
    leading = order[np.unique(seed[order], return_index=True)[1]]
    per_object = np.bincount(owner[leading], minlength=n_objects + 1)
    at = np.concatenate([f["seed_at"] for f in found], axis=1)
    ids = np.concatenate([seeds.of_chunk(k)[f["seed_label"]] for k, f in enumerate(found)])
    pixels = SeedPixels(at, ids.astype(np.int32))
    return per_object >= 2, boxes, seeds.n_components + 1, pixels, height


def _objects(job: TileJob, passes: _Passes, measured: list[dict]) -> tuple[dict, dict, Relabelled]:
    """The objects' columns: keys merged over chunks, numbered by first pixel, measured; the
    shape features from each object's whole box (the ``shape`` pass); the final labels."""
    names = [f for f in LabelMoments.__dataclass_fields__]
    parts = [LabelMoments(**{f: m[f] for f in names}) for m in measured if len(m["label"])]
    ndim, shape = job.grid.ndim, job.grid.shape
    microns = job.sampling.microns(ndim)
    if not parts:
        empty = np.zeros((0, ndim, 2), np.int64)
        parts = [LabelMoments(np.zeros(0, np.int64), np.zeros(0, np.int64), *(np.zeros(0),) * 4,
                              np.zeros((0, ndim)), np.zeros((0, ndim, ndim)), np.zeros((0, ndim)),
                              empty[:, :, 0], empty[:, :, 1])]  # fmt: skip
    total = merge(parts) if len(parts) > 1 else parts[0]
    keys = np.concatenate([m["label"] for m in measured])
    firsts = np.concatenate([m["first"] for m in measured])
    first = np.full(len(total.label), np.iinfo(np.int64).max)
    np.minimum.at(first, np.searchsorted(total.label, keys), firsts)
    keep = np.ones(len(total.label), bool)
    if job.pipeline.clean.exclude_border:
        keep = ~np.any((total.bbox_start == 0) | (total.bbox_stop == np.asarray(shape)), axis=1)
    order = np.flatnonzero(keep)[np.argsort(first[keep], kind="stable")]
    ordered = LabelMoments(**{f: getattr(total, f)[order] for f in names})
    ordered.label = np.arange(1, len(order) + 1, dtype=np.int64)
    out = from_moments(ordered, shape, microns)
    numbered = total.label[order]  # the key of label 1, 2, ...
    final = Relabelled("keys", tuple(tasks.number_keys(numbered, m["table"]) for m in measured))
    features = job.pipeline.measure.shape_features
    if features and len(order):
        owned = (final, first[order], ordered.bbox_start, ordered.bbox_stop)
        out.update(
            _shape_features(passes.run("shape", tasks.shape_chunk, shared=owned), len(order))
        )
        if microns is not None and "perimeter" in out:
            out["perimeter_um"] = out["perimeter"] * float(microns[0])
    elif features:
        out.update({c: np.zeros(0) for c in shape_feature_columns(ndim)})
        if microns is not None and ndim == 2:
            out["perimeter_um"] = np.zeros(0)
    objects = {c: out[c] for c in column_names(ndim, features, microns is not None)}
    hist = [(m["bg_low"], m["bg_counts"]) for m in measured if "bg_counts" in m]
    summary = {
        "area_total": int(ordered.count.sum()),
        "area_mean": float(ordered.count.mean()) if len(order) else None,
        "background": _median(hist),
    }
    return objects, summary, final


def _shape_features(found: list[dict], n: int) -> dict:
    """The shape columns of objects 1..n from the chunks that own them (first pixel)."""
    names = sorted({c for f in found for c in f} - {"ids", "slurm_job_id", "container"})
    out = {c: np.zeros(n) for c in names}
    for f in found:
        for c in names:
            if len(f["ids"]):
                out[c][f["ids"] - 1] = f[c]
    if "euler_number" in out:
        out["euler_number"] = out["euler_number"].astype(np.int64)
    return out


def _median(counts: list[tuple[np.ndarray, np.ndarray]]) -> float | None:
    """The median of the background pixels from the chunks' value counts (np.median's
    value)."""
    if not counts:
        return None
    first, total = _added(counts)
    n = int(total.sum())
    if n == 0:
        return None
    cumulative = np.cumsum(total)
    low = int(np.searchsorted(cumulative, (n - 1) // 2, side="right"))
    high = int(np.searchsorted(cumulative, n // 2, side="right"))
    return first + (low + high) / 2.0


def _added(counts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[int, np.ndarray]:
    """Value counts (:func:`tasks.value_counts`: lowest value, counts from it) added up."""
    first = min(int(low) for low, _ in counts)
    last = max(int(low) + len(c) - 1 for low, c in counts)
    total = np.zeros(last - first + 1, np.int64)
    for low, c in counts:
        start = int(low) - first
        total[start : start + len(c)] += c
    return first, total
