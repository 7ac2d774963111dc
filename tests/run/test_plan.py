"""What a rerun does in a folder: inputs recognised by identity, failed images retried on
request, label images made up for, every invocation recorded, --dry-run."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tifffile
from conftest import run_cli

from hpcseg.results.store import Store

pytestmark = pytest.mark.slow


def _plate(folder, seed: int, names=("a", "b", "c")):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in names:
        image = np.full((80, 100), 100, np.uint16)
        y, x = rng.integers(20, 60, size=2)
        image[y - 8 : y + 8, x - 8 : x + 8] = 3000
        tifffile.imwrite(folder / f"{name}.tif", image)
    return folder


def _run(folder, out, *extra):
    return run_cli("dataset=tiff_glob", f"dataset.path={folder}/*.tif", f"output.dir={out}",
                   "cluster.n_workers=1", "runner.progress=none", *extra)  # fmt: skip


def _rows(out):
    return {r["image_id"]: r for r in Store(out).read_images().to_pylist()}


def test_another_folder_with_the_same_names_is_refused_then_redone_on_request(tmp_path):
    plate1, plate2 = _plate(tmp_path / "plate1", 1), _plate(tmp_path / "plate2", 2)
    out = tmp_path / "out"
    assert _run(plate1, out).returncode == 0
    before = _rows(out)
    refused = _run(plate2, out)
    assert refused.returncode == 2
    lines = [ln for ln in refused.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "3 image(s) whose input changed" in lines[0], refused.stderr
    assert "plate1/a.tif -> " in lines[0] and "output.redo_changed=true" in lines[0]
    assert _rows(out) == before  # nothing touched
    redone = _run(plate2, out, "output.redo_changed=true")
    assert redone.returncode == 0, redone.stderr
    rows = _rows(out)
    assert {r["path"] for r in rows.values()} == {str(plate2 / f"{n}.tif") for n in "abc"}
    reference = tmp_path / "ref"
    assert _run(plate2, reference).returncode == 0
    strip = ("seconds", "hostname", "input_mtime_ns")
    for image_id, row in _rows(reference).items():
        assert {k: v for k, v in row.items() if not k.startswith(strip)} == {
            k: v for k, v in rows[image_id].items() if not k.startswith(strip)
        }


def test_a_file_changed_in_place_is_noticed(tmp_path):
    plate = _plate(tmp_path / "p", 1)
    out = tmp_path / "out"
    assert _run(plate, out).returncode == 0
    stat = os.stat(plate / "b.tif")
    os.utime(plate / "b.tif", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    proc = _run(plate, out)
    assert proc.returncode == 2 and "'b': modification time changed" in proc.stderr, proc.stderr
    assert _run(plate, out, "output.identity=sha256", "output.redo_changed=true").returncode == 0
    # b was redone with its content hash recorded: for it, only a change of content counts
    os.utime(plate / "b.tif", ns=(stat.st_atime_ns, stat.st_mtime_ns + 2 * 10**9))
    touched = _run(plate, out, "output.identity=sha256")
    assert touched.returncode == 0 and "0 to do" in touched.stdout + touched.stderr
    data = bytearray((plate / "b.tif").read_bytes())
    data[-1] ^= 1  # one byte, same size
    (plate / "b.tif").write_bytes(bytes(data))
    proc = _run(plate, out, "output.identity=sha256")
    assert proc.returncode == 2 and "'b': content changed" in proc.stderr, proc.stderr


def test_retry_failed_redoes_only_the_failed_images_with_the_suggested_fix(tmp_path):
    plate = _plate(tmp_path / "p", 1, names=("a", "b"))
    tifffile.imwrite(plate / "f.tif", tifffile.imread(plate / "a.tif").astype(np.float32))
    out = tmp_path / "out"
    first = _run(plate, out)
    assert first.returncode == 1
    rows = _rows(out)
    assert rows["f"]["status"] == "failed" and "require_integer_input=false" in rows["f"]["error"]
    kept = _run(plate, out, "pipeline.require_integer_input=false")
    assert kept.returncode == 1 and "0 to do" in kept.stdout + kept.stderr
    retried = _run(plate, out, "pipeline.require_integer_input=false", "output.retry_failed=true")
    assert retried.returncode == 0, retried.stderr
    assert "1 to do" in retried.stdout + retried.stderr
    after = _rows(out)
    assert after["f"]["status"] == "ok" and after["f"]["n_objects"] == 1
    assert after["a"]["seconds_total"] == rows["a"]["seconds_total"]  # not redone
    runs = sorted((out / "runs").glob("*.json"))
    assert len(runs) == 3  # every invocation kept, run.json is the latest
    records = [json.loads(p.read_text()) for p in runs]
    assert [r["this_run"]["processed"] for r in records] == [3, 0, 1]
    assert records[2]["this_run"]["retried_failed"] == 1
    assert json.loads((out / "run.json").read_text()) == records[2]


def test_save_labels_on_a_finished_folder_makes_the_label_images(tmp_path):
    plate = _plate(tmp_path / "p", 1)
    out = tmp_path / "out"
    assert _run(plate, out).returncode == 0
    proc = _run(plate, out, "output.save_labels=true")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["a.tif", "b.tif", "c.tif"]
    record = json.loads((out / "run.json").read_text())["this_run"]
    assert record["relabelled"] == 3 and record["labels_written"] == 3


def test_dry_run_lists_and_changes_nothing(tmp_path):
    plate = _plate(tmp_path / "p", 1)
    out = tmp_path / "out"
    assert _run(plate, out).returncode == 0
    _plate(tmp_path / "p2", 1, names=("d",))
    (tmp_path / "p2" / "d.tif").rename(plate / "d.tif")
    listing = sorted(os.listdir(out))
    proc = _run(plate, out, "runner.dry_run=true")
    assert proc.returncode == 0, proc.stderr
    assert "1 image(s) would run, 3 already done" in proc.stdout
    assert "to do (1): d" in proc.stdout
    assert sorted(os.listdir(out)) == listing and len(list((out / "runs").iterdir())) == 1
    assert len(list((out / "logs").iterdir())) == 1  # not even a Hydra log folder


def test_adding_a_metadata_regex_on_a_rerun_is_another_configuration(tmp_path):
    """Today the skipped images kept null metadata and the parts' columns differed (breaking
    duckdb's glob and polars): now the columns are part of the fingerprint."""
    plate = _plate(tmp_path / "p", 1, names=("P1_a", "P1_b"))
    out = tmp_path / "out"
    assert _run(plate, out).returncode == 0
    proc = _run(plate, out, "dataset.metadata_regex='(?P<plate>P[0-9])_'")
    assert proc.returncode == 2 and "another pipeline configuration" in proc.stderr, proc.stderr
    assert "metadata columns" in proc.stderr
    fresh = tmp_path / "fresh"
    assert _run(plate, fresh, "dataset.metadata_regex='(?P<plate>P[0-9])_'").returncode == 0
    assert {r["plate"] for r in _rows(fresh).values()} == {"P1"}
