"""What a batch system sends: SIGTERM (scancel, wall time) and SIGINT (Ctrl-C to the group)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from conftest import SMALL, run_cli, stored_rows

pytestmark = pytest.mark.slow
ARGS = ("dataset.n_images=40", *SMALL, "cluster.n_workers=2", "runner.batch_size=2",
        "runner.progress=log", "runner.log_interval=0.1")  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out"
    assert run_cli(*ARGS, f"output.dir={out}").returncode == 0
    return out


def _start(out) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hpcseg", *ARGS, f"output.dir={out}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip


def _wait_for_progress(proc: subprocess.Popen) -> list[str]:
    seen = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        seen.append(line)
        if "progress: " in line and "progress: 0/" not in line:
            return seen
        assert time.monotonic() < deadline
    pytest.fail("no progress line:\n" + "".join(seen))


@pytest.mark.parametrize(
    ("signum", "code", "group"), [(signal.SIGTERM, 143, False), (signal.SIGINT, 130, True)]
)
def test_a_signal_stops_cleanly_and_the_rerun_completes(reference, tmp_path, signum, code, group):
    out = tmp_path / "out"
    proc = _start(out)
    seen = _wait_for_progress(proc)
    (os.killpg if group else os.kill)(proc.pid, signum)  # SIGINT: the whole group, as Ctrl-C
    rest, _ = proc.communicate(timeout=120)
    text = "".join(seen) + rest
    assert proc.returncode == code, text
    assert f"stopped by {signal.Signals(signum).name}" in text
    assert "run the same command again to resume" in text
    assert "Traceback" not in text and "leaked semaphore" not in text, text
    rerun = run_cli(*ARGS, f"output.dir={out}")
    assert rerun.returncode == 0, rerun.stderr
    for name in ("objects", "images"):
        assert stored_rows(out, name) == stored_rows(reference, name)


def test_a_second_signal_stops_at_once(tmp_path):
    out = tmp_path / "out"
    proc = _start(out)
    _wait_for_progress(proc)
    os.kill(proc.pid, signal.SIGTERM)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, rest
    assert "Traceback" not in rest, rest
    assert re.search(r"stopping; \d+ batch\(es\) in flight", rest), rest  # never negative
