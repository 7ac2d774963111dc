"""Shared fixtures: a private synthetic cache, config loading, a Dask cluster, a CLI runner."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import standin
from distributed import Client, LocalCluster
from skimage.draw import disk

from hpcseg.cluster import jobqueue_cluster
from hpcseg.config.compose import load_config, register_configs
from hpcseg.errors import UserError
from hpcseg.run.job import preflight

register_configs()

SERVICES = ("slurm", "apptainer")  # one SLURM node, one container build: one test at a time
SERVICES_LOCK = Path(tempfile.gettempdir()) / "hpcseg-tests-services.lock"
_services_lock: list = []  # the open lock file while this process holds the lock


def _uses_services(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(name) for name in SERVICES)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A SLURM or container test runs while no other test process runs one (the test
    processes of pytest-xdist, or another pytest): an exclusive lock on one file, taken before
    its fixtures (the image build, the reference runs) are set up."""
    if _uses_services(item):
        handle = open(SERVICES_LOCK, "a")  # noqa: SIM115 (held until the teardown)
        fcntl.flock(handle, fcntl.LOCK_EX)
        _services_lock.append(handle)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Release the lock after the test's fixtures are torn down."""
    while _services_lock:
        handle = _services_lock.pop()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


@pytest.fixture(scope="session", autouse=True)
def synthetic_cache(tmp_path_factory) -> Path:
    """All tests (and their subprocesses) generate synthetic frames into one private cache."""
    cache = tmp_path_factory.mktemp("hpcseg-cache")
    os.environ["HPCSEG_CACHE_DIR"] = str(cache)
    return cache


@pytest.fixture
def make_config():
    """``make_config("pipeline=blog2021", ...)`` → validated and preflighted Config dataclasses,
    as the command line gets them."""

    def make(*overrides: str):
        cfg = load_config(list(overrides))
        preflight(cfg)
        return cfg

    return make


@pytest.fixture(scope="session")
def client():
    """One 2-worker local cluster for the tests that call the runner directly."""
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster) as c,
    ):
        yield c


def stored_rows(out: Path | str, table: str, ignore: tuple[str, ...] = ()) -> list[tuple]:
    """The rows of one output table, sorted, without run-dependent columns (timings, host)."""
    from hpcseg.results.store import Store

    store = Store(out)
    t = store.read_objects() if table == "objects" else store.read_images()
    drop = {"hostname", *ignore}
    keep = [c for c in t.column_names if not c.startswith("seconds") and c not in drop]
    return sorted(tuple(r.values()) for r in t.select(keep).to_pylist())


SMALL = ("dataset.height=260", "dataset.width=348")  # quarter-size frames for end-to-end runs


def reference_run(tmp_path_factory, n_images: int) -> Path:
    """An uncontainered local run of the default job, to compare other modes against."""
    out = tmp_path_factory.mktemp("reference") / "out"
    proc = run_cli(f"dataset.n_images={n_images}", *SMALL, f"output.dir={out}", cwd=out.parent)
    assert proc.returncode == 0, proc.stderr
    return out


def require_slurm() -> None:
    """Skip (or, with CI=true, fail) unless a SLURM controller answers."""
    why = None
    if not shutil.which("sbatch"):
        why = "sbatch is not installed"
    elif subprocess.run(["scontrol", "ping"], capture_output=True, timeout=15).returncode != 0:
        why = "scontrol ping: no controller"
    if why:
        message = f"SLURM not available ({why}); start it with `sudo jobs/local-slurm/start.sh`"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run the installed `hpcseg` entry point as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "hpcseg", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=os.environ.copy(),
    )


def two_touching_nuclei() -> np.ndarray:
    """Two bright overlapping discs on a flat background (a frame the blog merges)."""
    image = np.full((80, 100), 100, np.uint16)
    for centre in ((40, 36), (40, 63)):  # radius 15, centres 27 apart: they overlap
        rr, cc = disk(centre, 15)
        image[rr, cc] = 1000
    return image


# ------------------------------------------------------------------ the GPU code path's libraries
@pytest.fixture(params=["stand-in", pytest.param("cupy", marks=pytest.mark.gpu)])
def device(request):
    """The backend a GPU-path test runs on: the stand-in library (``standin``: NumPy through the
    GPU backend's code, always) or CuPy (marker ``gpu``; skipped with the reason where CuPy or
    a GPU is missing)."""
    if request.param == "cupy":
        from hpcseg.pipeline import gpu

        try:
            yield gpu.backend()
        except UserError as exc:
            pytest.skip(f"no GPU here: {exc}")
        return
    yield standin.register()
    standin.unregister()


@pytest.fixture
def job_script(make_config, tmp_path):
    """The job script of a batch-job cluster config (nothing is submitted)."""

    def make(*overrides, launcher=None):
        cfg = make_config(*overrides)
        cluster = jobqueue_cluster(cfg.cluster, tmp_path, launcher=launcher)
        try:
            return cluster.job_script()
        finally:
            cluster.close()

    return make
