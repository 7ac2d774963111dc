"""The Parquet result store, worker side: one batch's parts and label images, atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tifffile

from hpcseg.results.atomic import atomic_path


def write_labels(root: str | Path, image_id: str, labels) -> Path:
    """``<root>/labels/<image_id>.tif``: uint16 when the labels fit, else uint32; atomic."""
    folder = Path(root) / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    dtype = np.uint16 if labels.max(initial=0) < 2**16 else np.uint32
    target = folder / f"{image_id}.tif"
    with atomic_path(target) as tmp:
        tifffile.imwrite(tmp, labels.astype(dtype), compression="zlib")
    return target


def write_batch(
    root: str | Path,
    key: str,
    objects: pa.Table,
    images: pa.Table,
    file_metadata: dict[bytes, bytes],
    compression: str = "zstd",
) -> None:
    """Write one batch: the objects part, then the images part that commits it."""
    root = Path(root)
    for folder, table in ((root / "objects", objects), (root / "images", images)):
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **file_metadata})
        with atomic_path(folder / f"part-{key}.parquet") as tmp:
            pq.write_table(table, tmp, compression=compression)
