"""The Parquet result store, driver side: check a folder, resume bookkeeping, read, run records.

Layout::

    <out>/objects/part-<key>.parquet   one row per object
    <out>/images/part-<key>.parquet    one row per image (written last: it commits the batch)
    <out>/labels/<image_id>.tif        label images (output.save_labels)
    <out>/labels/<image_id>.ome.zarr   a tiled image's labels (OME-Zarr 0.4 labels layout)
    <out>/run.json                     the latest invocation: config, versions, host, summary
    <out>/runs/<start>-<pid>.json      every invocation, and what it did
    <out>/quarantine/<start>/          parts found damaged, moved aside
    <out>/.hpcseg.lock                 held by the one run writing the folder

A batch's images part commits it and records what proves the batch whole (the objects part's
row count and size; :mod:`hpcseg.results.parts`). On start, :meth:`Store.prepare` verifies every
committed batch cheaply (both footers readable, counts and size as recorded), moves damaged
parts to ``quarantine/`` (their images are redone), removes what has no commit (objects parts,
label images, ``*.tmp`` leftovers), so a killed run resumes to the same rows as an
uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hpcseg.errors import UserError
from hpcseg.results.atomic import atomic_path, remove_stale_temporaries
from hpcseg.results.parts import read_commit, write_batch

log = logging.getLogger(__name__)

# what resume needs of each stored image
DONE_COLUMNS = [
    "image_id", "status", "fingerprint", "path", "input_bytes", "input_mtime_ns", "input_sha256",
]  # fmt: skip


@dataclass
class StoredImage:
    """What the folder says about one image already processed."""

    status: str
    path: str | None
    input_bytes: int | None
    input_mtime_ns: int | None
    input_sha256: str | None
    part: str  # the images part holding its row


@dataclass
class Prepared:
    """The folder as found: the images stored for this fingerprint, and what was cleaned."""

    stored: dict[str, StoredImage] = field(default_factory=dict)
    quarantined: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


class Store:
    """One output folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().absolute()
        self.objects_dir = self.root / "objects"
        self.images_dir = self.root / "images"
        self.labels_dir = self.root / "labels"
        self.run_json = self.root / "run.json"
        self.runs_dir = self.root / "runs"

    # ------------------------------------------------------------------ preparing
    def prepare(self, fingerprint: str, resume: bool, overwrite: bool, dry_run: bool = False):
        """Create the folders, verify and clean; return a :class:`Prepared`.

        Refuses (UserError) a folder that holds results of another pipeline fingerprint, so a
        dataset never mixes rows (or columns) of two configurations. ``dry_run``: change
        nothing, only say what would be done.
        """
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"output.dir={self.root} exists and is not a folder")
        if overwrite and not dry_run:
            for sub in (self.objects_dir, self.images_dir, self.labels_dir, self.root / "tiled"):
                shutil.rmtree(sub, ignore_errors=True)
            self.run_json.unlink(missing_ok=True)
        if not dry_run:
            try:
                self.objects_dir.mkdir(parents=True, exist_ok=True)
                self.images_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(f"cannot create output.dir={self.root} ({exc.strerror})") from None
            for folder in (self.objects_dir, self.images_dir, self.labels_dir):
                remove_stale_temporaries(folder)
        prepared = Prepared()
        tables = self._verified_images_parts(prepared, dry_run)
        self._remove_uncommitted(tables, prepared, dry_run)
        rows = [r for t in tables.values() for r in t.select(DONE_COLUMNS).to_pylist()]
        found = {r["fingerprint"] for r in rows}
        if found and found != {fingerprint}:
            raise UserError(
                f"output.dir={self.root} holds results of another pipeline configuration "
                "(or pixel geometry, channel or metadata columns: what decides the rows and "
                f"columns; fingerprint {', '.join(sorted(found))}, now {fingerprint}); use a "
                "new output.dir, or output.overwrite=true to replace them"
            )
        if rows and not resume and not overwrite:
            raise UserError(
                f"output.dir={self.root} already holds results and output.resume=false; "
                "use output.overwrite=true to replace them or a new output.dir"
            )
        for name, table in tables.items():
            for r in table.select(DONE_COLUMNS).to_pylist():
                prepared.stored[r["image_id"]] = StoredImage(
                    status=r["status"],
                    path=r["path"],
                    input_bytes=r["input_bytes"],
                    input_mtime_ns=r["input_mtime_ns"],
                    input_sha256=r["input_sha256"],
                    part=name,
                )
        return prepared

    def _verified_images_parts(self, prepared: Prepared, dry_run: bool) -> dict[str, pa.Table]:
        """The committed images parts that prove their batch whole; the others quarantined."""
        tables: dict[str, pa.Table] = {}
        if not self.images_dir.is_dir():
            return tables
        for part in sorted(self.images_dir.glob("part-*.parquet")):
            problem, table = self._check_batch(part)
            if problem is None:
                tables[part.name] = table
                continue
            prepared.quarantined.append(f"{part.name} ({problem})")
            log.warning(
                "damaged batch %s: %s; moved to quarantine/, its images are redone",
                part.name,
                problem,
            )
            if not dry_run:
                self._quarantine(part.name)
        return tables

    def _check_batch(self, images_part: Path) -> tuple[str | None, pa.Table | None]:
        """Why this committed batch is not whole (None: it is), and its images table."""
        try:
            table = pq.read_table(images_part)
        except (OSError, pa.ArrowException) as exc:
            return f"unreadable images part: {str(exc).splitlines()[0][:120]}", None
        commit = read_commit(table.schema)
        if commit is None:
            return "images part without a commit record", None
        if table.num_rows != commit["images_rows"]:
            return f"images part has {table.num_rows} rows, {commit['images_rows']} committed", None
        objects_part = self.objects_dir / images_part.name
        try:
            size = objects_part.stat().st_size
            rows = pq.read_metadata(objects_part).num_rows
        except FileNotFoundError:
            return "objects part missing", None
        except (OSError, pa.ArrowException) as exc:
            return f"unreadable objects part: {str(exc).splitlines()[0][:120]}", None
        if size != commit["objects_bytes"] or rows != commit["objects_rows"]:
            expected = f"{commit['objects_rows']} rows in {commit['objects_bytes']} bytes"
            return f"objects part has {rows} rows in {size} bytes, {expected} committed", None
        return None, table

    def _quarantine(self, name: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        folder = self.root / "quarantine" / stamp
        for sub in ("images", "objects"):
            source = self.root / sub / name
            if source.exists():
                (folder / sub).mkdir(parents=True, exist_ok=True)
                os.replace(source, folder / sub / name)

    def _remove_uncommitted(
        self, tables: dict[str, pa.Table], prepared: Prepared, dry_run: bool
    ) -> None:
        """Objects parts without a commit, and label images of images not committed ok."""
        if self.objects_dir.is_dir():
            for part in self.objects_dir.glob("part-*.parquet"):
                if part.name not in tables:  # its batch died before committing: redo it
                    prepared.removed.append(f"objects/{part.name}")
                    if not dry_run:
                        part.unlink(missing_ok=True)
        if self.labels_dir.is_dir():
            ok = {
                r["image_id"]
                for t in tables.values()
                for r in t.select(["image_id", "status"]).to_pylist()
                if r["status"] == "ok"
            }
            for path in self.labels_dir.glob("*.tif"):
                if path.stem not in ok:
                    prepared.removed.append(f"labels/{path.name}")
                    if not dry_run:
                        path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ forgetting
    def forget(self, image_ids: set[str], stored: dict[str, StoredImage]) -> None:
        """Remove these images' rows (and label images) so they are processed again.

        Each affected batch is rewritten without them, objects part first, then the images
        part with a new commit record: a crash in between leaves a batch that fails
        verification and is redone whole, never a wrong row.
        """
        parts = sorted({stored[i].part for i in image_ids if i in stored})
        for name in parts:
            images = _without(pq.read_table(self.images_dir / name), image_ids)
            objects = _without(pq.read_table(self.objects_dir / name), image_ids)
            if images.num_rows == 0:
                (self.images_dir / name).unlink()
                (self.objects_dir / name).unlink()
                continue
            metadata = dict(images.schema.metadata or {})
            key = name.removeprefix("part-").removesuffix(".parquet")
            write_batch(self.root, key, objects, images, metadata)
        for image_id in image_ids:
            (self.labels_dir / f"{image_id}.tif").unlink(missing_ok=True)
            shutil.rmtree(self.labels_dir / f"{image_id}.ome.zarr", ignore_errors=True)

    # ------------------------------------------------------------------ reading, records
    def read_images(self, columns: list[str] | None = None) -> pa.Table | None:
        return _read_parts(self.images_dir, columns)

    def read_objects(self, columns: list[str] | None = None) -> pa.Table | None:
        return _read_parts(self.objects_dir, columns)

    def labels_of(self, image_ids) -> set[str]:
        """Which of these images have a label image."""
        return {
            i
            for i in image_ids
            if (self.labels_dir / f"{i}.tif").exists()
            or (self.labels_dir / f"{i}.ome.zarr" / "labels" / "nuclei" / "0" / ".zarray").exists()
        }

    def write_run_record(self, record: dict, started: datetime) -> Path:
        """This invocation's record: ``runs/<start>-<pid>.json`` (kept), and ``run.json``
        (the latest). Returns the kept record's path."""
        text = json.dumps(record, indent=2, default=str) + "\n"
        self.runs_dir.mkdir(exist_ok=True)
        kept = self.runs_dir / f"{started.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.json"
        for path in (kept, self.run_json):
            with atomic_path(path) as tmp:
                tmp.write_text(text)
        return kept


def _without(table: pa.Table, image_ids: set[str]) -> pa.Table:
    gone = pc.is_in(table["image_id"], value_set=pa.array(sorted(image_ids), pa.string()))
    return table.filter(pc.invert(gone))


def _read_parts(folder: Path, columns: list[str] | None) -> pa.Table | None:
    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        return None
    return pa.concat_tables(
        [pq.read_table(p, columns=columns) for p in parts], promote_options="default"
    )
