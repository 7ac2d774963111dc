"""``cluster=local``: worker processes on this machine (``distributed.LocalCluster``).

With a container, the scheduler stays in this process and each worker is a process started
through the container's launcher (``apptainer exec ... IMAGE python -m <worker module>``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from distributed import Client, LocalCluster

from hpcseg.cluster.core import (
    DASK_WORKER_MODULE,
    ClusterKind,
    default_memory_limit,
    wait_for_workers,
)
from hpcseg.config.schemas import LocalClusterConfig, LocalGpuClusterConfig
from hpcseg.config.validate import usable_cores

log = logging.getLogger(__name__)

CONTAINER_START_TIMEOUT = 300.0  # seconds for the first container worker to connect
WORKER_STOP_TIMEOUT = 20.0  # seconds a worker gets to exit after SIGTERM before SIGKILL


@contextlib.contextmanager
def start(
    cfg: LocalClusterConfig, output_dir: Path, launcher: list[str] | None = None
) -> Iterator[Client]:
    """A local cluster (its workers inside the container when ``launcher`` is given)."""
    if launcher:
        with _launched(cfg, Path(output_dir), launcher) as client:
            yield client
        return
    n_workers = cfg.n_workers or usable_cores()
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=cfg.threads_per_worker,
            processes=True,
            memory_limit=default_memory_limit(n_workers, cfg.memory_limit),
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


def worker_command(
    launcher: list[str],
    scheduler: str,
    name: str,
    cfg: LocalClusterConfig | LocalGpuClusterConfig,
    module: str = DASK_WORKER_MODULE,
) -> list[str]:
    """One worker process's command line, inside the container (dask-cuda's, ``module``
    dask_cuda.cli, starts one worker per GPU)."""
    return [
        *launcher,
        "python",
        "-m",
        module,
        scheduler,
        "--name",
        name,
        "--nthreads",
        str(cfg.threads_per_worker),
        "--memory-limit",
        cfg.memory_limit,
    ]


@contextlib.contextmanager
def _launched(cfg: LocalClusterConfig, output_dir: Path, launcher: list[str]) -> Iterator[Client]:
    """A local scheduler and worker processes started through ``launcher`` (a container)."""
    n_workers = cfg.n_workers or usable_cores()

    def commands(scheduler: str) -> list[list[str]]:
        return [
            worker_command(launcher, scheduler, f"container-{i}", cfg) for i in range(n_workers)
        ]

    with launched(commands, output_dir, cfg.dashboard_address) as client:
        log.info(
            "local cluster: %d workers in %s; dashboard %s",
            n_workers,
            launcher[-1],
            client.dashboard_link,
        )
        yield client


@contextlib.contextmanager
def launched(
    commands: Callable[[str], list[list[str]]],
    output_dir: Path,
    dashboard_address: str,
    env: dict[str, str] | None = None,
) -> Iterator[Client]:
    """A local scheduler and the worker processes ``commands(scheduler_address)`` (through a
    container's launcher), with ``env`` added to their environment; stopped on exit."""
    log_dir = Path(output_dir) / "logs" / "workers"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (
        LocalCluster(n_workers=0, processes=True, dashboard_address=dashboard_address) as cluster,
        Client(cluster) as client,
    ):
        procs = []
        for i, cmd in enumerate(commands(cluster.scheduler_address)):
            with open(log_dir / f"container-{i}.log", "ab") as out:
                procs.append(
                    subprocess.Popen(
                        cmd,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                        env={**os.environ, **env} if env else None,
                    )
                )
        try:
            wait_for_workers(
                client, CONTAINER_START_TIMEOUT, [], dead=lambda: _exited(procs, log_dir)
            )
            yield client
        finally:
            _stop(procs)


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM every worker's process group, SIGKILL those still there after a grace time."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=WORKER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _exited(procs: list[subprocess.Popen], log_dir: Path) -> str:
    """'' while any worker process lives, else why the first one ended (its log tail)."""
    dead = [(i, p.poll()) for i, p in enumerate(procs) if p.poll() is not None]
    if len(dead) < len(procs):
        return ""
    i, code = dead[0]
    tail = (log_dir / f"container-{i}.log").read_text(errors="replace").strip().splitlines()[-3:]
    return f" (worker {i} exited with code {code}: {' | '.join(tail)})"


KIND = ClusterKind(schema=LocalClusterConfig, start=start)
