"""One writer per output folder, with real second processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import SMALL, run_cli, stored_rows

from hpcseg.errors import UserError
from hpcseg.results.lock import LOCK_NAME, output_lock

HOLD = (
    "import sys, time; from pathlib import Path; from hpcseg.results.lock import output_lock\n"
    "with output_lock(Path(sys.argv[1])):\n"
    "    print('held', flush=True); time.sleep(float(sys.argv[2]))\n"
)


def _holder(folder, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(seconds)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_process_is_refused_with_the_holder_named(tmp_path):
    holder = _holder(tmp_path, 30)
    try:
        with pytest.raises(UserError, match=rf"pid {holder.pid}") as err, output_lock(tmp_path):
            pass
        assert "output.wait_for_lock=true" in str(err.value)
    finally:
        holder.kill()
        holder.wait()
    # killed without releasing: the lock is free, and the next holder is told whose it was
    with output_lock(tmp_path) as previous:
        assert previous["pid"] == holder.pid
    with output_lock(tmp_path) as previous:
        assert previous == {}  # released cleanly this time


@pytest.mark.slow
def test_a_run_into_a_busy_folder_is_one_line_exit_2(tmp_path):
    out = tmp_path / "out"
    holder = _holder(out, 60)
    try:
        proc = run_cli("dataset.n_images=2", *SMALL, f"output.dir={out}")
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"pid {holder.pid}" in lines[0], proc.stderr
    assert not (out / "images").exists()


HOLD_UNTIL_TOLD = (
    "import sys; from pathlib import Path; from hpcseg.results.lock import output_lock\n"
    "with output_lock(Path(sys.argv[1])):\n"
    "    print('held', flush=True); sys.stdin.readline()\n"
)


@pytest.mark.slow
def test_wait_for_lock_waits_then_runs(tmp_path):
    """The run says it waits and does wait while another process holds the folder (released
    only after that, so a slow start-up cannot miss the wait), then runs."""
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_UNTIL_TOLD, str(out)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    args = ("dataset.n_images=2", *SMALL, f"output.dir={out}", "output.wait_for_lock=true")
    run = subprocess.Popen([sys.executable, "-m", "hpcseg", *args],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    said = []
    try:
        for line in run.stdout:
            said.append(line)
            if "waiting for the run writing" in line:
                break
        time.sleep(1.0)
        assert run.poll() is None, "".join(said)  # still waiting
        assert not (out / "images").exists()
        holder.communicate("\n", timeout=30)
        rest = run.communicate(timeout=300)[0]
    finally:
        for proc in (holder, run):
            proc.kill()
            proc.wait()
    assert "waiting for the run writing" in said[-1], "".join(said)
    assert run.returncode == 0, "".join(said) + rest
    assert len(stored_rows(out, "images")) == 2


@pytest.mark.slow
def test_two_real_runs_into_one_folder_never_mix(tmp_path):
    """Different batch sizes at once (today: every row twice, negative counts): one runs, the
    other is refused; the folder then holds each image once."""
    out = tmp_path / "out"
    args = ("dataset.n_images=60", *SMALL, "cluster.n_workers=1", f"output.dir={out}")
    first = subprocess.Popen([sys.executable, "-m", "hpcseg", *args, "runner.batch_size=2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not ((out / LOCK_NAME).exists() and (out / LOCK_NAME).stat().st_size):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.05)
    second = run_cli(*args, "runner.batch_size=8")
    first.communicate(timeout=300)
    assert first.returncode == 0
    assert second.returncode == 2 and f"pid {first.pid}" in second.stderr, second.stderr
    ids = [r[0] for r in stored_rows(out, "images")]
    assert len(ids) == 60 == len(set(ids))
    assert os.path.getsize(out / LOCK_NAME) == 0  # released
