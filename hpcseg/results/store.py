"""The Parquet result store, driver side: prepare a folder, resume bookkeeping, read, run.json.

Layout::

    <out>/objects/part-<key>.parquet   one row per object
    <out>/images/part-<key>.parquet    one row per image (written last: it commits the batch)
    <out>/run.json                     resolved config, versions, host, times, summary

A batch writes its objects part and then its images part, each atomically; an images part
therefore proves that the batch is complete. On start, objects parts without their images part
(a batch killed between the two renames) and ``*.tmp`` leftovers are removed, so a killed run
resumes to the same rows as an uninterrupted one. Workers write the parts
(:mod:`hpcseg.results.parts`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hpcseg.errors import UserError
from hpcseg.results.atomic import atomic_path, remove_stale_temporaries


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
