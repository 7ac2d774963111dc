"""The driver's side of the store: preparing a folder, resume bookkeeping, refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
import tifffile

from hpcseg.errors import UserError
from hpcseg.results.parts import write_batch, write_labels
from hpcseg.results.store import Store
from hpcseg.results.tables import images_schema, objects_schema


def _batch(root, key: str, ids: list[str], fingerprint: str = "fp") -> None:
    images = pa.Table.from_pylist(
        [{"image_id": i, "status": "ok", "fingerprint": fingerprint, "n_objects": 0} for i in ids],
        schema=images_schema(),
    )
    objects = objects_schema().empty_table()
    write_batch(root, key, objects, images, {b"hpcseg.fingerprint": fingerprint.encode()})


def test_a_new_folder_is_created_and_empty(tmp_path):
    store = Store(tmp_path / "out")
    assert store.prepare("fp", resume=True, overwrite=False).stored == {}
    assert store.objects_dir.is_dir() and store.images_dir.is_dir()
    assert store.read_images() is None and store.read_objects() is None


def test_committed_batches_are_done_and_uncommitted_parts_removed(tmp_path):
    store = Store(tmp_path)
    store.prepare("fp", True, False)
    _batch(tmp_path, "b1", ["a", "b"])
    _batch(tmp_path, "b2", ["c"])
    (store.images_dir / "part-b2.parquet").unlink()  # killed between the two renames
    (store.objects_dir / ".part-b3.parquet.0000abcd.tmp").write_bytes(b"half")
    assert set(store.prepare("fp", True, False).stored) == {"a", "b"}
    assert sorted(p.name for p in store.objects_dir.iterdir()) == ["part-b1.parquet"]
    assert store.read_images(["image_id"]).column("image_id").to_pylist() == ["a", "b"]
    meta = store.read_images().schema.metadata
    assert meta[b"hpcseg.fingerprint"] == b"fp"


def test_another_pipeline_or_no_resume_is_refused(tmp_path):
    store = Store(tmp_path)
    store.prepare("fp", True, False)
    _batch(tmp_path, "b1", ["a"])
    with pytest.raises(UserError, match="another pipeline configuration"):
        store.prepare("other", True, False)
    with pytest.raises(UserError, match=r"output\.resume=false"):
        store.prepare("fp", False, False)


def test_overwrite_clears_results_labels_and_run_record(tmp_path):
    store = Store(tmp_path)
    store.prepare("fp", True, False)
    _batch(tmp_path, "b1", ["a"])
    write_labels(tmp_path, "a", np.ones((4, 4), np.int32))
    store.write_run_record({"summary": {}}, datetime.now(UTC))
    assert store.prepare("other", True, overwrite=True).stored == {}
    assert not (tmp_path / "labels").exists() and not store.run_json.exists()
    assert store.read_images() is None


def test_an_output_path_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "out"
    path.write_text("not a folder")
    with pytest.raises(UserError, match="not a folder"):
        Store(path).prepare("fp", True, False)


def test_label_images_use_the_smallest_dtype(tmp_path):
    small = write_labels(tmp_path, "s", np.array([[0, 1], [2, 65535]], np.int32))
    large = write_labels(tmp_path, "l", np.array([[0, 65536]], np.int64))
    assert tifffile.imread(small).dtype == np.uint16
    assert tifffile.imread(large).dtype == np.uint32
    assert tifffile.imread(large).tolist() == [[0, 65536]]


def test_the_fingerprint_covers_rows_and_columns_but_not_acceptance(make_config, tmp_path):
    from hpcseg.config.schemas import as_plain
    from hpcseg.results.provenance import run_fingerprint

    def fp(*overrides):
        return run_fingerprint(as_plain(make_config(*overrides)))

    tifffile.imwrite(tmp_path / "a_1.tif", np.zeros((8, 8), np.uint16))
    glob = ("dataset=tiff_glob", f"dataset.path={tmp_path}/*.tif")
    base = fp(*glob)
    assert fp(*glob, "pipeline.require_integer_input=false") == base  # which inputs: not rows
    assert fp(*glob, "dataset.metadata_regex='(?P<well>[a-z])_'") != base  # columns
    assert fp(*glob, "dataset.pixel_size=0.5") != base  # µm columns
    assert fp(*glob, "pipeline.split.min_distance=5") != base  # rows
    # the mode: refine.method=auto and diameter=auto run another chain on chunks
    assert fp(*glob, "mode=tiled") != base
    assert fp(*glob, "mode=tiled", "mode.chunk_size=1024") != fp(*glob, "mode=tiled")
