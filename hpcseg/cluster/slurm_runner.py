"""`cluster=slurm_runner`: scheduler, driver and workers inside one SLURM allocation.

``jobs/hpcseg.sbatch`` starts ``hpcseg cluster=slurm_runner ...`` once per task with ``srun``.
dask-jobqueue's SLURMRunner gives each task a role from ``SLURM_PROCID``: rank 0 runs the
scheduler, rank 1 continues as hpcseg's driver, every other rank runs one worker. They meet
through a scheduler file in a shared folder. With TLS (the default) rank 0 first writes a
temporary certificate and key there (mode 0600), which the other ranks wait for and load. On GPU
nodes (``jobs/hpcseg-gpu.sbatch``) the worker ranks run ``cluster.worker_class``
(``dask_cuda.CUDAWorker``: one worker per GPU the rank sees) instead of Dask's worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import dask
from dask_jobqueue.slurm import SLURMRunner
from distributed import Client
from distributed.core import rpc
from distributed.security import Security
from distributed.utils import import_term

from hpcseg.cluster.core import (
    DASK_SETTINGS,
    GPU_EXTRA,
    ClusterKind,
    quiet_dask_logs,
    wait_for_workers,
)
from hpcseg.config.schemas import SlurmRunnerConfig
from hpcseg.errors import UserError

log = logging.getLogger(__name__)
DRIVER_RANK = 1


def slurm_rank() -> int:
    try:
        return int(os.environ["SLURM_PROCID"])
    except KeyError:
        raise UserError(
            "cluster=slurm_runner runs inside an allocation, one task per process: submit it with "
            "`sbatch jobs/hpcseg.sbatch <overrides>` (or use cluster=slurm from a login node)"
        ) from None


def is_service_rank(cfg: SlurmRunnerConfig) -> bool:
    """True for the ranks of the allocation that serve (scheduler, workers), not drive."""
    return slurm_rank() != DRIVER_RANK


def _job_dir(cfg: SlurmRunnerConfig, output_dir: str | Path) -> Path:
    base = Path(cfg.shared_dir).expanduser() if cfg.shared_dir else Path(output_dir) / ".runner"
    return base.absolute() / f"job-{os.environ.get('SLURM_JOB_ID', 'local')}"


def _write_certificates(folder: Path) -> None:
    """A fresh self-signed key/certificate for every role, readable by this user only."""
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True, mode=0o700)
    sec = Security.temporary()
    for name, text in (
        ("ca.pem", sec.tls_ca_file),
        ("cert.pem", sec.tls_scheduler_cert),
        ("key.pem", sec.tls_scheduler_key),
    ):
        path = tmp / name
        path.touch(mode=0o600)
        path.write_text(text)
    tmp.rename(folder)


def _security(
    cfg: SlurmRunnerConfig, job_dir: Path, create: bool, timeout: float
) -> Security | None:
    if not cfg.tls:
        return None
    tls_dir = job_dir / "tls"
    if create:
        job_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_certificates(tls_dir)
    deadline = time.monotonic() + timeout
    while not tls_dir.exists():
        if time.monotonic() > deadline:
            raise UserError(f"no TLS certificates appeared in {tls_dir} within {timeout:.0f} s")
        time.sleep(0.2)
    ca, cert, key = (str(tls_dir / n) for n in ("ca.pem", "cert.pem", "key.pem"))
    roles = ("scheduler", "worker", "client")
    paths = {f"tls_{r}_{kind}": p for r in roles for kind, p in (("cert", cert), ("key", key))}
    return Security(tls_ca_file=ca, require_encryption=True, **paths)


def _worker_class(cfg: SlurmRunnerConfig) -> dict:
    """The runner's ``worker_class`` option for ``cluster.worker_class`` (every rank imports
    it); UserError when it cannot be imported."""
    if not cfg.worker_class:
        return {}
    try:
        import_term(cfg.worker_class)
    except (ImportError, AttributeError) as exc:
        hint = f"; {GPU_EXTRA}" if cfg.worker_class.startswith("dask_cuda.") else ""
        raise UserError(
            f"cluster.worker_class={cfg.worker_class} cannot be imported ({exc}){hint}"
        ) from None
    return {"worker_class": cfg.worker_class}


async def read_scheduler_address(path: Path, timeout: float) -> str:
    """The scheduler's address from its scheduler file, once the file is complete.

    The scheduler writes the file in place (open, then dump), so a reader can find it missing,
    empty or half-written; dask-jobqueue's SLURMRunner parses it the moment it exists and fails
    on that. Distributed's workers already retry (``json_load_robust``); this does the same for
    the driver. A complete file without an address is an error at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError) as exc:  # not there yet, or still being written
            if time.monotonic() > deadline:
                raise UserError(
                    f"no complete scheduler file at {path} within {timeout:.0f} s ({exc})"
                ) from None
            await asyncio.sleep(0.2)
            continue
        address = info.get("address") if isinstance(info, dict) else None
        if not isinstance(address, str) or not address:
            raise UserError(f"the scheduler file {path} has no address: {info!r:.200}")
        return address


def _runner(cfg: SlurmRunnerConfig, job_dir: Path, security: Security | None):
    class Runner(SLURMRunner):
        async def get_scheduler_address(self) -> str:
            return await read_scheduler_address(self.scheduler_file, cfg.worker_timeout)

        async def before_client_start(self) -> None:  # the base class's rpc has no TLS context
            if security is not None:
                args = security.get_connection_args("client")
                self.scheduler_comm = rpc(self.scheduler_address, connection_args=args)

    protocol = {"protocol": "tls"} if security is not None else {}
    interface = {"interface": cfg.interface} if cfg.interface else {}
    return Runner(
        scheduler_file=str(job_dir / "scheduler.json"),
        scheduler_options={
            "security": security,
            "dashboard_address": cfg.dashboard_address,
            **protocol,
            **interface,
        },
        worker_options={"security": security, "nthreads": 1, **interface},
        **_worker_class(cfg),
    )


def serve_rank(cfg: SlurmRunnerConfig, output_dir: str | Path) -> None:
    """Run this rank's scheduler or worker until the driver shuts the cluster down."""
    quiet_dask_logs(logging.ERROR)  # a worker losing the scheduler at the end is expected
    rank = slurm_rank()
    job_dir = _job_dir(cfg, output_dir)
    security = _security(cfg, job_dir, create=rank == 0, timeout=cfg.worker_timeout)
    if rank == 0:
        log.info("rank 0: scheduler")
    else:
        log.info(
            "rank %d: worker (%s, CUDA_VISIBLE_DEVICES=%s)",
            rank,
            cfg.worker_class or "Dask's worker",
            os.environ.get("CUDA_VISIBLE_DEVICES", "unset"),
        )
    # how SLURMRunner ends these processes: KeyboardInterrupt
    with contextlib.suppress(KeyboardInterrupt), dask.config.set(DASK_SETTINGS):
        _runner(cfg, job_dir, security)


@contextlib.contextmanager
def driver_client(
    cfg: SlurmRunnerConfig, output_dir: Path, launcher: list[str] | None = None
) -> Iterator[Client]:
    """Rank 1: a client of the allocation's scheduler, with at least one worker connected.

    (``launcher`` is unused: in runner mode every rank already runs inside the container.)
    """
    job_dir = _job_dir(cfg, output_dir)
    security = _security(cfg, job_dir, create=False, timeout=cfg.worker_timeout)
    with _runner(cfg, job_dir, security) as runner, Client(runner, security=security) as client:
        wait_for_workers(client, cfg.worker_timeout, [])
        n = len(client.scheduler_info(n_workers=-1)["workers"])
        log.info(
            "slurm_runner: scheduler %s, %d worker(s) so far, dashboard %s",
            runner.scheduler_address,
            n,
            client.dashboard_link,
        )
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.shutdown()  # stops the scheduler, so the worker ranks exit too
    shutil.rmtree(job_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        job_dir.parent.rmdir()  # only if no other job uses it


KIND = ClusterKind(
    schema=SlurmRunnerConfig,
    start=driver_client,
    serves=is_service_rank,
    serve=serve_rank,
    whole_process_in_container=True,
    poolable=False,  # the driver's client ends the allocation's cluster when it closes
)
