"""The Parquet result store: atomic parts, resume bookkeeping, provenance.

Layout::

    <out>/objects/part-<key>.parquet   one row per object
    <out>/images/part-<key>.parquet    one row per image (written last: it commits the batch)
    <out>/run.json                     resolved config, versions, host, times, summary

A batch writes its objects part and then its images part, each atomically; an images part
therefore proves that the batch is complete. On start, objects parts without their images part
(a batch killed between the two renames) and ``*.tmp`` leftovers are removed, so a killed run
resumes to the same rows as an uninterrupted one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hpcseg.atomic import atomic_path, remove_stale_temporaries
from hpcseg.errors import UserError
from hpcseg.pipeline.measure import column_names

STAGE_COLUMNS = (
    "read", "smooth", "threshold", "clean", "split", "refine", "label", "measure", "score",
)  # fmt: skip
# ground-truth scores (hpcseg.evaluate), null for images without a mask
SCORE_COUNT_COLUMNS = ("n_true", "n_pred", *(f"tp_{round(50 + 5 * i)}" for i in range(9)),
                       "merges", "splits")  # fmt: skip
SCORE_VALUE_COLUMNS = ("f1_50", "f1_70", "f1_90", "f1_avg", "mean_iou")


def _object_type(name: str) -> pa.DataType:
    if name == "label":
        return pa.int32()
    if name in ("area", "euler_number") or name.startswith("bbox-"):
        return pa.int64()
    if name == "touches_border":
        return pa.bool_()
    return pa.float64()


def objects_schema(
    metadata_columns: list[str] | tuple[str, ...],
    ndim: int = 2,
    shape_features: bool = False,
    physical: bool = False,
) -> pa.Schema:
    names = column_names(ndim, shape_features, physical)
    fields = [pa.field("image_id", pa.string())]
    fields += [pa.field(c, pa.string()) for c in metadata_columns]
    fields += [pa.field(c, _object_type(c)) for c in names]
    return pa.schema(fields)


def images_schema(metadata_columns: list[str] | tuple[str, ...]) -> pa.Schema:
    fields = [pa.field("image_id", pa.string())]
    fields += [pa.field(c, pa.string()) for c in metadata_columns]
    fields += [
        pa.field("path", pa.string()),
        pa.field("mask_path", pa.string()),
        pa.field("status", pa.string()),
        pa.field("error", pa.string()),
        pa.field("n_objects", pa.int64()),
        pa.field("shape", pa.list_(pa.int64())),
        pa.field("dtype", pa.string()),
        pa.field("threshold", pa.float64()),
        pa.field("area_total", pa.int64()),
        pa.field("area_mean", pa.float64()),
        pa.field("background", pa.float64()),
    ]
    fields += [pa.field(name, pa.int64()) for name in SCORE_COUNT_COLUMNS]
    fields += [pa.field(name, pa.float64()) for name in SCORE_VALUE_COLUMNS]
    fields += [pa.field(f"seconds_{s}", pa.float64()) for s in STAGE_COLUMNS]
    fields += [
        pa.field("seconds_total", pa.float64()),
        pa.field("fingerprint", pa.string()),
        pa.field("hostname", pa.string()),
        pa.field("slurm_job_id", pa.string()),
        pa.field("container", pa.string()),
    ]
    return pa.schema(fields)


class Store:
    """One output folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().absolute()
        self.objects_dir = self.root / "objects"
        self.images_dir = self.root / "images"
        self.run_json = self.root / "run.json"

    # ------------------------------------------------------------------ driver side
    def prepare(self, fingerprint: str, resume: bool, overwrite: bool) -> set[str]:
        """Create the folders, clean leftovers; return the ids already done by this pipeline.

        Refuses (UserError) a folder that holds results of another pipeline fingerprint, so a
        dataset never mixes rows of two configurations.
        """
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"output.dir={self.root} exists and is not a folder")
        if overwrite:
            for sub in (self.objects_dir, self.images_dir, self.root / "labels"):
                shutil.rmtree(sub, ignore_errors=True)
            self.run_json.unlink(missing_ok=True)
        try:
            self.objects_dir.mkdir(parents=True, exist_ok=True)
            self.images_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create output.dir={self.root} ({exc.strerror})") from None
        for folder in (self.objects_dir, self.images_dir, self.root / "labels"):
            remove_stale_temporaries(folder)
        committed = {p.stem for p in self.images_dir.glob("part-*.parquet")}
        for part in self.objects_dir.glob("part-*.parquet"):
            if part.stem not in committed:  # its batch died before committing: redo it
                part.unlink(missing_ok=True)
        table = self.read_images(columns=["image_id", "fingerprint"])
        if table is None or table.num_rows == 0:
            return set()
        found = set(table.column("fingerprint").to_pylist())
        if found != {fingerprint}:
            raise UserError(
                f"output.dir={self.root} holds results of another pipeline configuration "
                f"(fingerprint {', '.join(sorted(found))}, now {fingerprint}); use a new "
                "output.dir, or output.overwrite=true to replace them"
            )
        if not resume:
            raise UserError(
                f"output.dir={self.root} already holds results and output.resume=false; "
                "use output.overwrite=true to replace them or a new output.dir"
            )
        return set(table.column("image_id").to_pylist())

    def read_images(self, columns: list[str] | None = None) -> pa.Table | None:
        return _read_parts(self.images_dir, columns)

    def read_objects(self, columns: list[str] | None = None) -> pa.Table | None:
        return _read_parts(self.objects_dir, columns)

    def write_run_json(self, record: dict) -> None:
        with atomic_path(self.run_json) as tmp:
            tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")


def _read_parts(folder: Path, columns: list[str] | None) -> pa.Table | None:
    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        return None
    return pa.concat_tables(
        [pq.read_table(p, columns=columns) for p in parts], promote_options="default"
    )


# ---------------------------------------------------------------------- worker side
def write_labels(root: str | Path, image_id: str, labels) -> Path:
    """``<root>/labels/<image_id>.tif``: uint16 when the labels fit, else uint32; atomic."""
    import numpy as np
    import tifffile

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
