"""Build the Dask cluster described by the `cluster` config and hand back a client."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from distributed import Client, LocalCluster

from hpcseg.config import ClusterConfig, LocalClusterConfig
from hpcseg.errors import UserError

log = logging.getLogger(__name__)


def default_workers() -> int:
    """One worker per core this process may use (respects SLURM/cgroup CPU affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def start_cluster(cfg: ClusterConfig) -> Iterator[Client]:
    """A connected client for the configured cluster; everything is shut down on exit."""
    # distributed sets its own loggers to INFO when imported; its start-up chatter is noise here
    for name in ("distributed", "tornado"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if isinstance(cfg, LocalClusterConfig):
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
        return
    raise UserError(f"cluster={cfg.name} is not supported by this version")
