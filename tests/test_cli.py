"""The `hpcseg` command end to end, as a user runs it: real subprocesses, a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import run_cli, stored_rows

from hpcseg.results.store import Store

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def test_default_job_prints_summary_and_writes_dataset(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("dataset.n_images=6", f"output.dir={out}", "cluster.n_workers=2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "6 images: 6 ok, 0 failed" in proc.stdout and f"results in {out}" in proc.stdout
    assert "images/s" in proc.stdout
    assert "progress: 6/6 images (100%)" in proc.stdout + proc.stderr  # log lines off a terminal
    run = json.loads((out / "run.json").read_text())
    assert run["summary"]["objects"] == len(Store(out).read_objects()) > 300
    # the synthetic set has ground truth: every image is scored, pooled scores are reported
    accuracy = run["summary"]["accuracy"]
    assert accuracy["images_scored"] == 6 and accuracy["n_pred"] == run["summary"]["objects"]
    assert accuracy["f1_70"] > 0.7  # the default pipeline on the (harder, v2) synthetic set
    assert (
        f"accuracy over 6 images with ground truth: F1@0.5 {accuracy['f1_50']:.3f}" in proc.stdout
    )
    images = Store(out).read_images().to_pylist()
    assert all(0 < r["f1_70"] <= 1 and r["n_true"] > 0 for r in images)
    diameter = run["summary"]["diameter"]  # what diameter=auto decided, said in one line
    assert diameter["images"] == 6 and 15 < diameter["median"] < 25
    assert diameter["median"] == statistics.median(r["diameter"] for r in images)
    assert f"nucleus diameter {diameter['median']:.1f} px (median over 6 images" in proc.stdout
    contrast = run["summary"]["contrast_to_noise"]  # the demo frames: none photon-starved
    assert contrast["images"] == 6 and contrast["smoothed_more"] == 0 and contrast["min"] > 5
    assert contrast["median"] == statistics.median(r["contrast_to_noise"] for r in images)
    assert f"contrast to noise {contrast['median']:.1f} (median over 6 images" in proc.stdout
    assert sum(r["tp_70"] for r in images) == accuracy["tp_70"]


def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_rows(tmp_path):
    n = 40
    args = [
        f"dataset.n_images={n}",
        "runner.batch_size=1",
        "cluster.n_workers=2",
        "dataset.height=260",
        "dataset.width=348",
    ]
    reference = run_cli(*args, f"output.dir={tmp_path / 'once'}", cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpcseg", *args, f"output.dir={killed}"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while len(list((killed / "images").glob("part-*.parquet"))) < 3:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, the scheduler and every worker
    proc.wait()
    parts_at_kill = len(list((killed / "images").glob("part-*.parquet")))
    assert 3 <= parts_at_kill < n, "the kill did not land mid-way"
    assert not (killed / "run.json").exists()

    resumed = run_cli(*args, f"output.dir={killed}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{n} images: {n} ok" in resumed.stdout
    assert "already done" in resumed.stdout
    assert stored_rows(killed, "objects") == stored_rows(tmp_path / "once", "objects")
    assert stored_rows(killed, "images") == stored_rows(tmp_path / "once", "images")
    assert not list(killed.rglob("*.tmp"))


def test_wheel_ships_conf_and_runs_from_any_directory(tmp_path):
    """Build the real wheel, run it without the source tree on the path, from another cwd."""
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("hpcseg-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for conf in (
        "config.yaml",
        "dataset/synthetic.yaml",
        "dataset/tiff_glob.yaml",
        "pipeline/blog2021.yaml",
        "pipeline/nuclei.yaml",
        "cluster/local.yaml",
    ):
        assert f"hpcseg/conf/{conf}" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONSAFEPATH": "1"}
    code = (
        "import sys, hpcseg; print(hpcseg.__file__); from hpcseg.cli import main; "
        "sys.argv = ['hpcseg', 'pipeline=blog2021', '--cfg', 'job']; main()"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=env,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0].startswith(str(site))
    assert "name: blog2021" in shown.stdout
