"""``cluster=slurm``: Dask workers as SLURM jobs (dask-jobqueue's SLURMCluster); and the
check of a sweep's point jobs under ``hydra/launcher=slurm`` (submitit's)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from dask_jobqueue import SLURMCluster

from hpcseg.cluster import jobqueue
from hpcseg.cluster.core import ClusterKind
from hpcseg.config.schemas import SlurmClusterConfig
from hpcseg.errors import UserError


def make_cluster(cfg: SlurmClusterConfig, output_dir: Path, errors=None, launcher=None):
    """The SLURMCluster for ``cfg`` (no job submitted until it is scaled)."""
    return jobqueue.make_cluster(SLURMCluster, cfg, output_dir, errors, launcher)


def status_command(job_ids: list[str]) -> list[str]:
    return ["squeue", "-h", "-j", ",".join(job_ids), "-o", "%i %T %r"]


def start(cfg: SlurmClusterConfig, output_dir: Path, launcher: list[str] | None = None):
    return jobqueue.running(
        lambda errors: make_cluster(cfg, Path(output_dir), errors, launcher), cfg, status_command
    )


KIND = ClusterKind(schema=SlurmClusterConfig, start=start, make=make_cluster)


# submitit's SLURM launcher keys (hydra.launcher.*) and the sbatch options they become
SUBMITIT_OPTIONS = {
    "partition": "--partition={}",
    "account": "--account={}",
    "qos": "--qos={}",
    "cpus_per_task": "--cpus-per-task={}",
    "mem_gb": "--mem={}GB",
    "timeout_min": "--time={}",
    "gres": "--gres={}",
    "constraint": "--constraint={}",
    "exclude": "--exclude={}",
    "nodes": "--nodes={}",
    "tasks_per_node": "--ntasks-per-node={}",
    "gpus_per_node": "--gpus-per-node={}",
    "gpus_per_task": "--gpus-per-task={}",
    "mem_per_cpu": "--mem-per-cpu={}",
}


def sbatch_options(launcher: dict) -> list[str]:
    """The sbatch options of the jobs hydra-submitit-launcher would submit for ``launcher``
    (the resolved ``hydra.launcher`` config)."""
    options = [
        form.format(launcher[key])
        for key, form in SUBMITIT_OPTIONS.items()
        if launcher.get(key) is not None
    ]
    for key, value in (launcher.get("additional_parameters") or {}).items():
        flag = "--" + key.replace("_", "-")
        options.append(flag if value is True else f"{flag}={value}")
    return options


def check_submission(launcher: dict, timeout: float = 60.0) -> None:
    """Ask SLURM whether it would accept one sweep point's job (``sbatch --test-only``: nothing
    is queued); a refusal (no such partition, too many cores, too much memory) is one line."""
    if shutil.which("sbatch") is None:
        raise UserError(
            "hydra/launcher=slurm submits each sweep point as a SLURM job, but sbatch is not "
            "on PATH here: run the sweep on a SLURM login node (or drop hydra/launcher=slurm)"
        )
    options = sbatch_options(launcher)
    try:
        out = subprocess.run(
            ["sbatch", "--test-only", *options, "--wrap=true"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise UserError(
            f"sbatch --test-only did not answer within {timeout:.0f} s: is the SLURM "
            "controller up (scontrol ping)?"
        ) from None
    if out.returncode != 0:
        lines = [ln.strip() for ln in out.stderr.splitlines() if ln.strip()] or ["no reason"]
        why = lines[-1].removeprefix("allocation failure: ").removeprefix("sbatch: error: ")
        raise UserError(
            f"SLURM refuses the sweep's point jobs ({' '.join(options)}): {why}; see "
            "`hpcseg keys sweep` (sweep.queue, sweep.cores, sweep.memory, sweep.walltime)"
        )
