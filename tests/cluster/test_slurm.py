"""hpcseg on a real SLURM (jobs/local-slurm/start.sh): jobqueue mode, sbatch runner mode, a
worker job cancelled mid-run, rejected and stuck jobs, and PBS through the qsub shim."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import SMALL, reference_run, require_slurm, run_cli, stored_rows

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
HPCSEG = f"{sys.executable} -m hpcseg"


@pytest.fixture(scope="module", autouse=True)
def slurm():
    require_slurm()


def scontrol_job(job_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    return dict(re.findall(r"(\w+)=(\S+)", out))


def wait_for_job(job_id: str, timeout: float = 240) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = scontrol_job(job_id)
        if info.get("JobState") in {
            "COMPLETED",
            "FAILED",
            "CANCELLED",
            "TIMEOUT",
            "NODE_FAIL",
            "OUT_OF_MEMORY",
        }:
            return info
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not end within {timeout} s: {scontrol_job(job_id)}")


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    return reference_run(tmp_path_factory, 12)


def run_jobqueue(cluster: str, out: Path) -> subprocess.CompletedProcess:
    """12 frames on two worker jobs of `cluster` (slurm or pbs) on the local SLURM."""
    return run_cli(
        f"cluster={cluster}",
        "cluster.interface=lo",
        "cluster.jobs=2",
        "dataset.n_images=12",
        *SMALL,
        f"output.dir={out}",
        cwd=out.parent,
    )


def images_table(out: Path):
    return pq.read_table(out / "images").to_pylist()


def test_jobqueue_mode_runs_workers_as_slurm_jobs(tmp_path, local_reference):
    out = tmp_path / "out"
    proc = run_jobqueue("slurm", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job_ids = {r["slurm_job_id"] for r in images_table(out)}
    assert None not in job_ids and 1 <= len(job_ids) <= 2
    for job_id in job_ids:
        info = scontrol_job(job_id)
        assert info["JobName"] == "hpcseg-worker" and info["Partition"] == "debug"
    assert stored_rows(out, "objects") == stored_rows(local_reference, "objects")
    ignore = ("slurm_job_id",)
    assert stored_rows(out, "images", ignore) == stored_rows(local_reference, "images", ignore)
    assert "tls://" in proc.stdout  # scheduler address in the log: TLS by default
    assert not subprocess.run(
        ["squeue", "-h", "-n", "hpcseg-worker"], capture_output=True, text=True
    ).stdout.strip()


def test_sbatch_runner_mode_end_to_end(tmp_path, local_reference):
    out = tmp_path / "out"
    submit = subprocess.run(
        [
            "sbatch",
            "--parsable",
            "--overcommit",
            "--ntasks=4",
            "--mem-per-cpu=1G",
            f"--output={tmp_path}/job-%j.out",
            str(REPO / "jobs" / "hpcseg.sbatch"),
            "dataset.n_images=12",
            *SMALL,
            f"output.dir={out}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "HPCSEG_CMD": HPCSEG},
    )
    assert submit.returncode == 0, submit.stderr
    job_id = submit.stdout.strip().split(";")[0]
    info = wait_for_job(job_id)
    log = (tmp_path / f"job-{job_id}.out").read_text()
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", log
    assert "12 images: 12 ok, 0 failed" in log
    assert {r["slurm_job_id"] for r in images_table(out)} == {job_id}
    assert stored_rows(out, "objects") == stored_rows(local_reference, "objects")
    assert sorted((out / "logs" / f"slurm-{job_id}").iterdir())[-1].name == "rank-3"
    assert not (out / ".runner").exists()  # scheduler file and certificates are removed


def test_runner_mode_outside_an_allocation_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    proc = subprocess.run(
        [sys.executable, "-m", "hpcseg", "cluster=slurm_runner", f"output.dir={tmp_path}/out"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 2
    assert "sbatch jobs/hpcseg.sbatch" in proc.stderr and "Traceback" not in proc.stderr


def test_scancel_of_a_worker_job_loses_nothing(tmp_path, local_reference):
    out = tmp_path / "out"
    n = 40
    args = [
        "cluster=slurm",
        "cluster.interface=lo",
        "cluster.jobs=2",
        "runner.batch_size=1",
        f"dataset.n_images={n}",
        *SMALL,
        f"output.dir={out}",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpcseg", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    victim = None
    while victim is None:
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before the cancel"
        parts = list((out / "images").glob("part-*.parquet")) if (out / "images").exists() else []
        running = subprocess.run(
            ["squeue", "-h", "-n", "hpcseg-worker", "-t", "R", "-o", "%i"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if len(parts) >= 2 and len(running) == 2:
            victim = running[0]
        time.sleep(0.05)
    subprocess.run(["scancel", victim], check=True)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    assert f"{n} images: {n} ok, 0 failed" in output
    assert scontrol_job(victim)["JobState"] == "CANCELLED"
    rows = images_table(out)
    assert len(rows) == n and {r["status"] for r in rows} == {"ok"}
    reference = tmp_path / "reference"
    ref = run_cli(f"dataset.n_images={n}", *SMALL, f"output.dir={reference}", cwd=tmp_path)
    assert ref.returncode == 0
    assert stored_rows(out, "objects") == stored_rows(reference, "objects")


def test_rejected_worker_job_is_one_line_and_exit_2(tmp_path):
    for override, reason in (
        ("cluster.queue=nosuch", "Invalid partition name specified"),
        ("cluster.cores=64", "More processors requested than permitted"),
    ):
        proc = run_cli(
            "cluster=slurm",
            "cluster.interface=lo",
            override,
            "dataset.n_images=2",
            *SMALL,
            f"output.dir={tmp_path}/out",
            cwd=tmp_path,
        )
        assert proc.returncode == 2, proc.stdout + proc.stderr
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("hpcseg: error:")]
        assert len(errors) == 1 and reason in errors[0], proc.stderr
        assert "Traceback" not in proc.stderr


def test_pending_worker_times_out_with_the_schedulers_reason(tmp_path):
    proc = run_cli(
        "cluster=slurm",
        "cluster.interface=lo",
        "cluster.jobs=1",
        "cluster.worker_timeout=4",
        "cluster.job_directives=['--begin=now+3600']",
        "dataset.n_images=2",
        *SMALL,
        f"output.dir={tmp_path}/out",
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("hpcseg: error:"))
    assert "no Dask worker connected within 4 s" in line and "PENDING BeginTime" in line
    assert not subprocess.run(
        ["squeue", "-h", "-n", "hpcseg-worker"], capture_output=True, text=True
    ).stdout.strip()


@pytest.mark.skipif(
    shutil.which("qsub") is None and os.environ.get("CI") != "true",
    reason="qsub (slurm-wlm-torque) not installed; jobs/local-slurm/start.sh installs it",
)
def test_pbs_cluster_through_the_qsub_shim(tmp_path, local_reference):
    out = tmp_path / "out"
    proc = run_jobqueue("pbs", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "#PBS -l select=1:ncpus=1:mem=2048MB" in proc.stdout
    job_ids = {r["slurm_job_id"] for r in images_table(out)}  # the shim runs PBS jobs as SLURM jobs
    assert None not in job_ids
    assert stored_rows(out, "objects") == stored_rows(local_reference, "objects")


@pytest.mark.skipif(
    shutil.which("qsub") is None and os.environ.get("CI") != "true",
    reason="qsub (slurm-wlm-torque) not installed",
)
def test_pbs_job_script_through_the_qsub_shim(tmp_path):
    out = tmp_path / "out"
    # the shim passes -v values unquoted to sbatch, so no spaces: call python through a wrapper
    wrapper = tmp_path / "hpcseg-wrapper"
    wrapper.write_text(f'#!/bin/sh\nexec {HPCSEG} "$@"\n')
    wrapper.chmod(0o755)
    env = (
        f"HPCSEG_CMD={wrapper},HPCSEG_ARGS=output.dir={out},"
        f"HPCSEG_CACHE_DIR={os.environ['HPCSEG_CACHE_DIR']}"
    )
    submit = subprocess.run(
        ["qsub", "-v", env, "-l", "select=1:ncpus=1:mem=2gb", str(REPO / "jobs" / "hpcseg.pbs")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert submit.returncode == 0, submit.stdout + submit.stderr
    info = wait_for_job(submit.stdout.strip())
    assert info["JobState"] == "COMPLETED", info
    assert len(images_table(out)) == 16
