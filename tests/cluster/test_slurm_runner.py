"""The driver rank of ``cluster=slurm_runner`` waits for a complete scheduler file.

The scheduler writes its file in place; a driver that starts while it is empty or half-written
must wait, not fail (a CI run failed on dask-jobqueue's own reader, which parses the file as soon
as it exists). The writer here is a real second process, which moves from an empty file to a
half-written one to a complete one only when the test says so.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from distributed.utils import json_load_robust

from hpcseg.cluster import slurm_runner
from hpcseg.config.schemas import SlurmRunnerConfig
from hpcseg.errors import UserError

ADDRESS = "tcp://127.0.0.1:1"
WRITER = """
import sys, time
from pathlib import Path
path, text = Path(sys.argv[1]), sys.argv[2]
def wait(name):
    while not (path.parent / name).exists():
        time.sleep(0.01)
path.write_text("")
wait("go-half")
with open(path, "w") as f:
    f.write(text[:10])
    f.flush()
    wait("go-rest")
    f.write(text[10:])
"""


class Writer:
    """A second process writing ``path`` in three steps: empty, half, complete."""

    def __init__(self, path: Path, address: str = ADDRESS):
        self.path = path
        self.text = json.dumps({"type": "Scheduler", "address": address, "id": "x"}, indent=2)
        self.proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), self.text])
        deadline = time.monotonic() + 30
        while not path.exists():
            assert time.monotonic() < deadline and self.proc.poll() is None, "no writer"
            time.sleep(0.01)

    def go(self, step: str) -> None:
        (self.path.parent / step).touch()

    def wait_for_half(self) -> None:
        deadline = time.monotonic() + 30
        while self.path.read_text() != self.text[:10]:
            assert time.monotonic() < deadline, "the writer did not write half the file"
            time.sleep(0.01)


def _in_thread(fn) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # reported by the test
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _still_waiting(thread: threading.Thread, out: dict, seconds: float = 0.6) -> None:
    thread.join(seconds)
    assert thread.is_alive(), f"the reader did not wait: {out}"


def test_reader_waits_for_the_complete_file(tmp_path):
    path = tmp_path / "scheduler.json"
    writer = Writer(path)
    assert path.read_text() == ""  # the writer waits for go-half
    thread, out = _in_thread(lambda: asyncio.run(slurm_runner.read_scheduler_address(path, 30)))
    _still_waiting(thread, out)  # on the empty file
    writer.go("go-half")
    writer.wait_for_half()
    _still_waiting(thread, out)  # on the half-written file
    writer.go("go-rest")
    thread.join(30)
    assert out == {"value": ADDRESS}
    assert writer.proc.wait(10) == 0


def test_reader_gives_up_with_one_line(tmp_path):
    path = tmp_path / "scheduler.json"
    path.write_text("{")
    with pytest.raises(UserError, match=r"no complete scheduler file at .* within 1 s \("):
        asyncio.run(slurm_runner.read_scheduler_address(path, timeout=1))


@pytest.mark.parametrize("text", ['{"type": "Scheduler"}', '{"address": null}', "[1]"])
def test_a_complete_file_without_an_address_is_an_error_at_once(tmp_path, text):
    path = tmp_path / "scheduler.json"
    path.write_text(text)
    started = time.monotonic()
    with pytest.raises(UserError, match="has no address"):
        asyncio.run(slurm_runner.read_scheduler_address(path, timeout=30))
    assert time.monotonic() - started < 5


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
        writer = Writer(tmp_path / "scheduler.json", address)
        cfg = SlurmRunnerConfig(tls=False, worker_timeout=30)

        def drive():
            with slurm_runner._runner(cfg, tmp_path, None) as runner:
                return runner.scheduler_address

        thread, out = _in_thread(drive)
        _still_waiting(thread, out, 1.0)  # the runner is up and reading the empty file
        writer.go("go-half")
        writer.wait_for_half()
        _still_waiting(thread, out)
        writer.go("go-rest")
        thread.join(60)
        assert out == {"value": address}
        assert writer.proc.wait(10) == 0
        assert scheduler.wait(30) == 0  # the driver's close terminated it
    finally:
        scheduler.kill()
