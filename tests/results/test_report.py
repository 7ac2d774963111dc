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
