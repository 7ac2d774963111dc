"""GPU clusters on the real local SLURM with fake GPUs (``SLURM_FAKE_GPUS=1``
jobs/local-slurm/start.sh, as .ci/run starts it): a cluster=slurm_gpu worker job and a
jobs/hpcseg-gpu.sbatch allocation get their GPU (CUDA_VISIBLE_DEVICES). The workers are CPU
workers through the same code paths (cluster.worker_module=hpcseg.cluster.dask_worker,
cluster.worker_class=distributed.Worker): dask-cuda needs a real GPU."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SMALL, require_slurm
from test_slurm import scontrol_job, wait_for_job

from hpcseg.cluster import start_cluster

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
HPCSEG = f"{sys.executable} -m hpcseg"


@pytest.fixture(scope="module", autouse=True)
def slurm_gpus():
    """Skip (or, with CI=true, fail) unless SLURM answers and its node has GPU GRES."""
    require_slurm()
    gres = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True).stdout
    if "gpu" not in gres:
        message = (
            f"the local SLURM has no GPU GRES ({gres.strip() or 'none'}); restart it with "
            "`sudo SLURM_FAKE_GPUS=1 bash jobs/local-slurm/start.sh`"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)


def test_a_slurm_gpu_worker_job_gets_its_gpu(make_config, tmp_path):
    cfg = make_config(
        "cluster=slurm_gpu",
        "cluster.worker_module=hpcseg.cluster.dask_worker",
        "cluster.interface=lo",
        "cluster.jobs=1",
    )
    with start_cluster(cfg.cluster, tmp_path) as client:
        seen = client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))
        jobs = client.run(lambda: os.environ.get("SLURM_JOB_ID"))
    assert len(seen) == 1, seen
    (visible,) = seen.values()
    assert visible is not None and re.fullmatch(r"\d+", visible), visible  # one GPU
    (job_id,) = jobs.values()
    info = scontrol_job(job_id)
    assert "gpu:1" in info.get("TresPerNode", ""), info
    assert info["JobName"] == "hpcseg-worker"


def test_the_gpu_sbatch_gives_its_worker_rank_the_gpus(tmp_path):
    out = tmp_path / "out"
    submit = subprocess.run(
        [
            "sbatch",
            "--parsable",
            "--overcommit",
            "--cpus-per-task=1",
            "--mem-per-cpu=1G",
            f"--output={tmp_path}/job-%j.out",
            str(REPO / "jobs" / "hpcseg-gpu.sbatch"),
            "cluster.worker_class=distributed.Worker",  # after the script's: this one wins
            "dataset.n_images=4",
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
    assert "4 images: 4 ok, 0 failed" in log
    ranks = out / "logs" / f"slurm-{job_id}"
    assert sorted(p.name for p in ranks.iterdir()) == ["rank-0", "rank-1", "rank-2"]
    worker_log = "\n".join(p.read_text() for p in (ranks / "rank-2").glob("*.log"))
    assert re.search(r"rank 2: worker \(distributed\.Worker, CUDA_VISIBLE_DEVICES=\d+\)",
                     worker_log), worker_log  # fmt: skip
