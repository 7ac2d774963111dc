"""hpcseg's workers run with hpcseg's malloc tuning (hpcseg.cluster.core.malloc_settings), not
Dask's nanny's MALLOC_TRIM_THRESHOLD_=65536, both for a local cluster's workers and for the
worker command that job scripts and container workers run; and the tuning does what it is for:
a chunk-sized array allocated in a task comes from the heap, not from a fresh mmap."""

from __future__ import annotations

import ctypes
import inspect
import os
import subprocess
import sys

import dask
import numpy as np
import pytest
from distributed import Client, LocalCluster

from hpcseg.cluster import core
from hpcseg.cluster.core import (
    DASK_SETTINGS,
    DASK_WORKER_MODULE,
    MALLOC_SETTINGS,
    glibc_version,
    malloc_settings,
    wait_for_workers,
)

NAMES = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
TUNED = glibc_version() is not None and glibc_version() >= core.MALLOC_SETTINGS_FROM_GLIBC
needs_tuning = pytest.mark.skipif(
    not TUNED, reason=f"glibc {glibc_version()} here: the tuning needs glibc >= 2.35"
)


def _malloc(client: Client) -> list[dict]:
    """Each worker's malloc variables (all three; None where unset)."""
    return list(client.run(lambda: {k: os.environ.get(k) for k in NAMES}).values())


def _expected() -> dict:
    return {k: malloc_settings().get(k) for k in NAMES}


def _mmapped_by_a_chunk() -> int:
    """Bytes glibc mmaps for a 2048² float64 array (32 MiB) allocated now (mallinfo2's hblkhd
    while the array lives): 0 when the heap serves it."""

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]  # fmt: skip

    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = MallInfo2
    before = mallinfo2().hblkhd
    chunk = np.ones((2048, 2048), np.float64)
    grown = mallinfo2().hblkhd - before
    del chunk
    return int(grown)


def _clear_malloc(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MALLOC_* variables here (they win over Dask's settings, and a nanny leaves its own in
    this process's environment when it starts a worker); restored after the test."""
    for name in [k for k in os.environ if k.startswith("MALLOC_")] + list(NAMES):
        monkeypatch.delenv(name, raising=False)


def _local(n_workers: int) -> LocalCluster:
    return LocalCluster(n_workers=n_workers, processes=True, dashboard_address=None)


@pytest.mark.parametrize(
    ("version", "tuned"), [((2, 36), True), ((2, 35), True), ((2, 34), False), (None, False)]
)
def test_the_tuning_needs_glibc_2_35(monkeypatch, version, tuned):
    monkeypatch.setattr(core, "glibc_version", lambda: version)
    want = MALLOC_SETTINGS if tuned else {"MALLOC_TRIM_THRESHOLD_": None}
    assert malloc_settings() == want


def test_glibc_version_reads_this_process():
    text = os.confstr("CS_GNU_LIBC_VERSION") if "CS_GNU_LIBC_VERSION" in os.confstr_names else None
    if not text:
        assert glibc_version() is None
    else:
        assert glibc_version() == tuple(int(p) for p in text.split()[1].split(".")[:2])


@pytest.mark.slow
def test_local_cluster_workers_get_hpcseg_malloc_tuning(monkeypatch):
    _clear_malloc(monkeypatch)
    with dask.config.set(DASK_SETTINGS), _local(1) as cluster, Client(cluster) as client:
        assert _malloc(client) == [_expected()]
        if TUNED:  # in a task's thread, as a pass allocates
            assert client.submit(_mmapped_by_a_chunk, pure=False).result() == 0
    _clear_malloc(monkeypatch)
    # the checks can fail: Dask's own default sets only the trim threshold, to 64 KiB, and
    # then a chunk is a fresh mmap
    with _local(1) as cluster, Client(cluster) as client:
        assert _malloc(client) == [{"MALLOC_ARENA_MAX": None, "MALLOC_MMAP_THRESHOLD_": None,
                                    "MALLOC_TRIM_THRESHOLD_": "65536"}]  # fmt: skip
        if TUNED:
            assert client.submit(_mmapped_by_a_chunk, pure=False).result() >= 32 * 2**20


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
            assert _malloc(client) == [_expected()]
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.mark.slow
@needs_tuning
def test_this_glibc_takes_the_tuning():
    """The 64 MiB mmap threshold is accepted here (glibc before 2.35 drops it silently)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    code = "\n".join([
        "import ctypes, threading", "import numpy as np", inspect.getsource(_mmapped_by_a_chunk),
        "out = []", "th = threading.Thread(target=lambda: out.append(_mmapped_by_a_chunk()))",
        "th.start(); th.join(); print(out[0])"])  # fmt: skip

    def mmapped(extra: dict) -> int:
        done = subprocess.run([sys.executable, "-c", code], env={**env, **extra},
                              capture_output=True, text=True, check=True)  # fmt: skip
        return int(done.stdout)

    assert mmapped(MALLOC_SETTINGS) == 0
    assert mmapped({}) >= 32 * 2**20  # without it a thread's chunk is a fresh mmap
