"""Build the Dask cluster described by the `cluster` config and hand back a client.

- ``local``: a ``distributed.LocalCluster`` of worker processes on this machine.
- ``slurm`` / ``pbs``: dask-jobqueue submits worker jobs; the driver runs where hpcseg started.
  TLS with temporary certificates by default; a rejected job or no worker within
  ``worker_timeout`` is one clear error (the batch system's own words) instead of a hang.
- ``slurm_runner``: inside one allocation (``jobs/hpcseg.sbatch``), dask-jobqueue's SLURMRunner
  makes rank 0 the scheduler, rank 1 the driver and the other ranks workers
  (:mod:`hpcseg.runner_mode`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from dask.utils import parse_bytes
from distributed import Client, LocalCluster
from distributed.core import Status

from hpcseg.config import (
    ClusterConfig,
    JobQueueClusterConfig,
    LocalClusterConfig,
    PBSClusterConfig,
    SlurmRunnerConfig,
)
from hpcseg.errors import UserError

log = logging.getLogger(__name__)


def default_workers() -> int:
    """One worker per core this process may use (respects CPU affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def quiet_dask_logs(level: int = logging.WARNING) -> None:
    """distributed sets its loggers to INFO on import; its start/stop chatter is noise here."""
    for name in ("distributed", "tornado"):
        logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def start_cluster(
    cfg: ClusterConfig, output_dir: Path, launcher: list[str] | None = None
) -> Iterator[Client]:
    """A connected client for the configured cluster; everything is shut down on exit.

    ``launcher`` (e.g. ``apptainer exec ... IMAGE``) runs the workers' Python inside a container.
    """
    quiet_dask_logs()
    if isinstance(cfg, LocalClusterConfig) and launcher:
        with _local_launched(cfg, Path(output_dir), launcher) as client:
            yield client
    elif isinstance(cfg, LocalClusterConfig):
        with _local(cfg) as client:
            yield client
    elif isinstance(cfg, JobQueueClusterConfig):
        with _jobqueue(cfg, Path(output_dir), launcher) as client:
            yield client
    elif isinstance(cfg, SlurmRunnerConfig):
        from hpcseg.runner_mode import driver_client

        with driver_client(cfg, Path(output_dir)) as client:
            yield client
    else:
        raise UserError(f"cluster={cfg.name} is not supported by this version")


@contextlib.contextmanager
def _local(cfg: LocalClusterConfig) -> Iterator[Client]:
    n_workers = cfg.n_workers or default_workers()
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=cfg.threads_per_worker,
            processes=True,
            memory_limit=cfg.memory_limit,
            dashboard_address=cfg.dashboard_address,
        ) as cluster,
        Client(cluster) as client,
    ):
        log.info(
            "local cluster: %d workers x %d thread(s); dashboard %s",
            n_workers,
            cfg.threads_per_worker,
            client.dashboard_link,
        )
        yield client


@contextlib.contextmanager
def _local_launched(
    cfg: LocalClusterConfig, output_dir: Path, launcher: list[str]
) -> Iterator[Client]:
    """A local scheduler and worker processes started through ``launcher`` (a container)."""
    n_workers = cfg.n_workers or default_workers()
    log_dir = output_dir / "logs" / "workers"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (
        LocalCluster(
            n_workers=0, processes=True, dashboard_address=cfg.dashboard_address
        ) as cluster,
        Client(cluster) as client,
    ):
        procs = []
        for i in range(n_workers):
            cmd = [
                *launcher,
                "python",
                "-m",
                "distributed.cli.dask_worker",
                cluster.scheduler_address,
                "--name",
                f"container-{i}",
                "--nthreads",
                str(cfg.threads_per_worker),
                "--memory-limit",
                cfg.memory_limit,
            ]
            with open(log_dir / f"container-{i}.log", "ab") as out:
                procs.append(
                    subprocess.Popen(
                        cmd,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
        try:
            wait_for_workers(client, 300, [], dead=lambda: _exited(procs, log_dir))
            log.info(
                "local cluster: %d workers in %s; dashboard %s",
                n_workers,
                launcher[-1],
                client.dashboard_link,
            )
            yield client
        finally:
            for proc in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 15)
            for proc in procs:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)


def _exited(procs: list[subprocess.Popen], log_dir: Path) -> str:
    """'' while any worker process lives, else why the first one ended (its log tail)."""
    dead = [(i, p.poll()) for i, p in enumerate(procs) if p.poll() is not None]
    if len(dead) < len(procs):
        return ""
    i, code = dead[0]
    tail = (log_dir / f"container-{i}.log").read_text(errors="replace").strip().splitlines()[-3:]
    return f" (worker {i} exited with code {code}: {' | '.join(tail)})"


# ------------------------------------------------------------------------------ jobqueue
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


def jobqueue_cluster(
    cfg: JobQueueClusterConfig, output_dir: Path, errors=None, launcher: list[str] | None = None
):
    """The dask-jobqueue cluster object for ``cfg`` (no job is submitted until it is scaled)."""
    from dask_jobqueue import PBSCluster, SLURMCluster

    cls = PBSCluster if isinstance(cfg, PBSClusterConfig) else SLURMCluster
    log_dir = Path(cfg.log_directory or output_dir / "logs" / "workers")
    log_dir.mkdir(parents=True, exist_ok=True)
    worker_args: list[str] = []
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
        worker_extra_args=worker_args,
        scheduler_options={"dashboard_address": cfg.dashboard_address},
        security=True if cfg.tls else None,
        shared_temp_directory=str(log_dir),
        job_cls=_recording(cls.job_cls, errors if errors is not None else []),
    )
    if launcher:
        from hpcseg.container import job_prologue, worker_python

        kwargs["python"] = worker_python(launcher)
        kwargs["job_script_prologue"] = [*kwargs["job_script_prologue"], *job_prologue()]
    elif cfg.python:
        kwargs["python"] = cfg.python
    if isinstance(cfg, PBSClusterConfig):
        mem_mb = -(-parse_bytes(cfg.memory) // 2**20)
        kwargs["resource_spec"] = cfg.resource_spec or f"select=1:ncpus={cfg.cores}:mem={mem_mb}MB"
    return cls(**kwargs)


@contextlib.contextmanager
def _jobqueue(
    cfg: JobQueueClusterConfig, output_dir: Path, launcher: list[str] | None
) -> Iterator[Client]:
    errors: list[str] = []
    try:
        cluster = jobqueue_cluster(cfg, output_dir, errors, launcher)
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
        wait_for_workers(client, cfg.worker_timeout, errors, lambda: _job_states(cluster, cfg))
        yield client


def wait_for_workers(
    client: Client, timeout: float, errors: list[str], states=None, dead=None
) -> None:
    """Return once one worker is connected; raise UserError on a rejected job, on workers that
    all exited (``dead()`` says why), or on timeout (``states()`` adds the jobs' states)."""
    deadline = time.monotonic() + timeout
    while not client.scheduler_info(n_workers=-1)["workers"]:
        if errors:
            raise UserError(f"the batch system rejected the worker job: {_reason(errors[-1])}")
        why = dead() if dead else ""
        if why:
            raise UserError(f"every worker process exited before connecting{why}")
        if time.monotonic() > deadline:
            detail = states() if states else ""
            raise UserError(
                f"no Dask worker connected within {timeout:.0f} s{detail}; check the job logs, "
                "or raise cluster.worker_timeout if the queue is just slow"
            )
        time.sleep(0.25)
    log.info("first worker connected")


def _reason(error: str) -> str:
    """The batch system's own error line from dask-jobqueue's exception text."""
    lines = [
        ln.strip() for ln in error.splitlines() if re.search(r"error|denied|invalid", ln, re.I)
    ]
    return lines[-1] if lines else error.strip().splitlines()[-1]


def _job_states(cluster, cfg: JobQueueClusterConfig) -> str:
    """' (jobs: 12 PENDING (Resources), ...)' from squeue/qstat, best effort."""
    ids = [j.job_id for j in cluster.workers.values() if getattr(j, "job_id", None)]
    if not ids:
        return " (no job was submitted)"
    if isinstance(cfg, PBSClusterConfig):
        cmd = ["qstat", *ids]
    else:
        cmd = ["squeue", "-h", "-j", ",".join(ids), "-o", "%i %T %r"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return f" (jobs {', '.join(ids)})"
    return f" (jobs: {'; '.join(out.splitlines()) or ', '.join(ids) + ' no longer queued'})"
