"""The Parquet result store, worker side: one batch's parts and label images, atomically.

A batch writes its objects part, its label images, then its images part, each atomically
(:mod:`hpcseg.results.atomic`). The images part commits the batch: its key-value metadata
``hpcseg.commit`` records what proves the rest whole (the objects part's row count and size,
its own row count), which :meth:`hpcseg.results.store.Store.prepare` checks on every start.
"""

from __future__ import annotations

import contextlib
import json
import shutil
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


TILED_LABELS_ARRAY = "labels/nuclei/0"  # inside <image>.ome.zarr


def tiled_label_path(root: str | Path, image_id: str) -> Path:
    """A tiled image's labels: ``<root>/labels/<image_id>.ome.zarr`` (the array is
    ``labels/nuclei/0`` inside it, as OME-Zarr 0.4 stores an image's labels)."""
    return Path(root) / "labels" / f"{image_id}.ome.zarr"


def create_tiled_labels(
    root: str | Path,
    image_id: str,
    shape: tuple[int, ...],
    chunk: tuple[int, ...],
    pixel_size: float | None,
    source: str,
) -> str:
    """An empty chunked label array in the OME-Zarr 0.4 labels layout (Zarr v2, int32),
    replacing an earlier one; returns the array's path (chunks write into it)."""
    import zarr  # only the tiled mode writes Zarr

    target = tiled_label_path(root, image_id)
    shutil.rmtree(target, ignore_errors=True)
    names = "zyx"[-len(shape) :]
    scale = [1.0] * len(shape) if pixel_size is None else [pixel_size] * len(shape)
    axes = [{"name": n, "type": "space", **({"unit": "micrometer"} if pixel_size else {})}
            for n in names]  # fmt: skip
    group = zarr.open_group(str(target), mode="w", zarr_format=2)
    group.attrs["labels"] = ["nuclei"]  # the root holds no image: the labels group only
    labels = group.create_group("labels")
    labels.attrs["labels"] = ["nuclei"]
    nuclei = labels.create_group("nuclei")
    level = {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}
    nuclei.attrs["multiscales"] = [
        {"version": "0.4", "name": "nuclei", "axes": axes, "datasets": [level]}
    ]
    nuclei.attrs["image-label"] = {"version": "0.4", "source": {"image": source}}
    nuclei.create_array("0", shape=shape, chunks=chunk, dtype="int32", fill_value=0)
    return str(target / TILED_LABELS_ARRAY)


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
