"""The contrast to noise: its measure on known images, the smoothing factor it gives, and the
default pipeline on a photon-starved frame."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.draw import disk

from hpcseg.config.compose import load_config
from hpcseg.data.synthetic import FrameStyle, synthetic_frame
from hpcseg.pipeline import noise
from hpcseg.pipeline.segment import measured_scale, segment
from hpcseg.results.evaluate import score


def _disks(shape=(300, 400), radius=12) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for cy in range(20, shape[0] - 20, 40):
        for cx in range(20, shape[1] - 20, 40):
            mask[disk((cy, cx), radius, shape=shape)] = True
    return mask


@pytest.mark.parametrize(("contrast", "sd"), [(40.0, 4.0), (12.0, 6.0), (300.0, 10.0)])
def test_contrast_to_noise_of_disks_in_white_noise(contrast, sd):
    """Disks ``contrast`` above a flat background, white noise of ``sd`` everywhere: the ratio
    is contrast / sd within 5 % (the noise read inside the disks, on neighbour differences)."""
    mask = _disks()
    rng = np.random.default_rng(int(contrast))
    image = 100.0 + contrast * mask + rng.normal(0.0, sd, mask.shape)
    got = noise.contrast_to_noise(image.astype(np.float32), mask)
    assert got == pytest.approx(contrast / sd, rel=0.05)
    # integer pixels as read: the same within rounding
    rounded = noise.contrast_to_noise(np.rint(image).astype(np.uint16), mask)
    assert rounded == pytest.approx(contrast / sd, rel=0.08)


def test_contrast_to_noise_without_noise_or_foreground():
    mask = _disks()
    assert noise.contrast_to_noise((100 + 50 * mask).astype(np.uint16), mask) == math.inf
    image = np.full(mask.shape, 100, np.uint16)
    assert noise.contrast_to_noise(image, np.zeros_like(mask)) is None  # no foreground
    assert noise.contrast_to_noise(image, np.ones_like(mask)) is None  # no background
    assert noise.contrast_to_noise((100 - 50 * mask).astype(np.uint16), mask) is None  # darker


def test_smoothing_factor():
    assert noise.smoothing_factor(None, 3.0) == 1.0
    assert noise.smoothing_factor(3.0, 3.0) == noise.smoothing_factor(30.0, 3.0) == 1.0
    assert noise.smoothing_factor(1.0, 0.0) == 1.0  # the adaptation off
    assert noise.smoothing_factor(1.5, 3.0) == 2.0  # reference / ratio
    assert noise.smoothing_factor(0.75, 3.0) == 4.0
    assert noise.smoothing_factor(2.9, 3.0) == 1.0  # within half a step of 12 %: unchanged
    assert noise.smoothing_factor(2.0, 3.0) == 2.0 ** (4 / 6)  # 1.5 on the 2^(1/6) grid
    assert noise.smoothing_factor(0.3, 3.0) == noise.smoothing_factor(0.0, 3.0) == 4.0  # the most


# a photon-starved frame (photons x0.03) whose noise breaks nuclei into pieces at the
# size's smoothing (seed and index picked for a ratio under 2)
STARVED = synthetic_frame(6, 1, (260, 348), FrameStyle(photons=0.03))


def test_a_photon_starved_frame_is_smoothed_more():
    """The default measures its contrast to noise (~1.9) and smooths 1.59x more than the size
    asks for: F1@0.7 0.84 against 0.68 with the adaptation off (``contrast_to_noise=0``),
    the same labels as that smoothing set by hand."""
    image, truth = STARVED
    auto = segment(image, load_config([]).pipeline)
    off = segment(image, load_config(["pipeline.smooth.contrast_to_noise=0"]).pipeline)
    assert auto.contrast == off.contrast < 2.0 and auto.diameter == off.diameter == 20.0
    assert score(truth, auto.labels)["f1_70"] > score(truth, off.labels)["f1_70"] + 0.1
    sigma = noise.smoothing_factor(auto.contrast, 3.0)
    assert sigma > 1.4
    by_hand = load_config(["pipeline.diameter=20", f"pipeline.smooth.sigma={sigma!r}"]).pipeline
    fixed = segment(image, by_hand)
    np.testing.assert_array_equal(fixed.labels, auto.labels)
    assert fixed.contrast is None  # a sigma given: nothing measured
    assert measured_scale(image, load_config([]).pipeline) == (auto.diameter, auto.contrast)
    # a given diameter measures the contrast all the same
    given = segment(image, load_config(["pipeline.diameter=20"]).pipeline)
    assert given.contrast == auto.contrast
    np.testing.assert_array_equal(given.labels, auto.labels)


def test_frames_with_contrast_are_smoothed_as_before():
    """The demo's frames stand well above their noise (ratio > 3): nothing changes."""
    image, _ = synthetic_frame(2021, 0)
    auto = segment(image, load_config([]).pipeline)
    off = segment(image, load_config(["pipeline.smooth.contrast_to_noise=0"]).pipeline)
    assert auto.contrast > 5
    np.testing.assert_array_equal(auto.labels, off.labels)
