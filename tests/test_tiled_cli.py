"""`hpcseg mode=tiled` / `mode=auto` as a user runs them: Zarr and BigTIFF inputs, the same
tables as the many-images mode, any worker count, a real kill and a resume, one-line errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import tifffile
import zarr
from conftest import run_cli, stored_rows

from hpcseg.data.mosaic import mosaic_region, write_mosaic

SHAPE = (700, 900)
TILED = ("mode=tiled", "mode.chunk_size=256")


@pytest.fixture(scope="module")
def mosaic(tmp_path_factory) -> dict[str, Path]:
    """One synthetic mosaic as a Zarr array and as a tiled BigTIFF."""
    folder = tmp_path_factory.mktemp("mosaic")
    (folder / "tiff").mkdir()
    return {
        "zarr": Path(write_mosaic(folder / "plate.zarr", SHAPE, 4, kind="zarr", chunk=256)),
        "tiff": Path(write_mosaic(folder / "tiff" / "plate.tif", SHAPE, 4, kind="tiff", chunk=256)),
    }


def assert_rows_equal(got: list[tuple], expected: list[tuple]) -> None:
    """Integers and strings exactly, floats to 1e-9 relative (merged per-chunk sums such as
    the intensity spread may differ in the last bits; see tests/run/test_tiled.py)."""
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        for x, y in zip(a, b, strict=True):
            if isinstance(y, float) and not isinstance(x, bool):
                assert x == pytest.approx(y, rel=1e-9, abs=0, nan_ok=True), (a, b)
            else:
                assert x == y, (a, b)


def images_rows(out: Path) -> list[dict]:
    return pq.read_table(out / "images").to_pylist()


@pytest.mark.slow
def test_zarr_and_bigtiff_tiled_equal_the_whole_image_run(mosaic, tmp_path):
    zarr_out, tiff_out, whole_out = tmp_path / "z", tmp_path / "t", tmp_path / "w"
    z = run_cli("dataset=zarr", f"dataset.path={mosaic['zarr']}", *TILED, "output.save_labels=true",
                f"output.dir={zarr_out}")  # fmt: skip
    assert z.returncode == 0, z.stderr
    glob = f"dataset.path={mosaic['tiff']}"
    t = run_cli("dataset=tiff_glob", glob, *TILED, "cluster.n_workers=1", f"output.dir={tiff_out}")
    assert t.returncode == 0, t.stderr
    # diameter=auto: the tiled runs measure it on samples of the image; the whole image given
    # the same diameter has the same lengths, so the same objects and rows (diameter included)
    measured = images_rows(zarr_out)[0]["diameter"]
    assert 10 < measured < 40
    w = run_cli("dataset=tiff_glob", glob, "output.save_labels=true", f"output.dir={whole_out}",
                f"pipeline.diameter={measured}")  # fmt: skip
    assert w.returncode == 0, w.stderr
    ignore = (
        "path",
        "input_bytes",
        "input_mtime_ns",
        "input_sha256",
        "mode",
        "n_chunks",
        "chunk_grid",
        "background",
        "slurm_job_id",
        "file_pixel_size",
        "fingerprint",
        "contrast_to_noise",  # tiled: the lower median of the samples' (here all over 3)
    )  # fmt: skip  (the whole run's config names its diameter)
    objects = stored_rows(whole_out, "objects")
    assert len(objects) > 100
    assert_rows_equal(stored_rows(zarr_out, "objects"), objects)  # 2 workers, Zarr
    assert_rows_equal(stored_rows(tiff_out, "objects"), objects)  # 1 worker, BigTIFF
    assert stored_rows(zarr_out, "objects") == stored_rows(tiff_out, "objects")  # any workers
    images = stored_rows(whole_out, "images", ignore)
    assert_rows_equal(stored_rows(tiff_out, "images", ignore), images)
    [row] = images_rows(zarr_out)
    assert row["mode"] == "tiled" and row["n_chunks"] == 12 and row["chunk_grid"] == [3, 4]
    assert row["shape"] == list(SHAPE) and row["status"] == "ok"
    assert images_rows(whole_out)[0]["mode"] == "images"
    # the label image, chunked in the OME-Zarr labels layout, equals the whole image's
    labels = zarr.open_array(zarr_out / "labels" / "plate.ome.zarr" / "labels" / "nuclei" / "0")
    assert labels.chunks == (256, 256)
    np.testing.assert_array_equal(labels[:], tifffile.imread(whole_out / "labels" / "plate.tif"))
    again = run_cli("dataset=zarr", f"dataset.path={mosaic['zarr']}", *TILED,
                    "output.save_labels=true", f"output.dir={zarr_out}")  # fmt: skip
    assert "1 already done" in again.stdout + again.stderr, again.stdout + again.stderr
    # numbered by first pixel in raster order, as one-shot labelling numbers them
    t = pq.read_table(zarr_out / "objects", columns=["label", "bbox-0"]).sort_by("label")
    assert np.all(np.diff(t["bbox-0"].to_numpy()) >= 0)
    assert t["label"].to_pylist() == list(range(1, t.num_rows + 1))


@pytest.mark.slow
def test_a_killed_tiled_run_resumes_at_the_chunks_not_done(mosaic, tmp_path):
    out = tmp_path / "out"
    source = f"dataset.path={mosaic['zarr']}"
    args = [sys.executable, "-m", "hpcseg", "dataset=zarr", source, "mode=tiled",
            "mode.chunk_size=256", "cluster.n_workers=1", f"output.dir={out}"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, cwd=tmp_path)  # fmt: skip
    seen = []
    for line in proc.stdout:  # kill the whole job (driver and worker) once a pass is done
        seen.append(line)
        if "refine_stats done" in line:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    scratch = list((out / "tiled").iterdir())
    assert len(scratch) == 1 and (scratch[0] / "refine_stats").is_dir()
    again = run_cli(*args[3:], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    log = again.stdout + again.stderr
    assert "resuming the chunks an earlier run finished" in log
    assert "smooth done (0 of 12 chunks run now)" in log  # committed chunks are not redone
    assert not (out / "tiled").exists() or not any((out / "tiled").iterdir())
    fresh = tmp_path / "fresh"
    ref = run_cli(*args[3:-1], f"output.dir={fresh}", cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr
    assert stored_rows(out, "objects") == stored_rows(fresh, "objects")


@pytest.mark.slow
def test_auto_tiles_only_the_images_above_the_size(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    big = (400, 500)
    tifffile.imwrite(folder / "big.tif", mosaic_region(1, big, (slice(0, 400), slice(0, 500))))
    small = mosaic_region(2, (120, 150), (slice(0, 120), slice(0, 150)))
    tifffile.imwrite(folder / "small.tif", small)
    out = tmp_path / "out"
    proc = run_cli("dataset=tiff_glob", f"dataset.path={folder}/*.tif", "mode=auto",
                   "mode.tile_above=100000", "mode.chunk_size=128",
                   f"output.dir={out}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    modes = {r["image_id"]: (r["mode"], r["n_chunks"]) for r in images_rows(out)}
    assert modes == {"big": ("tiled", 16), "small": ("images", None)}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("mode=tiled", "pipeline.threshold.method=li"),
         "pipeline.threshold.method=li is not available with mode=tiled"),
        (("dataset=zarr", "dataset.path=/nowhere/*.zarr"),
         "dataset=zarr is read chunk by chunk: add mode=tiled"),
        (("mode=tiled", "mode.chunk_size=8"), "mode.chunk_size=8 is out of range"),
    ],
    ids=["li", "zarr needs tiled", "chunk too small"],
)  # fmt: skip
def test_settings_the_tiled_mode_refuses_are_one_line_errors(overrides, message, tmp_path):
    proc = run_cli(*overrides, f"output.dir={tmp_path / 'out'}")
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_sigterm_stops_a_tiled_image_gracefully_and_the_rerun_finishes_it(mosaic, tmp_path):
    out = tmp_path / "out"
    args = ["dataset=zarr", f"dataset.path={mosaic['zarr']}", "mode=tiled", "mode.chunk_size=256",
            "cluster.n_workers=1", f"output.dir={out}"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "hpcseg", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=tmp_path)  # fmt: skip
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "mask done" in line:
            proc.send_signal(signal.SIGTERM)  # what scancel and a wall-time limit send
            break
    seen += proc.stdout.readlines()
    assert proc.wait(timeout=120) == 143, "".join(seen)
    log = "".join(seen)
    assert "stopped; its finished chunks are kept" in log and "stopped by SIGTERM" in log
    assert not (out / "images").exists() or not list((out / "images").glob("*.parquet"))
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "mask done (0 of 12 chunks run now)" in again.stdout + again.stderr
