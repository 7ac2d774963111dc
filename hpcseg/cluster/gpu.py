"""GPU nodes: ``cluster=local_gpu`` (dask-cuda's LocalCUDACluster) and ``cluster=slurm_gpu`` /
``cluster=pbs_gpu`` (dask-cuda's worker command as batch jobs, through
:mod:`hpcseg.cluster.jobqueue`).

dask-cuda starts one worker (and its nanny) per GPU it is given (``CUDA_VISIBLE_DEVICES``), each
pinned to its GPU. A batch job asks for ``cluster.gpus`` GPUs (SLURM ``--gres=gpu:N``, PBS
``ngpus=N``); its cores and memory are shared among their workers, as dask-jobqueue shares them
among a job's ``processes``. dask-cuda is optional (``pip install 'hpcseg[gpu]'``): it is
imported only when a GPU cluster starts in this process. Runner mode on GPU nodes is
:mod:`hpcseg.cluster.slurm_runner` with ``cluster.worker_class=dask_cuda.CUDAWorker``
(``jobs/hpcseg-gpu.sbatch``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from dask_jobqueue import PBSCluster, SLURMCluster
from distributed import Client

from hpcseg.cluster import jobqueue, local, pbs, slurm
from hpcseg.cluster.core import (
    DASK_CUDA_WORKER_MODULE,
    GPU_EXTRA,
    ClusterKind,
    default_memory_limit,
    error_line,
    import_dask_cuda,
)
from hpcseg.config.schemas import (
    GpuJobQueueClusterConfig,
    LocalGpuClusterConfig,
    PBSGpuClusterConfig,
    SlurmGpuClusterConfig,
)
from hpcseg.errors import UserError

log = logging.getLogger(__name__)

GPU_VARIABLE = "CUDA_VISIBLE_DEVICES"


# ------------------------------------------------------------------------------- local_gpu
def devices(cfg: LocalGpuClusterConfig) -> list[str] | None:
    """The GPUs the workers get: ``cluster.devices``, else this process's CUDA_VISIBLE_DEVICES;
    None: every GPU dask-cuda finds."""
    if cfg.devices is not None:
        return [str(d).strip() for d in cfg.devices]
    visible = os.environ.get(GPU_VARIABLE)
    return None if visible is None else [d.strip() for d in visible.split(",") if d.strip()]


@contextlib.contextmanager
def start_local(
    cfg: LocalGpuClusterConfig, output_dir: Path, launcher: list[str] | None = None
) -> Iterator[Client]:
    """One dask-cuda worker per GPU of this machine (inside the container with ``launcher``)."""
    gpus = devices(cfg)
    if launcher:
        with _launched(cfg, Path(output_dir), launcher, gpus) as client:
            yield client
        return
    dask_cuda = import_dask_cuda("cluster=local_gpu")
    memory = default_memory_limit(len(gpus), cfg.memory_limit) if gpus else cfg.memory_limit
    try:
        cluster = dask_cuda.LocalCUDACluster(
            CUDA_VISIBLE_DEVICES=gpus,
            threads_per_worker=cfg.threads_per_worker,
            memory_limit=memory,
            dashboard_address=cfg.dashboard_address,
        )
    except Exception as exc:  # no GPU, no driver, an unknown device
        raise UserError(f"cluster=local_gpu cannot start: {error_line(str(exc))}") from None
    with cluster, Client(cluster) as client:
        log.info(
            "local_gpu cluster: %d workers (GPUs %s) x %d thread(s); dashboard %s",
            len(cluster.workers),
            ",".join(map(str, cluster.cuda_visible_devices)),
            cfg.threads_per_worker,
            client.dashboard_link,
        )
        yield client


@contextlib.contextmanager
def _launched(
    cfg: LocalGpuClusterConfig, output_dir: Path, launcher: list[str], gpus: list[str] | None
) -> Iterator[Client]:
    """A local scheduler and one dask-cuda worker command inside the container (it starts a
    worker per GPU); the GPUs are handed in as the container's CUDA_VISIBLE_DEVICES."""
    env = None
    if gpus is not None:
        visible = ",".join(gpus)
        env = {GPU_VARIABLE: visible, f"APPTAINERENV_{GPU_VARIABLE}": visible}

    def commands(scheduler: str) -> list[list[str]]:
        return [local.worker_command(launcher, scheduler, "gpu", cfg, DASK_CUDA_WORKER_MODULE)]

    with local.launched(commands, output_dir, cfg.dashboard_address, env) as client:
        log.info(
            "local_gpu cluster: dask-cuda workers in %s (GPUs %s); dashboard %s",
            launcher[-1],
            ",".join(gpus) if gpus is not None else "all",
            client.dashboard_link,
        )
        yield client


# ------------------------------------------------------------------------ slurm_gpu, pbs_gpu
def _as_jobs(cfg: GpuJobQueueClusterConfig, directives: list[str]) -> GpuJobQueueClusterConfig:
    """``cfg`` as dask-jobqueue sees it: one worker process per GPU (the job's cores and memory
    shared among them), the GPU request first among the job's directives."""
    return dataclasses.replace(
        cfg, processes=cfg.gpus, job_directives=[*directives, *cfg.job_directives]
    )


def make_slurm(cfg: SlurmGpuClusterConfig, output_dir: Path, errors=None, launcher=None):
    """The SLURMCluster for ``cfg``: dask-cuda's worker, ``--gres=gpu:<gpus>`` per job."""
    jobs = _as_jobs(cfg, [f"--gres=gpu:{cfg.gpus}"])
    return jobqueue.make_cluster(
        SLURMCluster, jobs, output_dir, errors, launcher, worker_module=cfg.worker_module
    )


def resource_spec(cfg: PBSGpuClusterConfig) -> str:
    """PBS's ``-l`` line: as configured, else one chunk of the job's cores, memory and GPUs."""
    return cfg.resource_spec or f"{pbs.resource_spec(cfg)}:ngpus={cfg.gpus}"


def make_pbs(cfg: PBSGpuClusterConfig, output_dir: Path, errors=None, launcher=None):
    """The PBSCluster for ``cfg``: dask-cuda's worker, ``ngpus=<gpus>`` per job."""
    return jobqueue.make_cluster(
        PBSCluster,
        _as_jobs(cfg, []),
        output_dir,
        errors,
        launcher,
        worker_module=cfg.worker_module,
        resource_spec=resource_spec(cfg),
    )


def _check_worker_python(cfg: GpuJobQueueClusterConfig, launcher: list[str] | None) -> None:
    """Worker jobs that run this very Python need dask-cuda here too: say so now, not after
    cluster.worker_timeout."""
    if launcher or cfg.python or cfg.worker_module != DASK_CUDA_WORKER_MODULE:
        return
    if importlib.util.find_spec("dask_cuda") is None:
        raise UserError(
            f"cluster={cfg.name} needs dask-cuda: {GPU_EXTRA} (its worker jobs run this "
            "Python; or set cluster.python, or use container=apptainer with a GPU image)"
        )


def _starter(make, status_command):
    def start(cfg: GpuJobQueueClusterConfig, output_dir: Path, launcher=None):
        _check_worker_python(cfg, launcher)
        return jobqueue.running(
            lambda errors: make(cfg, Path(output_dir), errors, launcher), cfg, status_command
        )

    return start


LOCAL_KIND = ClusterKind(schema=LocalGpuClusterConfig, start=start_local)
SLURM_KIND = ClusterKind(
    schema=SlurmGpuClusterConfig,
    start=_starter(make_slurm, slurm.status_command),
    make=make_slurm,
)
PBS_KIND = ClusterKind(
    schema=PBSGpuClusterConfig, start=_starter(make_pbs, pbs.status_command), make=make_pbs
)
KINDS = (LOCAL_KIND, SLURM_KIND, PBS_KIND)
