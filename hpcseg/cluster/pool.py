"""One Dask cluster kept open across the points of a sweep run in this process.

Hydra's basic launcher runs a sweep's points one after another in the driver; starting a
cluster for each costs seconds (worker processes, imports) that a short point cannot afford.
Inside :func:`shared_clusters`, :func:`pooled` hands every point the cluster the previous point
used when the cluster settings are the same, and starts a new one (closing the old) when they
differ. Outside it (a single run, a point in a SLURM job of its own) each run starts its own.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Hashable, Iterator
from contextlib import AbstractContextManager

from distributed import Client

log = logging.getLogger(__name__)

_active: ClusterPool | None = None


class ClusterPool:
    """At most one open cluster, keyed by the settings that started it."""

    def __init__(self) -> None:
        self._key: Hashable | None = None
        self._stack: contextlib.ExitStack | None = None
        self._client: Client | None = None
        self.started = 0  # clusters started (the benchmark and the tests read it)

    def client(self, key: Hashable, start: Callable[[], AbstractContextManager[Client]]) -> Client:
        if self._client is not None and key == self._key and _alive(self._client):
            log.info("reusing the sweep's Dask cluster")
            return self._client
        self.close()
        stack = contextlib.ExitStack()
        self._client = stack.enter_context(start())
        self._stack, self._key = stack, key
        self.started += 1
        return self._client

    def close(self) -> None:
        stack, self._stack, self._client, self._key = self._stack, None, None, None
        if stack is not None:
            stack.close()


def _alive(client: Client) -> bool:
    return client.status == "running"


@contextlib.contextmanager
def shared_clusters() -> Iterator[ClusterPool]:
    """Within this block, runs reuse one cluster (closed when the block ends)."""
    global _active
    pool = ClusterPool()
    _active = pool
    try:
        yield pool
    finally:
        _active = None
        pool.close()


@contextlib.contextmanager
def pooled(key: Hashable, start: Callable[[], AbstractContextManager[Client]]) -> Iterator[Client]:
    """``start()``'s client, or inside :func:`shared_clusters` the pool's (left open on exit)."""
    if _active is None:
        with start() as client:
            yield client
        return
    yield _active.client(key, start)
