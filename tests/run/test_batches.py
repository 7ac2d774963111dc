"""Batches on a real local Dask cluster: batching, resume, atomic parts, refusals."""

from __future__ import annotations

import pytest
from conftest import stored_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpcseg.data import sources
from hpcseg.data.records import ImageRecord
from hpcseg.results.store import Store
from hpcseg.run.batches import run_batches
from hpcseg.run.progress import Progress
from hpcseg.run.worker import BatchJob, batch_key

pytestmark = pytest.mark.slow


def make_job(cfg, out, columns=()) -> BatchJob:
    return BatchJob(
        pipeline=cfg.pipeline,
        max_pixels=cfg.dataset.max_pixels,
        out_dir=str(out),
        fingerprint="f" * 16,
        metadata_columns=tuple(columns),
        file_metadata={b"hpcseg.config": b"test"},
    )


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    from hpcseg.config.compose import load_config

    cfg = load_config(["dataset.n_images=10", "dataset.height=128", "dataset.width=160"])
    return cfg, sources.resolve(cfg.dataset).records


def run_into(client, cfg, recs, out, batch_size):
    store = Store(out)
    store.prepare("f" * 16, resume=True, overwrite=False)
    job = make_job(cfg, store.root)
    return run_batches(client, recs, job, batch_size, 0, Progress(len(recs), "none")), store


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch_size=st.integers(1, 10))
def test_results_do_not_depend_on_batch_size(client, records, tmp_path_factory, batch_size):
    cfg, recs = records
    totals, store = run_into(client, cfg, recs, tmp_path_factory.mktemp("b"), batch_size)
    reference, ref_store = run_into(client, cfg, recs, tmp_path_factory.mktemp("ref"), 10)
    assert totals.n_ok == 10 and totals.n_objects == reference.n_objects > 0
    assert stored_rows(store.root, "objects") == stored_rows(ref_store.root, "objects")
    assert stored_rows(store.root, "images") == stored_rows(ref_store.root, "images")
    assert len(list(store.images_dir.glob("part-*.parquet"))) == -(-10 // batch_size)


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=st.sets(st.integers(0, 9), max_size=9), batch_size=st.integers(1, 4))
def test_resume_is_idempotent(client, records, tmp_path_factory, first, batch_size):
    """Any subset done first, then a resumed run, gives the rows of one uninterrupted run."""
    cfg, recs = records
    out = tmp_path_factory.mktemp("resume")
    run_into(client, cfg, [recs[i] for i in sorted(first)], out, batch_size)
    done = set(Store(out).prepare("f" * 16, resume=True, overwrite=False).stored)
    assert done == {recs[i].image_id for i in first}
    _, store = run_into(client, cfg, [r for r in recs if r.image_id not in done], out, batch_size)
    _, ref_store = run_into(client, cfg, recs, tmp_path_factory.mktemp("once"), 10)
    assert stored_rows(store.root, "objects") == stored_rows(ref_store.root, "objects")
    assert stored_rows(store.root, "images") == stored_rows(ref_store.root, "images")


def test_orphan_objects_part_and_temporaries_are_cleaned(client, records, tmp_path):
    cfg, recs = records
    _, store = run_into(client, cfg, recs[:4], tmp_path, 2)
    committed = sorted(store.images_dir.glob("part-*.parquet"))
    committed[0].unlink()  # as if killed between the objects and the images rename
    (store.objects_dir / ".part-x.parquet.1234.tmp").write_bytes(b"half")
    done = set(store.prepare("f" * 16, resume=True, overwrite=False).stored)
    assert len(done) == 2
    assert sorted(p.stem for p in store.objects_dir.iterdir()) == [committed[1].stem]


def test_other_pipeline_results_are_refused(client, records, tmp_path):
    from hpcseg.errors import UserError

    cfg, recs = records
    run_into(client, cfg, recs[:2], tmp_path, 2)
    with pytest.raises(UserError, match="another pipeline configuration"):
        Store(tmp_path).prepare("0" * 16, resume=True, overwrite=False)
    assert Store(tmp_path).prepare("0" * 16, resume=True, overwrite=True).stored == {}


def test_batch_key_is_stable():
    recs = [ImageRecord(f"img{i}", f"/x/img{i}.tif") for i in range(3)]
    assert batch_key(recs) == batch_key(list(recs)) != batch_key(recs[:2])
