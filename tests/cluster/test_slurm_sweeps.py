"""Sweeps on the real local SLURM (jobs/local-slurm/start.sh) through hpcseg's launcher
preset (hydra/launcher=slurm, hydra-submitit-launcher): one SLURM job per point."""

from __future__ import annotations

import re

import pyarrow.parquet as pq
import pytest
from conftest import require_slurm, run_cli

from hpcseg.results.points import read_point

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
TINY = ("dataset.n_images=2", "dataset.height=128", "dataset.width=128")
ON_SLURM = ("hydra/launcher=slurm", "sweep.queue=debug", "sweep.cores=1", "sweep.memory=1GiB",
            "sweep.walltime=00:10:00")  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def slurm():
    require_slurm()


def test_each_point_is_a_slurm_job_and_a_failing_point_fails_the_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", *ON_SLURM, "pipeline.smooth.sigma=1,-1", *TINY, f"output.dir={sweep}",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    ok, bad = read_point(sweep / "0"), read_point(sweep / "1")
    assert (ok.status, bad.status) == ("ok", "error")
    array = re.fullmatch(r"(\d+)_0", ok.job_id)
    assert array and bad.job_id == f"{array[1]}_1"  # one array job, a task per point
    assert (sweep / ".submitit" / ok.job_id).is_dir()
    # the point's images rows carry its own SLURM job id
    images = pq.read_table(sweep / "0" / "images").to_pylist()
    assert {r["slurm_job_id"] for r in images} == {ok.slurm_job_id}
    assert "#1 error: pipeline.smooth.sigma=-1.0 is out of range" in proc.stdout


def test_a_rejected_submission_is_one_line_before_anything_is_written(tmp_path):
    proc = run_cli("-m", *ON_SLURM, "sweep.queue=nope", "pipeline.smooth.sigma=1,2", *TINY,
                   f"output.dir={tmp_path}/sweep", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "hpcseg: error: SLURM refuses the sweep's point jobs (--partition=nope --cpus-per-task=1 "
        "--mem=1GB --time=10 --nodes=1 --ntasks-per-node=1): Invalid partition name specified; "
        "see `hpcseg keys sweep` (sweep.queue, sweep.cores, sweep.memory, sweep.walltime)"
    ]
    assert list(tmp_path.iterdir()) == []
    more = run_cli("-m", *ON_SLURM, "sweep.cores=64", "pipeline.smooth.sigma=1,2", *TINY,
                   f"output.dir={tmp_path}/sweep", cwd=tmp_path)  # fmt: skip
    assert more.returncode == 2 and "More processors requested than permitted" in more.stderr


def test_optuna_trials_run_as_slurm_jobs(tmp_path):
    sweep = tmp_path / "study"
    study = ("hparams_search=nuclei_optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=2")
    proc = run_cli(*study, *ON_SLURM, *TINY, f"output.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    points = [read_point(sweep / str(n)) for n in (0, 1)]
    assert all(p.status == "ok" and p.job_id for p in points)
    assert len({p.job_id.split("_")[0] for p in points}) == 1  # one array job for the batch
    assert (sweep / "optimization_results.yaml").is_file()
