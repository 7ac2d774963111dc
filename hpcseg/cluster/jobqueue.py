"""Workers as batch jobs through dask-jobqueue; the driver runs where hpcseg started.

What SLURM and PBS share lives here; :mod:`hpcseg.cluster.slurm` and :mod:`hpcseg.cluster.pbs`
add their scheduler's class, options and status command (dask-jobqueue's own layout). TLS with
temporary certificates by default; a rejected job or no worker within ``worker_timeout`` is one
clear error (the batch system's own words) instead of a hang.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from distributed import Client
from distributed.core import Status

from hpcseg.cluster.apptainer import job_prologue, worker_python
from hpcseg.cluster.core import DASK_CUDA_WORKER_MODULE, DASK_WORKER_MODULE, wait_for_workers
from hpcseg.config.schemas import JobQueueClusterConfig
from hpcseg.errors import UserError

log = logging.getLogger(__name__)

STATUS_TIMEOUT = 10.0  # seconds for squeue/qstat when explaining a timeout


def _recording(job_cls: type, errors: list[str]) -> type:
    """A job class that records in ``errors`` why its submission failed (dask-jobqueue only
    logs it), then re-raises."""

    class RecordingJob(job_cls):
        async def start(self):
            try:
                await super().start()
            except Exception as exc:
                errors.append(str(exc))
                self.status = Status.failed  # lets the cluster close cleanly afterwards
                raise

    RecordingJob.__name__ = job_cls.__name__
    return RecordingJob


def make_cluster(
    cluster_cls: type,
    cfg: JobQueueClusterConfig,
    output_dir: Path,
    errors: list[str] | None = None,
    launcher: list[str] | None = None,
    worker_module: str = DASK_WORKER_MODULE,
    **scheduler_kwargs,
):
    """The dask-jobqueue cluster object for ``cfg`` (no job is submitted until it is scaled);
    ``scheduler_kwargs`` are the scheduler-specific options of ``cluster_cls``."""
    log_dir = Path(cfg.log_directory or output_dir / "logs" / "workers")
    log_dir.mkdir(parents=True, exist_ok=True)
    worker_args: list[str] = []
    # jobqueue adds these for Dask's own worker command only; dask-cuda's takes neither
    if worker_module not in ("distributed.cli.dask_worker", DASK_CUDA_WORKER_MODULE):
        worker_args += [*(["--nworkers", str(cfg.processes)] if cfg.processes > 1 else []),
                        "--nanny"]  # fmt: skip
    if cfg.worker_lifetime:
        worker_args += [
            "--lifetime",
            cfg.worker_lifetime,
            "--lifetime-stagger",
            cfg.lifetime_stagger,
        ]
    kwargs = dict(
        cores=cfg.cores,
        processes=cfg.processes,
        memory=cfg.memory,
        walltime=cfg.walltime,
        queue=cfg.queue,
        account=cfg.account,
        job_name=cfg.job_name,
        job_extra_directives=list(cfg.job_directives),
        job_script_prologue=list(cfg.prologue),
        interface=cfg.interface,
        local_directory=cfg.local_directory,
        log_directory=str(log_dir),
        worker_command=worker_module,
        worker_extra_args=worker_args,
        scheduler_options={"dashboard_address": cfg.dashboard_address},
        security=True if cfg.tls else None,
        shared_temp_directory=str(log_dir),
        job_cls=_recording(cluster_cls.job_cls, errors if errors is not None else []),
        **scheduler_kwargs,
    )
    if launcher:
        kwargs["python"] = worker_python(launcher)
        kwargs["job_script_prologue"] = [*kwargs["job_script_prologue"], *job_prologue()]
    elif cfg.python:
        kwargs["python"] = cfg.python
    return cluster_cls(**kwargs)


@contextlib.contextmanager
def running(
    cluster_factory: Callable[[list[str]], object],
    cfg: JobQueueClusterConfig,
    status_command: Callable[[list[str]], list[str]],
) -> Iterator[Client]:
    """Submit the worker jobs, wait for the first worker, yield a client; close all on exit.

    ``cluster_factory(errors)`` makes the cluster object; ``status_command(job_ids)`` is the
    scheduler's status query, used to explain a timeout.
    """
    errors: list[str] = []
    try:
        cluster = cluster_factory(errors)
    except Exception as exc:  # bad memory/walltime strings and the like
        raise UserError(f"cluster={cfg.name}: {exc}") from None
    with cluster, Client(cluster) as client:
        if cfg.adapt:
            cluster.adapt(minimum_jobs=cfg.min_jobs, maximum_jobs=cfg.max_jobs)
        else:
            cluster.scale(jobs=cfg.jobs)
        log.info(
            "%s cluster: scheduler %s, dashboard %s; job script:\n%s",
            cfg.name,
            cluster.scheduler_address,
            client.dashboard_link,
            cluster.job_script(),
        )
        wait_for_workers(
            client, cfg.worker_timeout, errors, lambda: _states(cluster, status_command)
        )
        yield client


def _states(cluster, status_command: Callable[[list[str]], list[str]]) -> str:
    """' (jobs: 12 PENDING (Resources), ...)' from squeue/qstat, best effort."""
    ids = [j.job_id for j in cluster.workers.values() if getattr(j, "job_id", None)]
    if not ids:
        return " (no job was submitted)"
    try:
        out = subprocess.run(
            status_command(ids), capture_output=True, text=True, timeout=STATUS_TIMEOUT
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return f" (jobs {', '.join(ids)})"
    return f" (jobs: {'; '.join(out.splitlines()) or ', '.join(ids) + ' no longer queued'})"
