"""One whole job (run_job) on a real local cluster: failures, provenance, labels, units."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import tifffile

from hpcseg.config.schemas import as_plain
from hpcseg.data import sources
from hpcseg.results.provenance import fingerprint
from hpcseg.results.store import Store
from hpcseg.run.job import run_job

pytestmark = pytest.mark.slow


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
    assert run_job(cfg).exit_code == 1
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
    from hpcseg.pipeline.segment import segment

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
    result = run_job(cfg)
    assert result.exit_code == 0
    parts = list(out.glob("*/part-*.parquet"))
    assert len(parts) == 2
    for part in parts:
        meta = pq.read_schema(part).metadata
        assert b"name: nuclei" in meta[b"hpcseg.config"]
        assert b'"dask-image"' in meta[b"hpcseg.versions"]
        plain = as_plain(cfg)
        geometry = {"pixel_size": None, "ndim": 2, "z_step": None}
        # what decides the rows: the pipeline (less which inputs it accepts and where its
        # stages run) and the geometry
        left_out = ("require_integer_input", "backend")
        pipeline = {k: v for k, v in plain["pipeline"].items() if k not in left_out}
        expected = fingerprint({**pipeline, **geometry, "mode": {"name": "images"}})
        assert meta[b"hpcseg.fingerprint"] == expected.encode()
    import json

    run = json.loads((out / "run.json").read_text())
    assert run["summary"]["images_ok"] == 2 and run["config"]["dataset"]["n_images"] == 2
    images = pq.read_table(out / "images").to_pylist()  # where the stages ran, and the copies
    assert {(r["backend"], r["seconds_transfer"]) for r in images} == {("numpy", 0.0)}
    assert run["versions"]["hpcseg"] and run["host"]["hostname"]
    # what a sweeper reads: the pooled mean F1 of this run, and where it is
    assert result.objective == run["summary"]["accuracy"]["f1_avg"] > 0.5
    assert result.summary == run["summary"] and result.output_dir == str(out)


def test_save_labels_writes_one_tiff_per_image(make_config, tmp_path):
    import tifffile

    from hpcseg.pipeline.segment import segment

    out = tmp_path / "out"
    cfg = make_config("dataset.n_images=3", "dataset.height=130", "dataset.width=170",
                      f"output.dir={out}", "output.save_labels=true", "cluster.n_workers=1",
                      "runner.progress=none")  # fmt: skip
    assert run_job(cfg).exit_code == 0
    records = sources.resolve(cfg.dataset).records
    assert sorted(p.name for p in (out / "labels").iterdir()) == [
        f"{r.image_id}.tif" for r in records
    ]
    diameters = dict(
        zip(*(Store(out).read_images(["image_id", "diameter"]).to_pydict().values()), strict=True)
    )
    for record in records:
        saved = tifffile.imread(out / "labels" / f"{record.image_id}.tif")
        expected = segment(tifffile.imread(record.path), cfg.pipeline)
        assert saved.dtype == np.uint16 and np.array_equal(saved, expected.labels)
        assert diameters[record.image_id] == expected.diameter  # the images column


def test_pixel_size_adds_micrometre_columns(make_config, tmp_path):
    out = tmp_path / "out"
    cfg = make_config("dataset.n_images=2", "dataset.height=130", "dataset.width=170",
                      "dataset.pixel_size=0.65", f"output.dir={out}", "cluster.n_workers=1",
                      "runner.progress=none")  # fmt: skip
    assert run_job(cfg).exit_code == 0
    objects = Store(out).read_objects()
    area, area_um2 = (np.asarray(objects.column(c)) for c in ("area", "area_um2"))
    assert len(area) > 0
    np.testing.assert_allclose(area_um2, area * 0.65**2)
    assert "centroid-0_um" in objects.column_names


def test_images_that_cannot_be_scored_are_counted_and_said(tmp_path):
    from conftest import run_cli

    images, masks = tmp_path / "img", tmp_path / "gt"
    images.mkdir()
    masks.mkdir()
    frame = np.full((60, 80), 100, np.uint16)
    frame[20:40, 20:40] = 3000
    truth = (frame > 1000).astype(np.uint16)
    for name in ("a", "b", "c"):
        tifffile.imwrite(images / f"{name}.tif", frame)
    tifffile.imwrite(masks / "a.tif", truth)
    tifffile.imwrite(masks / "b.tif", truth[:50])  # does not fit its image
    proc = run_cli("dataset=tiff_glob", f"dataset.path={images}/*.tif",
                   f"dataset.masks={masks}/*.tif", f"output.dir={tmp_path / 'out'}",
                   "cluster.n_workers=1", "runner.progress=none")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "warning: 2 image(s) could not be scored" in proc.stdout
    rows = {r["image_id"]: r for r in Store(tmp_path / "out").read_images().to_pylist()}
    assert rows["a"]["f1_50"] == 1.0 and rows["c"]["n_true"] is None
    assert "not scored: mask" in rows["b"]["error"]


def test_dataset_channel_reaches_the_workers(tmp_path):
    """A 2-channel OME-TIFF: refused without dataset.channel, segmented with it (by name)."""
    from conftest import run_cli

    folder = tmp_path / "in"
    folder.mkdir()
    nuclei = np.full((60, 80), 100, np.uint16)
    nuclei[20:40, 20:40] = 3000
    other = np.full((60, 80), 500, np.uint16)
    tifffile.imwrite(folder / "two.ome.tif", np.stack([other, nuclei]), ome=True,
                     metadata={"axes": "CYX", "Channel": {"Name": ["GFP", "DAPI"]}})  # fmt: skip
    args = ("dataset=tiff_glob", f"dataset.path={folder}/*.tif", "cluster.n_workers=1",
            "runner.progress=none")  # fmt: skip
    plain = run_cli(*args, f"output.dir={tmp_path / 'a'}")
    assert plain.returncode == 1
    error = Store(tmp_path / "a").read_images().to_pylist()[0]["error"]
    assert "has 2 channels" in error and "dataset.channel" in error
    chosen = run_cli(*args, "dataset.channel=DAPI", f"output.dir={tmp_path / 'b'}")
    assert chosen.returncode == 0, chosen.stderr
    row = Store(tmp_path / "b").read_images().to_pylist()[0]
    assert row["status"] == "ok" and row["n_objects"] == 1 and row["shape"] == [60, 80]


def test_photon_starved_images_are_counted_in_the_summary(make_config, tmp_path, capsys):
    """Two photon-starved frames among two of the demo's: their images rows carry the contrast
    to noise the worker measured (below 3, as the pipeline in process measures it), and the
    run's summary counts the two it smoothed more."""
    from hpcseg.data.synthetic import FrameStyle, synthetic_frame
    from hpcseg.pipeline.segment import segment

    folder = tmp_path / "in"
    folder.mkdir()
    frames = {
        "starved0": synthetic_frame(6, 1, (260, 348), FrameStyle(photons=0.03))[0],
        "starved1": synthetic_frame(5, 0, (260, 348), FrameStyle(photons=0.03))[0],
        "demo0": synthetic_frame(2021, 0, (260, 348))[0],
        "demo1": synthetic_frame(2021, 1, (260, 348))[0],
    }
    for name, image in frames.items():
        tifffile.imwrite(folder / f"{name}.tif", image)
    cfg = make_config("dataset=tiff_glob", f"dataset.path={folder}/*.tif",
                      f"output.dir={tmp_path / 'out'}", "cluster.n_workers=2",
                      "runner.progress=none")  # fmt: skip
    result = run_job(cfg)
    assert result.exit_code == 0
    rows = {r["image_id"]: r for r in Store(tmp_path / "out").read_images().to_pylist()}
    for name, image in frames.items():
        assert rows[name]["contrast_to_noise"] == segment(image, cfg.pipeline).contrast
    assert max(rows[n]["contrast_to_noise"] for n in ("starved0", "starved1")) < 2.0
    assert min(rows[n]["contrast_to_noise"] for n in ("demo0", "demo1")) > 5.0
    summary = result.summary["contrast_to_noise"]
    assert summary["images"] == 4 and summary["smoothed_more"] == 2
    assert "4 images, " in capsys.readouterr().out.split("contrast to noise")[1]
