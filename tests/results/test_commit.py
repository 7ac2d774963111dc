"""The commit protocol on real runs: damaged parts are quarantined and redone, nothing survives
without its commit, and a rerun gives exactly the rows of an uninterrupted run."""

from __future__ import annotations

import pytest
from conftest import SMALL, run_cli, stored_rows

from hpcseg.results.store import Store

pytestmark = pytest.mark.slow
ARGS = ("dataset.n_images=6", *SMALL, "runner.batch_size=2", "cluster.n_workers=2",
        "output.save_labels=true")  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out"
    assert run_cli(*ARGS, f"output.dir={out}").returncode == 0
    return out


def _truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("table", ["objects", "images"])
def test_a_truncated_part_is_quarantined_and_its_images_redone(reference, tmp_path, table):
    out = tmp_path / "out"
    assert run_cli(*ARGS, f"output.dir={out}").returncode == 0
    part = sorted((out / table).glob("part-*.parquet"))[1]
    _truncate(part)
    rerun = run_cli(*ARGS, f"output.dir={out}")
    assert rerun.returncode == 0, rerun.stderr
    assert f"damaged batch {part.name}" in rerun.stdout + rerun.stderr
    assert (out / "quarantine").is_dir() and list((out / "quarantine").rglob(part.name))
    assert "Traceback" not in rerun.stderr
    for name in ("objects", "images"):
        assert stored_rows(out, name) == stored_rows(reference, name)
    assert sorted(p.name for p in (out / "labels").iterdir()) == sorted(
        p.name for p in (reference / "labels").iterdir()
    )


def test_nothing_survives_without_its_commit(reference, tmp_path):
    """An images part lost (the batch died before committing): its objects part and label
    images are removed, its images redone."""
    out = tmp_path / "out"
    assert run_cli(*ARGS, f"output.dir={out}").returncode == 0
    images_part = sorted((out / "images").glob("part-*.parquet"))[0]
    ids = Store(out).read_images(["image_id"]).column("image_id").to_pylist()
    images_part.unlink()
    dry = run_cli(*ARGS, f"output.dir={out}", "runner.dry_run=true")
    assert dry.returncode == 0 and "2 image(s) would run, 4 already done" in dry.stdout, dry.stdout
    assert (out / "objects" / images_part.name).exists()  # a dry run changes nothing
    rerun = run_cli(*ARGS, f"output.dir={out}")
    assert rerun.returncode == 0, rerun.stderr
    assert "2 to do, 4 already done" in rerun.stdout + rerun.stderr
    assert stored_rows(out, "objects") == stored_rows(reference, "objects")
    assert sorted(Store(out).read_images(["image_id"]).column("image_id").to_pylist()) == sorted(
        ids
    )
