"""What a Dask worker runs: read, segment and measure a batch of images, write its parts.

Imports neither Hydra nor matplotlib: the task carries plain dataclasses.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
from dataclasses import dataclass, field

from distributed import get_worker

from hpcseg.config.schemas import PipelineConfig
from hpcseg.data.identity import file_identity
from hpcseg.data.reader import read_image, read_mask
from hpcseg.data.records import ImageRecord
from hpcseg.errors import ImageError
from hpcseg.pipeline.devices import select
from hpcseg.pipeline.sampling import Sampling
from hpcseg.pipeline.segment import segment_on
from hpcseg.results.evaluate import score
from hpcseg.results.parts import label_path, write_batch, write_labels
from hpcseg.results.tables import (
    ImageRow,
    images_schema,
    images_table,
    objects_schema,
    objects_table,
)
from hpcseg.run.watchdog import Watchdog, timeout_folder


@dataclass(frozen=True)
class BatchJob:
    """Everything a worker needs besides the records (small, sent with every task)."""

    pipeline: PipelineConfig
    max_pixels: int
    out_dir: str
    fingerprint: str
    metadata_columns: tuple[str, ...]
    file_metadata: dict[bytes, bytes]
    compression: str = "zstd"
    save_labels: bool = False
    ndim: int = 2
    sampling: Sampling = field(default_factory=Sampling)
    channel: str | None = None  # dataset.channel: which channel of a multi-channel image
    identity: str = "stat"  # output.identity: how inputs are recognised on resume
    image_timeout: float | None = None  # runner.image_timeout
    progress_topic: str | None = None  # where per-image progress events go (driver listens)

    def objects_schema(self):
        """The objects table's schema for this job's columns."""
        return objects_schema(
            self.metadata_columns,
            self.ndim,
            self.pipeline.measure.shape_features,
            self.sampling.pixel_size is not None,
        )

    def image_row(self, record: ImageRecord, **values) -> ImageRow:
        """The images-table row of ``record``, its file-name metadata and ``values`` filled in."""
        row = ImageRow(
            self.metadata_columns,
            image_id=record.image_id,
            path=record.path,
            mask_path=record.mask_path,
            fingerprint=self.fingerprint,
            error=None,
            **dict(record.metadata),
        )
        row.update(values)
        return row


@dataclass
class BatchSummary:
    """What comes back to the driver: counts, not pixels."""

    key: str
    n_ok: int = 0
    n_failed: int = 0
    n_objects: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None  # the batch could not be committed (its images run again later)


def batch_key(records: list[ImageRecord]) -> str:
    """A stable name for a batch: the same images give the same part names on a retry."""
    return hashlib.sha1("\n".join(r.image_id for r in records).encode()).hexdigest()[:20]


def process_batch(records: list[ImageRecord], job: BatchJob) -> BatchSummary:
    """Segment every image of the batch; a failing image becomes a `failed` row."""
    summary = BatchSummary(key=batch_key(records))
    schema = job.objects_schema()
    object_cols: dict[str, list] = {f.name: [] for f in schema}
    image_rows: list[ImageRow] = []
    where = {
        "hostname": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "container": os.environ.get("APPTAINER_CONTAINER"),
    }
    events = _progress_events(job.progress_topic)
    with Watchdog(job.image_timeout, timeout_folder(job.out_dir)) as watchdog:
        for record in records:
            watchdog.begin(record.image_id)
            try:
                row, objects = _process_one(record, job)
            except OSError as exc:  # its label image could not be written (disk full, ...)
                _remove_labels(job, records)
                return BatchSummary(key=summary.key, error=f"{type(exc).__name__}: {exc}")
            watchdog.end()
            row.update(where)
            image_rows.append(row)
            if row["status"] == "ok":
                summary.n_ok += 1
                n = len(objects["label"])
                summary.n_objects += n
                object_cols["image_id"].extend([record.image_id] * n)
                for name, value in record.metadata:
                    object_cols[name].extend([value] * n)
                for name, values in objects.items():
                    object_cols[name].extend(values.tolist())
            else:
                summary.n_failed += 1
                summary.failures.append((record.image_id, row["error"]))
            events({"batch": summary.key, "ok": row["status"] == "ok", "objects": row["n_objects"]})
    try:
        write_batch(
            job.out_dir,
            summary.key,
            objects_table(object_cols, schema),
            images_table(image_rows, images_schema(job.metadata_columns)),
            job.file_metadata,
            job.compression,
        )
    except OSError as exc:  # disk full and the like: the batch is not committed, say why
        _remove_labels(job, records)
        return BatchSummary(key=summary.key, error=f"{type(exc).__name__}: {exc}")
    except BaseException:
        _remove_labels(job, records)
        raise
    return summary


def _remove_labels(job: BatchJob, records: list[ImageRecord]) -> None:
    """Nothing of an uncommitted batch stays behind: its label images go too."""
    if job.save_labels:
        for record in records:
            with contextlib.suppress(OSError):
                label_path(job.out_dir, record.image_id).unlink(missing_ok=True)


def _progress_events(topic: str | None):
    """A function that sends one image's progress to the driver (a no-op off a worker)."""
    if topic is None:
        return lambda message: None
    try:
        worker = get_worker()
    except ValueError:  # not running on a Dask worker
        return lambda message: None
    return lambda message: worker.log_event(topic, message)


def _process_one(record: ImageRecord, job: BatchJob) -> tuple[ImageRow, dict]:
    row = job.image_row(
        record, status="ok", mode="images", **file_identity(record.path, job.identity)
    )
    t0 = time.perf_counter()
    try:
        read = read_image(
            record.path,
            job.max_pixels,
            job.pipeline.require_integer_input,
            job.ndim,
            job.channel,
        )
        image = read.pixels
        row.update(
            shape=list(image.shape),
            dtype=str(image.dtype),
            file_pixel_size=read.pixel_size,
            seconds_read=time.perf_counter() - t0,
        )
        backend = select(str(job.pipeline.backend))
        row["backend"] = backend.name
        result, row["seconds_transfer"] = segment_on(backend, image, job.pipeline, job.sampling)
    except ImageError as exc:
        row.update(status="failed", error=str(exc), n_objects=0)
        return row, {}
    except Exception as exc:  # a bug or resource problem must not take the batch down
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}", n_objects=0)
        return row, {}
    if job.save_labels:
        write_labels(job.out_dir, record.image_id, result.labels)
    row["n_objects"] = len(result.objects["label"])
    row["threshold"] = result.threshold
    row["diameter"] = result.diameter
    row["contrast_to_noise"] = result.contrast
    row.update(result.summary)
    row.update({f"seconds_{stage}": t for stage, t in result.seconds.items()})
    if record.mask_path:
        t_score = time.perf_counter()
        try:
            row.update(score(read_mask(record.mask_path, image.shape), result.labels))
        except ImageError as exc:  # the segmentation stands; only its score is missing
            row["error"] = f"not scored: {exc}"
        row["seconds_score"] = time.perf_counter() - t_score
    row["seconds_total"] = time.perf_counter() - t0
    return row, result.objects
