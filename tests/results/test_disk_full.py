"""Disk full on a real small filesystem (a 256 KiB tmpfs): one clear line, exit 1, nothing left
without its commit, and the rerun after freeing space gives the rows of an uninterrupted run."""

from __future__ import annotations

import os
import subprocess

import pytest
from conftest import SMALL, run_cli, stored_rows

pytestmark = pytest.mark.slow
ARGS = ("dataset.n_images=8", *SMALL, "cluster.n_workers=1", "runner.batch_size=2",
        "output.save_labels=true", "runner.progress=none")  # fmt: skip


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        message = f"cannot mount a tmpfs ({done.stderr.strip()}); run as root"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _errors(proc) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("hpcseg: error:")]


def test_disk_full_is_one_line_and_resumable(small_disk, tmp_path):
    reference = tmp_path / "ref"
    assert run_cli(*ARGS, f"output.dir={reference}").returncode == 0
    out = small_disk / "out"
    full = run_cli(*ARGS, f"output.dir={out}")
    text = full.stdout + full.stderr
    assert full.returncode == 1, text
    assert "Traceback" not in text, text
    assert len(_errors(full)) == 1 and "No space left on device" in _errors(full)[0], text
    committed = {p.name for p in (out / "images").glob("part-*.parquet")}
    assert {p.name for p in (out / "objects").glob("part-*.parquet")} <= committed
    labelled = (
        {p.stem for p in (out / "labels").glob("*.tif")} if (out / "labels").exists() else set()
    )
    if committed:
        stored = {r[0] for r in stored_rows(out, "images")}
        assert labelled <= stored
    else:
        assert not labelled
    again = run_cli(*ARGS, f"output.dir={out}")  # still full: Hydra cannot even write its log
    assert again.returncode == 1 and "Traceback" not in again.stderr, again.stderr
    assert len(_errors(again)) == 1, again.stderr
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    resumed = run_cli(*ARGS, f"output.dir={out}")
    assert resumed.returncode == 0, resumed.stderr
    for name in ("objects", "images"):
        assert stored_rows(out, name) == stored_rows(reference, name)
    assert sorted(p.name for p in (out / "labels").iterdir()) == sorted(
        p.name for p in (reference / "labels").iterdir()
    )
