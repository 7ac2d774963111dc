"""hpcseg's workers run with glibc's own malloc tuning (hpcseg.cluster.core.WORKER_SETTINGS):
no MALLOC_TRIM_THRESHOLD_ from Dask's nanny, both for a local cluster's workers and for the
worker command that job scripts and container workers run."""

from __future__ import annotations

import os
import subprocess
import sys

import dask
import pytest
from distributed import Client, LocalCluster

from hpcseg.cluster.core import DASK_SETTINGS, DASK_WORKER_MODULE, wait_for_workers


def _trim(client: Client) -> list:
    return list(client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_")).values())


def _local(n_workers: int) -> LocalCluster:
    return LocalCluster(n_workers=n_workers, processes=True, dashboard_address=None)


@pytest.mark.slow
def test_local_cluster_workers_keep_glibc_malloc_tuning():
    with dask.config.set(DASK_SETTINGS), _local(1) as cluster, Client(cluster) as client:
        assert _trim(client) == [None]
    # the check can fail: Dask's own default sets it
    with _local(1) as cluster, Client(cluster) as client:
        assert _trim(client) == ["65536"]


@pytest.mark.slow
def test_the_worker_command_keeps_glibc_malloc_tuning():
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    with _local(0) as cluster, Client(cluster) as client:
        cmd = [sys.executable, "-m", DASK_WORKER_MODULE, cluster.scheduler_address,
               "--nthreads", "1", "--nanny"]  # fmt: skip
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            wait_for_workers(client, 60, [])
            assert _trim(client) == [None]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
