"""What every cluster kind shares: the kind record, worker counting, waiting for workers.

A cluster kind is one small module (``local``, ``slurm``, ``pbs``, ``slurm_runner``) that
describes itself with a :class:`ClusterKind`; :mod:`hpcseg.cluster` keeps the registry.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from distributed import Client

from hpcseg.config.schemas import GpuClusterConfig
from hpcseg.errors import UserError

log = logging.getLogger(__name__)

# the Python module that runs one Dask worker: Dask's own worker command with WORKER_SETTINGS
DASK_WORKER_MODULE = "hpcseg.cluster.dask_worker"
# dask-cuda's worker command: one worker (and nanny) per entry of CUDA_VISIBLE_DEVICES; it takes
# neither --nworkers nor --nanny nor --lifetime
DASK_CUDA_WORKER_MODULE = "dask_cuda.cli"
GPU_EXTRA = "pip install 'hpcseg[gpu]'"
WAIT_POLL_SECONDS = 0.25
# Dask settings of every process that starts worker processes (a nanny: cluster=local, the
# worker command of job scripts and containers; not the ranks of cluster=slurm_runner, which
# srun starts): glibc's malloc tuned for workers that allocate and free chunk-sized arrays,
# task after task. Dask's nanny exports MALLOC_TRIM_THRESHOLD_=65536, which makes every array
# above 128 KiB a fresh mmap, page-faulted in and zeroed on each use (8192² tiled mosaic, 2
# workers, median of 3 A/B pairs: 1.38x the wall time, 3.7x the system time). glibc's adaptive
# threshold, though, stops at 32 MiB, and a task runs in a worker thread, whose arena heaps hold
# at most 64 MiB: a 2048² chunk in float64 or int64 (32 MiB) was still a fresh mmap each time.
# So: one arena (the main heap; workers run one thread by default), arrays below 64 MiB from
# it, and at most 256 MiB of freed memory kept at its top. Measured on the 16384² mosaic (2
# workers, 2 A/B pairs, 2026-12-07): tiled 49.2-49.3 s against 51.6-51.8 s on the cluster,
# worker peak RSS 371-373 MB against 399-417 MB; the many-images mode's 200 frames 9.8-9.9 s
# against 10.2-10.3 s. glibc before 2.35 ignores an mmap threshold above 32 MiB (and then,
# with the trim threshold set, stops adapting it: 128 KiB), so there, and with another C
# library, workers only lose Dask's trim threshold, as before.
MALLOC_SETTINGS = {
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_MMAP_THRESHOLD_": str(64 * 2**20),
    "MALLOC_TRIM_THRESHOLD_": str(256 * 2**20),
}
MALLOC_SETTINGS_FROM_GLIBC = (2, 35)


def glibc_version() -> tuple[int, ...] | None:
    """This process's glibc version, e.g. (2, 36); None for another C library."""
    with contextlib.suppress(AttributeError, ValueError, OSError):
        found = re.fullmatch(r"glibc (\d+)\.(\d+).*", os.confstr("CS_GNU_LIBC_VERSION") or "")
        if found:
            return int(found[1]), int(found[2])
    return None


def malloc_settings() -> dict[str, str | None]:
    """The malloc variables a worker gets here (None: unset Dask's)."""
    version = glibc_version()
    if version is not None and version >= MALLOC_SETTINGS_FROM_GLIBC:
        return dict(MALLOC_SETTINGS)
    return {"MALLOC_TRIM_THRESHOLD_": None}


WORKER_SETTINGS = {
    f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in malloc_settings().items()
}
# Dask settings of every hpcseg scheduler: Dask retries no task whose worker died, hpcseg does
# (hpcseg.run.batches splits the batch and counts runner.retries itself); a worker is sent only
# as many tasks as it has threads, so a worker's death is blamed on the tasks it was running,
# not on others queued behind them; and the workers' settings for its nannies
DASK_SETTINGS = {
    "distributed.scheduler.allowed-failures": 0,
    "distributed.scheduler.worker-saturation": 1.0,
    **WORKER_SETTINGS,
}


@dataclass(frozen=True)
class ClusterKind:
    """How hpcseg gets a client for one kind of cluster.

    ``start(cfg, output_dir, launcher)`` is a context manager yielding a connected client and
    shutting everything down on exit; ``launcher`` (``apptainer exec ... IMAGE``) runs the
    workers' Python inside a container. ``serves(cfg)`` is true for processes that serve the
    cluster (a runner allocation's scheduler and worker ranks) instead of driving the job;
    ``whole_process_in_container``: every process, the driver too, re-executes inside the
    container (runner mode), instead of only the workers. ``make(cfg, output_dir, errors,
    launcher)``: for batch-job kinds, the cluster object without submitting anything (its job
    script can be read). ``poolable``: the points of a sweep in one process may share one
    cluster of this kind (:mod:`hpcseg.cluster.pool`).
    """

    schema: type
    start: Callable[..., AbstractContextManager[Client]]
    serves: Callable[[object], bool] = lambda cfg: False
    serve: Callable[[object, Path], None] | None = None
    whole_process_in_container: bool = False
    make: Callable[..., object] | None = None
    poolable: bool = True


def uses_gpus(cfg: object) -> bool:
    """Whether the workers of the cluster config ``cfg`` use GPUs: a GPU kind (local_gpu,
    slurm_gpu, pbs_gpu), or runner mode with dask-cuda's worker class."""
    worker_class = getattr(cfg, "worker_class", None) or ""
    return isinstance(cfg, GpuClusterConfig) or worker_class.split(".")[0] == "dask_cuda"


def import_dask_cuda(what: str):
    """The dask_cuda module, imported now (it is optional); UserError when it is missing."""
    try:
        import dask_cuda
    except ModuleNotFoundError as exc:
        if exc.name != "dask_cuda":
            raise UserError(f"{what}: dask-cuda does not import ({exc})") from None
        raise UserError(f"{what} needs dask-cuda: {GPU_EXTRA}") from None
    except ImportError as exc:
        raise UserError(f"{what}: dask-cuda does not import ({exc})") from None
    return dask_cuda


def default_memory_limit(n_workers: int, memory_limit: str) -> str | int:
    """``memory_limit`` per worker; 'auto' in a SLURM allocation is its SLURM_MEM_PER_NODE
    shared among the workers (distributed's 'auto' would share the whole node's memory)."""
    allocated = os.environ.get("SLURM_MEM_PER_NODE", "")
    if memory_limit.strip() != "auto" or not allocated.isdigit():
        return memory_limit
    return int(allocated) * 2**20 // max(1, n_workers)  # SLURM gives MiB


# the loggers distributed configures on import (distributed.config._initialize_logging_old_style)
DASK_LOGGERS = ("distributed", "distributed.client", "distributed.gc", "bokeh", "tornado",
                "tornado.application")  # fmt: skip


def quiet_workers_for_shutdown(client: Client) -> None:
    """Before a run tears its cluster down (done, or stopped with tasks still running): the
    workers' Dask loggers to CRITICAL, so a worker that outlives the scheduler by a heartbeat
    logs no traceback into the run's output (Dask's race, not an error of the run; seen once
    in CI after a finished run: "Failed to communicate with scheduler during heartbeat")."""
    with contextlib.suppress(Exception):
        client.run(_quiet_dask_in_worker, on_error="ignore")


def _quiet_dask_in_worker() -> None:
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


def quiet_dask_logs(level: int = logging.WARNING) -> None:
    """distributed sets its loggers to INFO on import; its start/stop chatter is noise here.

    Imported before logging is configured, distributed also gives its loggers a stderr handler
    of their own; once the application's logging is set up (Hydra's log), they go through it
    instead, so a scheduler-side error is a line of the job's log, not a stray traceback.
    """
    if logging.getLogger().handlers:
        for name in DASK_LOGGERS:
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True
    for name in ("distributed", "tornado"):
        logging.getLogger(name).setLevel(level)


def wait_for_workers(
    client: Client, timeout: float, errors: list[str], states=None, dead=None
) -> None:
    """Return once one worker is connected; raise UserError on a rejected job, on workers that
    all exited (``dead()`` says why), or on timeout (``states()`` adds the jobs' states)."""
    deadline = time.monotonic() + timeout
    while not client.scheduler_info(n_workers=-1)["workers"]:
        if errors:
            raise UserError(f"the batch system rejected the worker job: {error_line(errors[-1])}")
        why = dead() if dead else ""
        if why:
            raise UserError(f"every worker process exited before connecting{why}")
        if time.monotonic() > deadline:
            detail = states() if states else ""
            raise UserError(
                f"no Dask worker connected within {timeout:.0f} s{detail}; check the job logs, "
                "or raise cluster.worker_timeout if the queue is just slow"
            )
        time.sleep(WAIT_POLL_SECONDS)
    log.info("first worker connected")


def error_line(text: str) -> str:
    """The batch system's own error line in an exception's text (dask-jobqueue's, submitit's):
    the last line that says error, denied, invalid or refused, else the last line."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    telling = [ln for ln in lines if re.search(r"error|denied|invalid|refused", ln, re.I)]
    return (telling or lines or [""])[-1]
