"""``cluster=slurm``: Dask workers as SLURM jobs (dask-jobqueue's SLURMCluster)."""

from __future__ import annotations

from pathlib import Path

from dask_jobqueue import SLURMCluster

from hpcseg.cluster import jobqueue
from hpcseg.cluster.core import ClusterKind
from hpcseg.config.schemas import SlurmClusterConfig


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
