"""hpcseg's workers run with hpcseg's malloc tuning (hpcseg.cluster.core.MALLOC_SETTINGS), not
Dask's nanny's MALLOC_TRIM_THRESHOLD_=65536, both for a local cluster's workers and for the
worker command that job scripts and container workers run."""

from __future__ import annotations

import os
import subprocess
import sys

import dask
import pytest
from distributed import Client, LocalCluster

from hpcseg.cluster.core import (
    DASK_SETTINGS,
    DASK_WORKER_MODULE,
    MALLOC_SETTINGS,
    wait_for_workers,
)


def _malloc(client: Client) -> list[dict]:
    """Each worker's malloc variables (all three; None where unset)."""
    names = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    return list(client.run(lambda: {k: os.environ.get(k) for k in names}).values())


def _clear_malloc(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MALLOC_* variables here (they win over Dask's settings, and a nanny leaves its own in
    this process's environment when it starts a worker); restored after the test."""
    for name in [k for k in os.environ if k.startswith("MALLOC_")] + list(MALLOC_SETTINGS):
        monkeypatch.delenv(name, raising=False)


def _local(n_workers: int) -> LocalCluster:
    return LocalCluster(n_workers=n_workers, processes=True, dashboard_address=None)


@pytest.mark.slow
def test_local_cluster_workers_get_hpcseg_malloc_tuning(monkeypatch):
    assert set(MALLOC_SETTINGS) == {"MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_",
                                    "MALLOC_TRIM_THRESHOLD_"}  # fmt: skip
    _clear_malloc(monkeypatch)
    with dask.config.set(DASK_SETTINGS), _local(1) as cluster, Client(cluster) as client:
        assert _malloc(client) == [MALLOC_SETTINGS]
    _clear_malloc(monkeypatch)
    # the check can fail: Dask's own default sets only the trim threshold, to 64 KiB
    with _local(1) as cluster, Client(cluster) as client:
        assert _malloc(client) == [{"MALLOC_ARENA_MAX": None, "MALLOC_MMAP_THRESHOLD_": None,
                                    "MALLOC_TRIM_THRESHOLD_": "65536"}]  # fmt: skip


@pytest.mark.slow
def test_the_worker_command_gets_hpcseg_malloc_tuning():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    with _local(0) as cluster, Client(cluster) as client:
        cmd = [sys.executable, "-m", DASK_WORKER_MODULE, cluster.scheduler_address,
               "--nthreads", "1", "--nanny"]  # fmt: skip
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            wait_for_workers(client, 60, [])
            assert _malloc(client) == [MALLOC_SETTINGS]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
