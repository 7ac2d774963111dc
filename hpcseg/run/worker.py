"""What a Dask worker runs: read, segment and measure a batch of images, write its parts.

Imports neither Hydra nor matplotlib: the task carries plain dataclasses.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from dataclasses import dataclass, field

from hpcseg.config.schemas import PipelineConfig
from hpcseg.data.reader import read_image, read_mask
from hpcseg.data.records import ImageRecord
from hpcseg.errors import ImageError
from hpcseg.pipeline.sampling import Sampling
from hpcseg.pipeline.segment import segment
from hpcseg.results.evaluate import score
from hpcseg.results.parts import write_batch, write_labels
from hpcseg.results.tables import (
    ImageRow,
    images_schema,
    images_table,
    objects_schema,
    objects_table,
)


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


@dataclass
class BatchSummary:
    """What comes back to the driver: counts, not pixels."""

    key: str
    n_ok: int = 0
    n_failed: int = 0
    n_objects: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


def batch_key(records: list[ImageRecord]) -> str:
    """A stable name for a batch: the same images give the same part names on a retry."""
    return hashlib.sha1("\n".join(r.image_id for r in records).encode()).hexdigest()[:20]


def process_batch(records: list[ImageRecord], job: BatchJob) -> BatchSummary:
    """Segment every image of the batch; a failing image becomes a `failed` row."""
    summary = BatchSummary(key=batch_key(records))
    schema = objects_schema(
        job.metadata_columns,
        job.ndim,
        job.pipeline.measure.shape_features,
        job.sampling.pixel_size is not None,
    )
    object_cols: dict[str, list] = {f.name: [] for f in schema}
    image_rows: list[ImageRow] = []
    where = {
        "hostname": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "container": os.environ.get("APPTAINER_CONTAINER"),
    }
    for record in records:
        row, objects = _process_one(record, job)
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
    write_batch(
        job.out_dir,
        summary.key,
        objects_table(object_cols, schema),
        images_table(image_rows, images_schema(job.metadata_columns)),
        job.file_metadata,
        job.compression,
    )
    return summary


def _process_one(record: ImageRecord, job: BatchJob) -> tuple[ImageRow, dict]:
    row = ImageRow(
        job.metadata_columns,
        image_id=record.image_id,
        path=record.path,
        mask_path=record.mask_path,
        fingerprint=job.fingerprint,
        status="ok",
        error=None,
        **dict(record.metadata),
    )
    t0 = time.perf_counter()
    try:
        image = read_image(
            record.path, job.max_pixels, job.pipeline.require_integer_input, job.ndim
        )
        row.update(
            shape=list(image.shape), dtype=str(image.dtype), seconds_read=time.perf_counter() - t0
        )
        result = segment(image, job.pipeline, job.sampling)
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
