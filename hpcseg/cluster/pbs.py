"""``cluster=pbs``: Dask workers as PBS jobs (dask-jobqueue's PBSCluster)."""

from __future__ import annotations

from pathlib import Path

from dask.utils import parse_bytes
from dask_jobqueue import PBSCluster

from hpcseg.cluster import jobqueue
from hpcseg.cluster.core import ClusterKind
from hpcseg.config.schemas import PBSClusterConfig


def resource_spec(cfg: PBSClusterConfig) -> str:
    """The ``-l`` line: as configured, else one chunk of the job's cores and memory."""
    mem_mb = -(-parse_bytes(cfg.memory) // 2**20)
    return cfg.resource_spec or f"select=1:ncpus={cfg.cores}:mem={mem_mb}MB"


def make_cluster(cfg: PBSClusterConfig, output_dir: Path, errors=None, launcher=None):
    """The PBSCluster for ``cfg`` (no job submitted until it is scaled)."""
    return jobqueue.make_cluster(
        PBSCluster, cfg, output_dir, errors, launcher, resource_spec=resource_spec(cfg)
    )


def status_command(job_ids: list[str]) -> list[str]:
    return ["qstat", *job_ids]


def start(cfg: PBSClusterConfig, output_dir: Path, launcher: list[str] | None = None):
    return jobqueue.running(
        lambda errors: make_cluster(cfg, Path(output_dir), errors, launcher), cfg, status_command
    )


KIND = ClusterKind(schema=PBSClusterConfig, start=start, make=make_cluster)
