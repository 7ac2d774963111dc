"""Fault isolation on a real local cluster: an image that kills its worker (memory limit) or
passes the time cap fails alone; its batch-mates get their rows; runner.retries is exact."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from conftest import run_cli

from hpcseg.results.store import Store

pytestmark = pytest.mark.slow


def _folder(tmp_path, big_shape, big_kind="noise"):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    small = np.full((100, 120), 100, np.uint16)
    small[30:50, 30:50] = 2000
    for i in range(5):
        tifffile.imwrite(folder / f"good{i}.tif", small)
    big = rng.integers(0, 4000, size=big_shape, dtype=np.uint16)
    tifffile.imwrite(folder / "big.tif", big)
    return folder


def _rows(out):
    return {r["image_id"]: r for r in Store(out).read_images().to_pylist()}


@pytest.mark.parametrize("retries", [0, 1])
def test_an_image_that_kills_its_worker_fails_alone(tmp_path, retries):
    folder = _folder(tmp_path, (6000, 6000))
    out = tmp_path / "out"
    proc = run_cli("dataset=tiff_glob", f"dataset.path={folder}/*.tif", f"output.dir={out}",
                   "cluster.n_workers=1", "cluster.memory_limit=500MiB", "runner.batch_size=8",
                   f"runner.retries={retries}", "runner.progress=none", timeout=600)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = _rows(out)
    assert {i for i, r in rows.items() if r["status"] == "ok"} == {f"good{i}" for i in range(5)}
    assert f"its worker died {retries + 1} time(s)" in rows["big"]["error"]
    assert "memory limit" in rows["big"]["error"]
    assert "Traceback" not in proc.stderr


def test_an_image_past_the_time_cap_fails_and_is_not_retried(tmp_path):
    folder = _folder(tmp_path, (2500, 2500))
    out = tmp_path / "out"
    proc = run_cli("dataset=tiff_glob", f"dataset.path={folder}/*.tif", f"output.dir={out}",
                   "cluster.n_workers=1", "runner.batch_size=8", "runner.retries=2",
                   "runner.image_timeout=1", "runner.progress=none", timeout=600)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = _rows(out)
    assert {i for i, r in rows.items() if r["status"] == "ok"} == {f"good{i}" for i in range(5)}
    assert "longer than runner.image_timeout=1 s" in rows["big"]["error"]
    assert proc.stdout.count("running its 6 images one by one") == 1
