"""A mosaic segmented tiled by SLURM worker jobs (jobqueue) and in an sbatch allocation (runner
mode) equals the local tiled run, on the real local SLURM (jobs/local-slurm/start.sh)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import require_slurm, run_cli, stored_rows
from test_slurm import wait_for_job

from hpcseg.data.mosaic import write_mosaic

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
TILED = ("mode=tiled", "mode.chunk_size=256")


@pytest.fixture(scope="module", autouse=True)
def slurm():
    require_slurm()


@pytest.fixture(scope="module")
def mosaic(tmp_path_factory) -> Path:
    return Path(write_mosaic(tmp_path_factory.mktemp("slide") / "slide.zarr", (500, 700), 6,
                             kind="zarr", chunk=256))  # fmt: skip


@pytest.fixture(scope="module")
def local_run(mosaic, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    proc = run_cli("dataset=zarr", f"dataset.path={mosaic}", *TILED, f"output.dir={out}")
    assert proc.returncode == 0, proc.stderr
    return out


def test_worker_jobs_segment_a_mosaic_as_the_local_cluster_does(mosaic, local_run, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("dataset=zarr", f"dataset.path={mosaic}", *TILED, "cluster=slurm",
                   "cluster.interface=lo", "cluster.jobs=2", f"output.dir={out}",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [row] = pq.read_table(out / "images").to_pylist()
    jobs = row["slurm_job_id"].split(",")  # the worker jobs that ran its chunks
    assert row["mode"] == "tiled" and row["n_chunks"] == 6 and 1 <= len(jobs) <= 2
    for job in jobs:
        accounting = subprocess.run(["scontrol", "show", "job", job], capture_output=True,
                                    text=True).stdout  # fmt: skip
        assert "JobName=hpcseg-worker" in accounting, accounting
    assert stored_rows(out, "objects") == stored_rows(local_run, "objects")


def test_an_sbatch_allocation_segments_a_mosaic_as_the_local_cluster_does(
    mosaic, local_run, tmp_path
):
    out = tmp_path / "out"
    submit = subprocess.run(
        ["sbatch", "--parsable", "--overcommit", "--ntasks=4", "--mem-per-cpu=1G",
         f"--output={tmp_path}/job-%j.out", str(REPO / "jobs" / "hpcseg.sbatch"),
         "dataset=zarr", f"dataset.path={mosaic}", *TILED, f"output.dir={out}"],
        capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "HPCSEG_CMD": f"{sys.executable} -m hpcseg"},
    )  # fmt: skip
    assert submit.returncode == 0, submit.stderr
    job_id = submit.stdout.strip().split(";")[0]
    info = wait_for_job(job_id)
    log = (tmp_path / f"job-{job_id}.out").read_text()
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", log
    [row] = pq.read_table(out / "images").to_pylist()
    assert row["slurm_job_id"] == job_id and row["mode"] == "tiled"
    assert stored_rows(out, "objects") == stored_rows(local_run, "objects")
