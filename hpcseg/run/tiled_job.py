"""The tiled mode in a job: which images to tile, and one tiled image from its file to its
committed part (objects, then the images row), as :mod:`hpcseg.run.worker` does for a batch of
whole images. The passes themselves are :func:`hpcseg.run.tiled.segment_tiled`."""

from __future__ import annotations

import logging
import math
import os
import shutil
import socket
import time

import numpy as np

from hpcseg.config.schemas import Config, PipelineConfig, TiledModeConfig
from hpcseg.data.identity import file_identity
from hpcseg.data.large import open_large
from hpcseg.data.reader import read_mask
from hpcseg.data.records import ImageRecord
from hpcseg.errors import ImageError
from hpcseg.pipeline import diameter
from hpcseg.pipeline.grid import ChunkGrid
from hpcseg.pipeline.sampling import Sampling
from hpcseg.pipeline.segment import measured_scale, min_object_size, with_refinement
from hpcseg.results.evaluate import score
from hpcseg.results.parts import (
    TILED_LABELS_ARRAY,
    create_tiled_labels,
    tiled_label_path,
    write_batch,
)
from hpcseg.results.scratch import tiled_root
from hpcseg.results.tables import images_schema, images_table, objects_table
from hpcseg.run.signals import Stop
from hpcseg.run.tile_tasks import TileJob
from hpcseg.run.tiled import (
    PASSES_FORMAT,
    Mapper,
    TiledSegmentation,
    TiledStopped,
    segment_tiled,
)
from hpcseg.run.worker import BatchJob, BatchSummary, batch_key

log = logging.getLogger("hpcseg")


def chunk_shape(ndim: int, chunk_size: int, chunk_planes: int, shape: tuple[int, ...]) -> tuple:
    """The chunk per axis for ``mode.chunk_size`` / ``mode.chunk_planes``, at most the image."""
    want = (chunk_planes, chunk_size, chunk_size)[-ndim:]
    return tuple(min(w, s) for w, s in zip(want, shape, strict=True))


SAMPLE_SIDE, SAMPLE_PLANES = 1024, 32  # the most of a sampled chunk read to measure a diameter


def sample_regions(grid: ChunkGrid) -> list[tuple[slice, ...]]:
    """Where ``diameter=auto`` is measured on a tiled image: the middle of the centre chunk and
    of the chunks at a quarter and three quarters of each in-plane axis (up to 5 places, each
    at most SAMPLE_SIDE pixels a side and SAMPLE_PLANES planes), so an empty middle of a slide
    does not decide alone and the driver never reads more than a few frames' worth."""
    counts = grid.counts
    picks = [tuple(n // 2 for n in counts)]
    for axis in range(grid.ndim - 2, grid.ndim):
        for at in (counts[axis] // 4, (3 * counts[axis]) // 4):
            picks.append(tuple(at if a == axis else n // 2 for a, n in enumerate(counts)))
    limits = (SAMPLE_PLANES, SAMPLE_SIDE, SAMPLE_SIDE)[-grid.ndim :]
    regions = []
    for index in dict.fromkeys(picks):  # unique, in order
        crop = []
        for s, limit in zip(grid.core(index), limits, strict=True):
            start = s.start + max(s.stop - s.start - limit, 0) // 2
            crop.append(slice(start, min(start + limit, s.stop)))
        regions.append(tuple(crop))
    return regions


def pipeline_for(
    cfg: PipelineConfig, sampling: Sampling, image, grid: ChunkGrid
) -> tuple[PipelineConfig, float | None, float | None]:
    """The pipeline with every length fixed for this image (and ``refine.method=auto`` made
    concrete), the diameter they came from (None: the config fixes them all, or nothing was
    found to measure) and the contrast to noise a derived smoothing was measured against
    (None: not measured). ``diameter=auto`` and the contrast are measured once per image, as
    the many-images mode measures a whole frame, on the :func:`sample_regions` (a worker never
    holds the whole image): the lower median of what the samples with nuclei measure (a
    diameter estimate found, also when the diameter is given: empty glass, thresholded, reads
    as a low contrast, and must not smooth the slide)."""
    cfg = with_refinement(cfg)
    if not diameter.needs(cfg):
        return diameter.resolve(cfg, diameter.REFERENCE, grid.ndim), None, None
    given = diameter.parse(cfg.diameter, sampling.pixel_size)
    found = []
    if given is None or diameter.measures_noise(cfg, grid.ndim):
        found = [measured_scale(image.read(r), cfg, sampling) for r in sample_regions(grid)]
    found = [(d, c) for d, c in found if d is not None]  # samples with nuclei
    if given is None:
        given = _lower_median(sorted(d for d, _ in found))  # one of the grid's values
    contrast = _lower_median(sorted(c for _, c in found if c is not None))
    return diameter.resolve(cfg, given or diameter.REFERENCE, grid.ndim, contrast), given, contrast


def _lower_median(values: list[float]) -> float | None:
    """The lower median of sorted ``values`` (one of them); None if there are none."""
    return values[(len(values) - 1) // 2] if values else None


def _score(record: ImageRecord, job: TileJob, result: TiledSegmentation, max_pixels: int) -> dict:
    """Scores against the ground-truth mask (read whole: masks come with test sets)."""
    if math.prod(job.grid.shape) > max_pixels:
        return {"error": f"not scored: the mask has more than dataset.max_pixels={max_pixels}"}
    t0 = time.perf_counter()
    whole = tuple(slice(0, s) for s in job.grid.shape)
    try:
        truth = read_mask(record.mask_path, job.grid.shape)
    except ImageError as exc:
        return {"error": f"not scored: {exc}"}
    scores = score(truth, result.labels(job, whole))
    return {**scores, "seconds_score": time.perf_counter() - t0}


def split_by_mode(cfg: Config, records: list[ImageRecord]) -> tuple[list, list]:
    """The records to run whole (many-images mode) and those to tile: ``mode=auto`` tiles
    the images above ``mode.tile_above`` pixels (read from their headers) and every Zarr
    store; an image whose header cannot be read runs whole, where it fails with its reason."""
    name = cfg.mode.name
    if name == "images":
        return list(records), []
    if name == "tiled" or cfg.dataset.name == "zarr":  # a Zarr store is always read by chunks
        return [], list(records)
    whole, tiled = [], []
    array = getattr(cfg.dataset, "array", None)
    for record in records:
        try:
            shape = open_large(record.path, cfg.dataset.ndim, cfg.dataset.channel, array).shape
        except ImageError:
            whole.append(record)
            continue
        (tiled if math.prod(shape) > cfg.mode.tile_above else whole).append(record)
    return whole, tiled


def process_tiled(
    mapper: Mapper,
    record: ImageRecord,
    job: BatchJob,
    mode: TiledModeConfig,
    array: str | None = None,
    stop: Stop | None = None,
) -> BatchSummary | None:
    """Segment one image tiled and commit its part (objects, then the images row), as
    :func:`hpcseg.run.worker.process_batch` does for a batch; its scratch folder is kept until
    the part is committed, so a rerun after a kill resumes at the chunks not done. None: a
    signal stopped it (nothing committed, the chunks done are kept)."""
    summary = BatchSummary(key=batch_key([record]))
    schema = job.objects_schema()
    row = job.image_row(
        record,
        status="ok",
        mode="tiled",
        backend="numpy",
        **file_identity(record.path, job.identity),
    )
    row.update(hostname=socket.gethostname(), slurm_job_id=os.environ.get("SLURM_JOB_ID"))
    t0 = time.perf_counter()
    scratch = None
    columns: dict[str, list] = {f.name: [] for f in schema}
    try:
        image = open_large(record.path, job.ndim, job.channel, array)
        if math.prod(image.shape) > mode.max_pixels:
            raise ImageError(f"{record.path}: {math.prod(image.shape)} pixels is more than "
                             f"mode.max_pixels={mode.max_pixels}")  # fmt: skip
        grid = ChunkGrid(image.shape, chunk_shape(len(image.shape), mode.chunk_size,
                                                   mode.chunk_planes, image.shape))  # fmt: skip
        row.update(shape=list(image.shape), dtype=str(image.dtype),
                   file_pixel_size=image.pixel_size, n_chunks=len(grid),
                   chunk_grid=list(grid.counts))  # fmt: skip
        folder = tiled_root(job.out_dir) / f"{record.image_id}-{job.fingerprint[:12]}"
        keep = bool(job.save_labels or record.mask_path or job.pipeline.measure.shape_features)
        pipeline, row["diameter"], row["contrast_to_noise"] = pipeline_for(
            job.pipeline, job.sampling, image, grid
        )
        tile_job = TileJob(image, pipeline, job.sampling, grid, str(folder),
                           min_object_size(pipeline, grid.ndim, job.sampling),
                           keep_labels=keep)  # fmt: skip
        scratch = tile_job.scratch
        for stale in folder.parent.glob(f"{record.image_id}-*"):  # left by other settings
            if stale != folder:
                shutil.rmtree(stale, ignore_errors=True)
        # the concrete pipeline (its chain and lengths) and the passes' layout decide what the
        # committed chunks hold: a folder left by other ones (another version) starts afresh
        meta = {"fingerprint": job.fingerprint, "chunk": list(grid.chunk),
                "passes": PASSES_FORMAT, "pipeline": repr(pipeline),
                "input": {k: v for k, v in row.items() if k.startswith("input_")}}  # fmt: skip
        if scratch.prepare(meta):
            log.info(
                "%s: resuming the chunks an earlier run finished in %s", record.image_id, folder
            )

        def progress(step: str, done: int) -> None:
            log.info(
                "%s: %s done (%d of %d chunks run now)", record.image_id, step, done, len(grid)
            )

        def labels_to(fresh: bool) -> str:
            if not fresh:
                return str(tiled_label_path(job.out_dir, record.image_id) / TILED_LABELS_ARRAY)
            return create_tiled_labels(job.out_dir, record.image_id, grid.shape, grid.chunk,
                                       job.sampling.pixel_size, record.path)  # fmt: skip

        result = segment_tiled(tile_job, mapper, progress,
                               labels_to if job.save_labels else None, stop)  # fmt: skip
    except TiledStopped:
        log.info("%s: stopped; its finished chunks are kept for the next run", record.image_id)
        return None
    except ImageError as exc:
        row.update(status="failed", error=str(exc), n_objects=0)
        result = None
    if result is not None:
        n = len(result.objects["label"])
        row.update(n_objects=n, threshold=result.threshold, **result.summary)
        if result.slurm_job_ids:  # the worker jobs that ran its chunks
            row["slurm_job_id"] = ",".join(result.slurm_job_ids)
        if result.containers:
            row["container"] = ",".join(result.containers)
        columns["image_id"] = [record.image_id] * n
        for name, value in record.metadata:
            columns[name] = [value] * n
        for name, values in result.objects.items():
            columns[name] = np.asarray(values).tolist()
        summary.n_ok, summary.n_objects = 1, n
        if record.mask_path:
            row.update(_score(record, tile_job, result, job.max_pixels))
    else:
        summary.n_failed = 1
        summary.failures.append((record.image_id, row["error"]))
    row["seconds_total"] = time.perf_counter() - t0
    write_batch(job.out_dir, summary.key, objects_table(columns, schema),
                images_table([row], images_schema(job.metadata_columns)), job.file_metadata,
                job.compression)  # fmt: skip
    if scratch is not None and result is not None:
        scratch.remove()
    return summary
