"""Runner + store on a real local Dask cluster: failures, batching, resume, atomic parts."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import tifffile
from conftest import stored_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpcseg.app import run_job
from hpcseg.data import sources
from hpcseg.progress import Progress
from hpcseg.provenance import fingerprint
from hpcseg.runner import run_batches
from hpcseg.store import Store
from hpcseg.worker import BatchJob, batch_key

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
    from hpcseg.cli import load_config

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
    done = Store(out).prepare("f" * 16, resume=True, overwrite=False)
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
    done = store.prepare("f" * 16, resume=True, overwrite=False)
    assert len(done) == 2
    assert sorted(p.stem for p in store.objects_dir.iterdir()) == [committed[1].stem]


def test_other_pipeline_results_are_refused(client, records, tmp_path):
    from hpcseg.errors import UserError

    cfg, recs = records
    run_into(client, cfg, recs[:2], tmp_path, 2)
    with pytest.raises(UserError, match="another pipeline configuration"):
        Store(tmp_path).prepare("0" * 16, resume=True, overwrite=False)
    assert Store(tmp_path).prepare("0" * 16, resume=True, overwrite=True) == set()


def test_bad_images_fail_alone_and_exit_1(make_config, tmp_path, capsys):
    from skimage.draw import disk

    folder = tmp_path / "in"
    folder.mkdir()
    good = np.full((100, 120), 100, np.uint16)
    for centre in ((30, 30), (60, 80)):
        good[disk(centre, 10)] = 2000
    for i in range(3):
        tifffile.imwrite(folder / f"good{i}.tif", good)
    tifffile.imwrite(folder / "float.tif", good.astype(np.float64))
    tifffile.imwrite(folder / "huge.tif", np.zeros((600, 600), np.uint16))
    (folder / "broken.tif").write_bytes((folder / "good0.tif").read_bytes()[:300])
    cfg = make_config(
        "dataset=tiff_glob",
        f"dataset.path={folder}/*.tif",
        "dataset.max_pixels=100000",
        f"output.dir={tmp_path / 'out'}",
        "cluster.n_workers=2",
        "runner.batch_size=4",
        "runner.progress=none",
    )
    assert run_job(cfg) == 1
    store = Store(tmp_path / "out")
    images = {r["image_id"]: r for r in store.read_images().to_pylist()}
    assert {i for i, r in images.items() if r["status"] == "ok"} == {"good0", "good1", "good2"}
    assert "floating point" in images["float"]["error"]
    assert "exceed dataset.max_pixels=100000" in images["huge"]["error"]
    assert "cannot read TIFF" in images["broken"]["error"]
    assert all(images[f"good{i}"]["n_objects"] == 2 for i in range(3))
    assert images["good0"]["background"] == 100.0  # the flat background of the test image
    assert images["good0"]["area_total"] == 2 * images["good0"]["area_mean"]
    objects = store.read_objects().to_pylist()
    from hpcseg.pipeline.run import segment

    expected = segment(good, cfg.pipeline).objects["area"].tolist()
    assert len(objects) == 6 and sorted(o["area"] for o in objects) == sorted(expected * 3)
    assert all(280 < a < 340 for a in expected)  # a disk of radius 10 has 305 pixels
    out = capsys.readouterr().out
    assert "6 images: 3 ok, 3 failed" in out and "6 objects" in out


def test_parts_carry_config_and_versions(make_config, tmp_path):
    out = tmp_path / "out"
    cfg = make_config(
        "dataset.n_images=2", f"output.dir={out}", "cluster.n_workers=1", "runner.progress=none"
    )
    assert run_job(cfg) == 0
    parts = list(out.glob("*/part-*.parquet"))
    assert len(parts) == 2
    for part in parts:
        meta = pq.read_schema(part).metadata
        assert b"name: nuclei" in meta[b"hpcseg.config"]
        assert b'"dask-image"' in meta[b"hpcseg.versions"]
        plain = __import__("hpcseg.app", fromlist=["_plain"])._plain(cfg)
        geometry = {"pixel_size": None, "ndim": 2, "z_step": None}
        expected = fingerprint({**plain["pipeline"], **geometry})
        assert meta[b"hpcseg.fingerprint"] == expected.encode()
    import json

    run = json.loads((out / "run.json").read_text())
    assert run["summary"]["images_ok"] == 2 and run["config"]["dataset"]["n_images"] == 2
    assert run["versions"]["hpcseg"] and run["host"]["hostname"]


def test_save_labels_writes_one_tiff_per_image(make_config, tmp_path):
    import tifffile

    from hpcseg.pipeline.run import segment

    out = tmp_path / "out"
    cfg = make_config("dataset.n_images=3", "dataset.height=130", "dataset.width=170",
                      f"output.dir={out}", "output.save_labels=true", "cluster.n_workers=1",
                      "runner.progress=none")  # fmt: skip
    assert run_job(cfg) == 0
    records = sources.resolve(cfg.dataset).records
    assert sorted(p.name for p in (out / "labels").iterdir()) == [
        f"{r.image_id}.tif" for r in records
    ]
    for record in records:
        saved = tifffile.imread(out / "labels" / f"{record.image_id}.tif")
        expected = segment(tifffile.imread(record.path), cfg.pipeline).labels
        assert saved.dtype == np.uint16 and np.array_equal(saved, expected)


def test_pixel_size_adds_micrometre_columns(make_config, tmp_path):
    out = tmp_path / "out"
    cfg = make_config("dataset.n_images=2", "dataset.height=130", "dataset.width=170",
                      "dataset.pixel_size=0.65", f"output.dir={out}", "cluster.n_workers=1",
                      "runner.progress=none")  # fmt: skip
    assert run_job(cfg) == 0
    objects = Store(out).read_objects()
    area, area_um2 = (np.asarray(objects.column(c)) for c in ("area", "area_um2"))
    assert len(area) > 0
    np.testing.assert_allclose(area_um2, area * 0.65**2)
    assert "centroid-0_um" in objects.column_names


def test_batch_key_is_stable():
    recs = [sources.ImageRecord(f"img{i}", f"/x/img{i}.tif") for i in range(3)]
    assert batch_key(recs) == batch_key(list(recs)) != batch_key(recs[:2])
