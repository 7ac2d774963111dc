"""Where the Dask workers come from: a registry of cluster kinds and of container kinds.

Cluster kinds, one small module each (dask-jobqueue's layout): :mod:`~hpcseg.cluster.local`
(worker processes here), :mod:`~hpcseg.cluster.slurm` and :mod:`~hpcseg.cluster.pbs` (workers
as batch jobs, through :mod:`~hpcseg.cluster.jobqueue`), :mod:`~hpcseg.cluster.slurm_runner`
(everything inside one allocation), :mod:`~hpcseg.cluster.gpu` (dask-cuda's workers, one per
GPU: local_gpu, slurm_gpu, pbs_gpu). Container kinds: ``none`` and
:mod:`~hpcseg.cluster.apptainer`. Adding a kind: its schema in :mod:`hpcseg.config.schemas`,
its module here, one line below.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

from distributed import Client

from hpcseg.cluster import apptainer, gpu, local, pbs, slurm, slurm_runner
from hpcseg.cluster.containers import NONE, ContainerKind
from hpcseg.cluster.core import ClusterKind, quiet_dask_logs
from hpcseg.cluster.pool import pooled
from hpcseg.config.schemas import ClusterConfig, ContainerConfig
from hpcseg.errors import UserError
from hpcseg.registry import Registry

CLUSTER_KINDS: Registry[ClusterKind] = Registry(
    "cluster",
    {
        kind.schema: kind
        for kind in (local.KIND, slurm.KIND, pbs.KIND, slurm_runner.KIND, *gpu.KINDS)
    },
)
CONTAINER_KINDS: Registry[ContainerKind] = Registry(
    "container", {kind.schema: kind for kind in (NONE, apptainer.KIND)}
)


def cluster_kind(cfg: ClusterConfig) -> ClusterKind:
    return CLUSTER_KINDS.of(cfg)


def container_kind(cfg: ContainerConfig) -> ContainerKind:
    return CONTAINER_KINDS.of(cfg)


def start_cluster(
    cfg: ClusterConfig, output_dir: Path, launcher: list[str] | None = None
) -> AbstractContextManager[Client]:
    """A connected client for the configured cluster; everything is shut down on exit.

    ``launcher`` (e.g. ``apptainer exec ... IMAGE``) runs the workers' Python inside a container.
    Inside :func:`hpcseg.cluster.pool.shared_clusters` (a sweep's points in this process), the
    cluster of the previous run with the same settings is reused and stays open on exit.
    """
    quiet_dask_logs()
    kind = cluster_kind(cfg)

    def start() -> AbstractContextManager[Client]:
        return kind.start(cfg, Path(output_dir), launcher)

    if not kind.poolable:
        return start()
    return pooled((repr(cfg), tuple(launcher or ())), start)


def jobqueue_cluster(
    cfg: ClusterConfig, output_dir: Path, errors=None, launcher: list[str] | None = None
):
    """The batch-job cluster object for ``cfg`` without submitting a job (for its script)."""
    kind = cluster_kind(cfg)
    if kind.make is None:
        raise UserError(f"cluster={cfg.name} submits no worker jobs, so it has no job script")
    return kind.make(cfg, Path(output_dir), errors, launcher)
