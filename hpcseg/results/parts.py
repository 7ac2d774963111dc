"""The Parquet result store, worker side: one batch's parts and label images, atomically.

A batch writes its objects part, its label images, then its images part, each atomically
(:mod:`hpcseg.results.atomic`). The images part commits the batch: its key-value metadata
``hpcseg.commit`` records what proves the rest whole (the objects part's row count and size,
its own row count), which :meth:`hpcseg.results.store.Store.prepare` checks on every start.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tifffile

from hpcseg.results.atomic import atomic_path

COMMIT_KEY = b"hpcseg.commit"


def part_name(key: str) -> str:
    return f"part-{key}.parquet"


def label_path(root: str | Path, image_id: str) -> Path:
    return Path(root) / "labels" / f"{image_id}.tif"


def write_labels(root: str | Path, image_id: str, labels) -> Path:
    """``<root>/labels/<image_id>.tif``: uint16 when the labels fit, else uint32; atomic."""
    target = label_path(root, image_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    dtype = np.uint16 if labels.max(initial=0) < 2**16 else np.uint32
    with atomic_path(target) as tmp:
        tifffile.imwrite(tmp, labels.astype(dtype), compression="zlib")
    return target


def _write_table(table: pa.Table, path: Path, metadata: dict, compression: str) -> None:
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression=compression)


def write_batch(
    root: str | Path,
    key: str,
    objects: pa.Table,
    images: pa.Table,
    file_metadata: dict[bytes, bytes],
    compression: str = "zstd",
) -> None:
    """Write one batch: the objects part, then the images part that commits it.

    On any error (disk full, ...) what this batch wrote is removed again, so nothing stays
    without its commit; the error is raised.
    """
    root = Path(root)
    objects_path = root / "objects" / part_name(key)
    try:
        _write_table(objects, objects_path, file_metadata, compression)
        commit = {
            "objects_rows": objects.num_rows,
            "objects_bytes": objects_path.stat().st_size,
            "images_rows": images.num_rows,
        }
        metadata = {**file_metadata, COMMIT_KEY: json.dumps(commit).encode()}
        _write_table(images, root / "images" / part_name(key), metadata, compression)
    except BaseException:
        with contextlib.suppress(OSError):
            objects_path.unlink(missing_ok=True)
        raise


def read_commit(schema: pa.Schema) -> dict | None:
    """The commit record of an images part (None: not an hpcseg commit)."""
    raw = (schema.metadata or {}).get(COMMIT_KEY)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
