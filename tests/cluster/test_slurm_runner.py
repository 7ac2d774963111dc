"""The driver rank of ``cluster=slurm_runner`` waits for a complete scheduler file.

The scheduler writes its file in place; a driver that starts while it is empty or half-written
must wait, not fail (a CI run failed on dask-jobqueue's own reader, which parses the file as soon
as it exists). The writer here is a real second process.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from distributed.utils import json_load_robust

from hpcseg.cluster import slurm_runner
from hpcseg.config.schemas import SlurmRunnerConfig
from hpcseg.errors import UserError

ADDRESS = "tcp://127.0.0.1:1"


def _write_later(path: Path, delay: float, address: str = ADDRESS) -> subprocess.Popen:
    """A second process that leaves ``path`` empty, then half-written, then complete."""
    text = json.dumps({"type": "Scheduler", "address": address, "id": "x"}, indent=2)
    code = (
        "import sys, time; p, t, d = sys.argv[1], sys.argv[2], float(sys.argv[3]);"
        "open(p, 'w').close(); time.sleep(d);"
        "f = open(p, 'w'); f.write(t[:10]); f.flush(); time.sleep(d); f.write(t[10:]); f.close()"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), text, str(delay)])
    while not path.exists():
        time.sleep(0.01)
    return proc


def test_reader_waits_for_the_complete_file(tmp_path):
    path = tmp_path / "scheduler.json"
    writer = _write_later(path, 0.5)
    assert path.read_text() == ""
    assert asyncio.run(slurm_runner.read_scheduler_address(path, timeout=30)) == ADDRESS
    assert writer.wait(10) == 0


def test_reader_gives_up_with_one_line(tmp_path):
    path = tmp_path / "scheduler.json"
    path.write_text("{")
    with pytest.raises(UserError, match=r"no complete scheduler file at .* within 1 s"):
        asyncio.run(slurm_runner.read_scheduler_address(path, timeout=1))


@pytest.mark.slow
def test_driver_rank_starts_while_the_file_is_being_written(tmp_path, monkeypatch):
    """The runner as rank 1 of 3 (the driver), started while the scheduler file is empty, meets
    a real scheduler (another process) and ends it on closing, as the driver does."""
    args = ["--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0"]
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", *args, "--scheduler-file", "x"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        address = json_load_robust(tmp_path / "x", timeout=60)["address"]
        for name, value in (("SLURM_PROCID", "1"), ("SLURM_NTASKS", "3"), ("SLURM_JOB_ID", "7")):
            monkeypatch.setenv(name, value)
        writer = _write_later(tmp_path / "scheduler.json", 0.5, address)
        cfg = SlurmRunnerConfig(tls=False, worker_timeout=30)
        with slurm_runner._runner(cfg, tmp_path, None) as runner:
            assert runner.scheduler_address == address
        assert writer.wait(10) == 0
        assert scheduler.wait(30) == 0  # the driver's close terminated it
    finally:
        scheduler.kill()
