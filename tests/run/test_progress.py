"""Progress off a terminal: per image as workers finish them, not per batch."""

from __future__ import annotations

import re

import pytest
from conftest import SMALL, run_cli

from hpcseg.run.progress import Progress

pytestmark = pytest.mark.slow


def test_batch_logs_count_images_inside_one_batch(tmp_path):
    proc = run_cli("dataset.n_images=8", *SMALL, "runner.batch_size=8", "cluster.n_workers=1",
                   "runner.progress=log", "runner.log_interval=0.1",
                   f"output.dir={tmp_path / 'out'}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    done = [int(n) for n in re.findall(r"progress: (\d+)/8 images", proc.stdout + proc.stderr)]
    assert len(set(done)) >= 4 and max(done) == 8, done  # not one line at 100 %
    assert done == sorted(done)


def test_late_events_of_a_finished_batch_are_not_counted_twice():
    progress = Progress(4, mode="none")
    progress.image_done("b1", ok=True, n_objects=3)
    progress.batch_done("b1", 2, 0, 7)  # the batch's own totals win
    progress.image_done("b1", ok=True, n_objects=4)  # an event that arrived late
    assert (progress.done, progress.failed, progress.objects) == (2, 0, 7)
    progress.batch_done("b2", 2, 1, 0)
    assert (progress.done, progress.failed) == (4, 1)
