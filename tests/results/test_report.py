"""Report pictures: written, readable, of a sensible size and not blank."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest
from conftest import SMALL, run_cli

pytestmark = pytest.mark.slow


def assert_picture(path) -> None:
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] >= 200 and pixels.shape[1] >= 250, pixels.shape
    assert float(pixels[..., :3].std()) > 0.02  # not a blank canvas


def test_report_after_a_scored_run(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("dataset.n_images=5", *SMALL, f"output.dir={out}", "output.report=true",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in (out / "report").iterdir())
    for fixed in ("area_vs_mean_intensity.png", "histograms.png", "per_image.png"):
        assert fixed in names
    qc = [n for n in names if n.startswith("qc_")]
    assert any(n.startswith("qc_best_") for n in qc) and any(n.startswith("qc_worst_") for n in qc)
    for name in names:
        assert_picture(out / "report" / name)
    # a QC overlay shows red (prediction) and green (truth) outlines on the grey image
    rgb = mpimg.imread(out / "report" / qc[0])[..., :3]
    red = (rgb[..., 0] > 0.9) & (rgb[..., 1] < 0.3)
    green = (rgb[..., 1] > 0.8) & (rgb[..., 0] < 0.3)
    assert red.sum() > 100 and green.sum() > 100


def test_report_command_and_errors(tmp_path):
    out = tmp_path / "out"
    assert run_cli("dataset.n_images=2", *SMALL, f"output.dir={out}", cwd=tmp_path).returncode == 0
    proc = run_cli("report", str(out), "--overlays", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout.split()
    assert len(printed) >= 4 and all(p.endswith(".png") for p in printed)
    missing = run_cli("report", str(tmp_path / "nothing"), cwd=tmp_path)
    assert missing.returncode == 2 and "holds no hpcseg results" in missing.stderr


def test_overlay_colours():
    from hpcseg.results.report import overlay

    image = np.zeros((20, 20), np.uint16)
    image[5:15, 5:15] = 1000
    truth = np.zeros((20, 20), np.int32)
    truth[5:15, 5:15] = 1
    pred = np.zeros((20, 20), np.int32)
    pred[6:14, 6:14] = 1
    rgb = overlay(image, pred, truth)
    assert tuple(rgb[5, 10]) == pytest.approx((0.1, 0.9, 0.1))
    assert tuple(rgb[6, 10]) == pytest.approx((1.0, 0.15, 0.15))
    assert rgb[10, 10, 0] == rgb[10, 10, 1] == rgb[10, 10, 2]


def test_overlays_keep_every_pixel_and_say_only_what_is_drawn():
    from PIL import Image

    from hpcseg.results.report import overlay, overlay_picture

    image = np.random.default_rng(0).integers(0, 4000, (520, 696)).astype(np.uint16)
    labels = np.zeros(image.shape, np.int32)
    labels[100:140, 200:260] = 1
    native = overlay_picture(overlay(image, labels, None), "x")
    assert native.size == (696, 520 + 18)  # native resolution, under an 18-pixel caption
    small = overlay_picture(overlay(image[:100, :150], labels[:100, :150], None), "x")
    assert small.size == (150 * 4, 100 * 4 + 18)  # enlarged by a whole factor: 150 x 4 >= 600
    pixels = np.asarray(small)[18:]
    assert (pixels[::4, ::4] == pixels[3::4, 3::4]).all()  # each pixel a 4x4 block
    assert isinstance(native, Image.Image)


def test_report_names_failed_images_and_refuses_a_gone_input(tmp_path):
    from PIL import Image

    from hpcseg.results.report import _per_image

    rows = [
        {"image_id": f"img{i}", "status": "failed" if i in (1, 3) else "ok", "n_objects": 5}
        for i in range(5)
    ]
    _per_image(tmp_path / "p.png", rows)
    assert Image.open(tmp_path / "p.png").info["Description"] == "failed: img1, img3"

    from hpcseg.data.synthetic import ensure_frames

    frames = ensure_frames(tmp_path / "frames", 3, 3, (130, 170))
    out = tmp_path / "out"
    run = run_cli("dataset=tiff_glob", f"dataset.path={tmp_path}/frames/images/*.tif",
                  f"output.dir={out}", cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    first = run_cli("report", str(out), "--overlays", "2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    qc = sorted((out / "report").glob("qc_*.png"))
    assert len(qc) == 2
    assert Image.open(qc[0]).info["Description"].endswith("(red: hpcseg)")  # no truth: no green
    before = {p.name: p.stat().st_mtime_ns for p in (out / "report").iterdir()}
    sorted(frames)[0].unlink()
    gone = run_cli("report", str(out), cwd=tmp_path)
    assert gone.returncode == 2
    lines = gone.stderr.strip().splitlines()
    assert len(lines) == 1 and "is gone" in lines[0] and "--overlays 0" in lines[0], gone.stderr
    after = {p.name: p.stat().st_mtime_ns for p in (out / "report").iterdir()}
    assert after == before  # the old report stands, untouched
    assert not list(out.glob(".report-*"))
    assert run_cli("report", str(out), "--overlays", "0", cwd=tmp_path).returncode == 0


def test_plots_use_microns_when_the_pixel_size_is_known():
    import pyarrow as pa

    from hpcseg.results.report import _units

    pixels = pa.table({"area": [1], "mean_intensity": [1.0], "centroid-0": [1.0]})
    assert _units(pixels, 2)[:2] == ("area", "area (pixels)")
    microns = pixels.append_column("area_um2", [[0.4]]).append_column("centroid-0_um", [[0.6]])
    size, label, features = _units(microns, 2)
    assert (size, label) == ("area_um2", "area (µm²)")
    assert features["centroid-0"] == ("centroid-0_um", "centroid y (µm)")
    assert _units(pa.table({"volume_um3": [1.0]}), 3)[1] == "volume (µm³)"


def test_overlays_redraw_each_image_with_the_pipeline_that_made_it():
    """The image's own diameter (tiled rows the same chain), and a run from before the
    diameter (no `diameter` key) with its fixed lengths."""
    from hpcseg.config.compose import load_config
    from hpcseg.config.schemas import as_plain
    from hpcseg.results.report import _pipeline_of

    run = {"config": as_plain(load_config([]))}
    whole = _pipeline_of(run, {"mode": "images", "diameter": 35.6})
    assert (whole.diameter, str(whole.refine.method)) == ("35.6", "objects")
    assert str(_pipeline_of(run, {"mode": "tiled", "diameter": None}).refine.method) == "objects"
    old = as_plain(load_config(["pipeline=nuclei_v1"]))
    del old["pipeline"]["diameter"]
    for key in ("margin", "window"):
        del old["pipeline"]["refine"][key]
    legacy = _pipeline_of({"config": old}, {"mode": "images", "diameter": None})
    assert (legacy.refine.margin, legacy.refine.window, legacy.split.min_distance) == (3, 31, 4)
    # a run from before refine.peak_smoothing measured the bright levels on the smoothed image
    assert whole.refine.peak_smoothing is None  # (derived, d/10)
    before = as_plain(load_config([]))
    del before["pipeline"]["refine"]["peak_smoothing"]
    older = _pipeline_of({"config": before}, {"mode": "images", "diameter": 20.0})
    assert older.refine.peak_smoothing == 0.0
    # the smoothing its row's contrast to noise gave, never measured again: a photon-starved
    # image (3 / 1.5: twice the size's sigma), enough contrast or none measured (the size's)
    starved = _pipeline_of(run, {"mode": "images", "diameter": 20.0, "contrast_to_noise": 1.5})
    assert starved.smooth.sigma == 2.0 and starved.diameter == "20.0"
    for contrast in (8.0, float("nan"), None):
        row = {"mode": "images", "diameter": 30.0, "contrast_to_noise": contrast}
        assert _pipeline_of(run, row).smooth.sigma == 1.5
    # no diameter found: the reference's lengths, given (not measured again on the new sigma)
    tiled = _pipeline_of(run, {"mode": "tiled", "diameter": None, "contrast_to_noise": 1.5})
    assert tiled.smooth.sigma == 2.0 and tiled.diameter == "20.0"
    # a run from before the contrast to noise: the size's sigma whatever a new measure says
    before_noise = as_plain(load_config([]))
    del before_noise["pipeline"]["smooth"]["contrast_to_noise"]
    row = {"mode": "images", "diameter": 20.0, "contrast_to_noise": 1.5}
    assert _pipeline_of({"config": before_noise}, row).smooth.sigma == 1.0
