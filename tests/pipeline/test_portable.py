"""The GPU code path on NumPy: the portable scikit-image functions and the batched stages.

A CuPy run uses :mod:`hpcseg.pipeline.portable` for scikit-image's functions and the batched
(whole-array) variants of the split. The ``device`` fixture (conftest) runs these tests on a
stand-in array library (a NumPy subclass whose namespaces hand back the stand-in type, as
CuPy's would), so everything but CuPy itself is checked without a GPU, and on CuPy itself where
a GPU is (marker ``gpu``), against the NumPy backend's results.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import skimage.filters
import skimage.segmentation

from hpcseg.config.compose import load_config
from hpcseg.data.synthetic import synthetic_frame
from hpcseg.pipeline import portable
from hpcseg.pipeline.backend import backend_of
from hpcseg.pipeline.histogram import histogram
from hpcseg.pipeline.segment import segment
from hpcseg.results.evaluate import overlaps, score, tp_column


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
def test_otsu_equals_skimage(dtype):
    rng = np.random.default_rng(3)
    for _ in range(20):
        image = rng.gamma(2.0, 300.0, size=(40, 50)) - (50 if dtype == np.int16 else 0)
        image = image.clip(0 if dtype in (np.uint8, np.uint16) else None, 250 if dtype ==
                           np.uint8 else None).astype(dtype)  # fmt: skip
        assert portable.threshold_otsu(image) == skimage.filters.threshold_otsu(image)
        # of the histogram already made (threshold.lower's path): the same value
        assert portable.threshold_otsu(hist=histogram(image)) == (
            skimage.filters.threshold_otsu(image)
        )
    flat = np.full((4, 4), 7, dtype)
    assert portable.threshold_otsu(flat) == skimage.filters.threshold_otsu(flat) == 7


def test_li_equals_skimage():
    image = np.random.default_rng(4).gamma(2.0, 300.0, size=(60, 70)).astype(np.float32)
    assert portable.threshold_li(image) == skimage.filters.threshold_li(image)


def test_clear_border_equals_skimage_on_one_piece_objects():
    image, _ = synthetic_frame(5, 1, shape=(128, 160))
    labels, _ = scipy.ndimage.label(image > skimage.filters.threshold_otsu(image))
    assert labels.max() > 10
    for crop in (labels, labels[7:90, 13:150], labels[:1, :]):
        np.testing.assert_array_equal(
            portable.clear_border(crop), skimage.segmentation.clear_border(crop)
        )


def _frames(n: int):
    return [synthetic_frame(7, i)[0] for i in range(n)]


def test_blog2021_labels_are_exact(device):
    cfg = load_config(["pipeline=blog2021"]).pipeline
    for image in _frames(3):
        plain = segment(image, cfg)
        on_device = segment(device.from_host(image), cfg)
        assert backend_of(on_device.labels) is device
        np.testing.assert_array_equal(device.to_host(on_device.labels), plain.labels)
        for name, values in plain.objects.items():  # float sums: atomics reorder them on a GPU
            got = device.to_host(on_device.objects[name])
            if values.dtype.kind == "f":
                np.testing.assert_allclose(got, values, rtol=1e-12, atol=1e-12, err_msg=name)
            else:
                np.testing.assert_array_equal(got, values, name)


@pytest.mark.parametrize("preset", ["nuclei", "nuclei_refined"])
def test_nuclei_on_the_gpu_path_matches_the_cpu_path(device, preset):
    """Differences come from the batched distance transform (diagonal contacts) and the
    flood's ties. Measured on the stand-in, 4 frames: of the foreground, 99.99 % (nuclei) and
    99.94 % (nuclei_refined) of pixels lie in objects both paths found alike (IoU > 0.5);
    F1@0.9 against the NumPy labels 1.0 for both."""
    cfg = load_config([f"pipeline={preset}"]).pipeline
    same = total = matched = objects = 0
    for image in _frames(4):
        plain = segment(image, cfg).labels
        got = device.to_host(segment(device.from_host(image), cfg).labels)
        _, _, inter, iou, _, _ = overlaps(plain, got)
        same += int(inter[iou > 0.5].sum())  # pixels of objects both paths found alike
        total += int(((plain > 0) | (got > 0)).sum())
        scores = score(plain, got)
        matched += scores[tp_column(0.9)]
        objects += scores["n_true"] + scores["n_pred"]
    assert same / total >= 0.999
    assert 2 * matched / objects >= 0.99
