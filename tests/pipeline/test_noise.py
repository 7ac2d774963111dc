"""The contrast to noise: its measure on known images, the smoothing factor it gives, and the
default pipeline on a photon-starved frame."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.draw import disk

from hpcseg.config.compose import load_config
from hpcseg.data.synthetic import FrameStyle, synthetic_frame
from hpcseg.pipeline import diameter, noise
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
    assert noise.contrast_to_noise((100 + 50 * mask).astype(np.uint16), mask) is None  # no noise
    image = np.full(mask.shape, 100, np.uint16)
    assert noise.contrast_to_noise(image, np.zeros_like(mask)) is None  # no foreground
    assert noise.contrast_to_noise(image, np.ones_like(mask)) is None  # no background
    assert noise.contrast_to_noise((100 - 50 * mask).astype(np.uint16), mask) is None  # darker


def test_nan_padding_is_left_out():
    """A float mosaic padded with NaN (never foreground): measured on its finite pixels."""
    mask = _disks()
    image = (100.0 + 40.0 * mask + np.random.default_rng(5).normal(0, 4, mask.shape)).astype(
        np.float32
    )
    padded = np.pad(image, ((0, 0), (0, 200)), constant_values=np.nan)
    wide = np.pad(mask, ((0, 0), (0, 200)))
    assert noise.contrast_to_noise(padded, wide) == pytest.approx(10.0, rel=0.05)


def test_few_counts_a_pixel_read_as_noise_not_as_none():
    """Noise of a fraction of a count a pixel (a few photons on an offset): most neighbours are
    equal (a median absolute deviation of 0); the mean absolute deviation of the differences
    is the noise then, not none (which would read as no noise and never smooth)."""
    mask = _disks()
    rng = np.random.default_rng(1)
    image = (np.where(mask, 20, 10) + rng.poisson(0.2, mask.shape)).astype(np.uint16)
    got = noise.contrast_to_noise(image, mask)
    steps = np.diff(image.astype(np.float32), axis=1)[mask[:, 1:] & mask[:, :-1]]
    deviations = np.abs(steps - np.median(steps))
    assert np.median(deviations) == 0
    noise_sd = math.sqrt(math.pi / 2) * deviations.mean() / math.sqrt(2)
    assert got == pytest.approx(10.0 / noise_sd, rel=1e-5)


def test_stacks_and_large_images_are_read_on_rows_across_them(monkeypatch):
    """Every k-th row of all planes together, from k/2 on. Here k (351) is larger than a
    plane's 300 rows, so rows taken plane by plane would be each plane's first, which lies
    above every nucleus (nothing to measure); across the planes the rows hit nuclei."""
    monkeypatch.setattr(noise, "SAMPLE_PIXELS", 2**12)
    mask = _disks()
    rng = np.random.default_rng(3)
    frames = 100.0 + 40.0 * mask + rng.normal(0.0, 4.0, (12, *mask.shape))
    stack = frames.astype(np.float32)
    masks = np.broadcast_to(mask, stack.shape)
    assert stack.size // noise.SAMPLE_PIXELS > mask.shape[0] and not mask[0].any()
    assert noise.contrast_to_noise(stack, masks) == pytest.approx(10.0, rel=0.1)


def test_noise_factor():
    assert diameter.noise_factor(None, 3.0) == 1.0
    assert diameter.noise_factor(3.0, 3.0) == diameter.noise_factor(30.0, 3.0) == 1.0
    assert diameter.noise_factor(1.0, 0.0) == 1.0  # the adaptation off
    assert diameter.noise_factor(1.5, 3.0) == 2.0  # reference / ratio
    assert diameter.noise_factor(0.75, 3.0) == 4.0
    assert diameter.noise_factor(2.9, 3.0) == 1.0  # within half a step of 12 %: unchanged
    assert diameter.noise_factor(2.0, 3.0) == 2.0 ** (4 / 6)  # 1.5 on the 2^(1/6) grid
    assert diameter.noise_factor(0.3, 3.0) == diameter.noise_factor(0.0, 3.0) == 4.0  # the most


# a photon-starved frame (photons x0.03) whose noise breaks nuclei into pieces at the
# size's smoothing (seed and index picked for a ratio under 2)
STARVED = synthetic_frame(6, 1, (260, 348), FrameStyle(photons=0.03))


def test_a_photon_starved_frame_is_smoothed_more():
    """The default measures its contrast to noise (~1.9) and smooths 1.59x more than the size
    asks for: F1@0.7 0.84 against 0.68 with the adaptation off (``contrast_to_noise=0``),
    the same labels as that smoothing set by hand; a given diameter measures it too."""
    image, truth = STARVED
    auto = segment(image, load_config([]).pipeline)
    off = segment(image, load_config(["pipeline.smooth.contrast_to_noise=0"]).pipeline)
    assert auto.contrast == off.contrast < 2.0 and auto.diameter == off.diameter == 20.0
    assert score(truth, auto.labels)["f1_70"] > score(truth, off.labels)["f1_70"] + 0.1
    factor = diameter.noise_factor(auto.contrast, 3.0)
    assert factor > 1.4  # at d = 20 the size's sigma is 1
    by_hand = load_config(["pipeline.diameter=20", f"pipeline.smooth.sigma={factor!r}"]).pipeline
    fixed = segment(image, by_hand)
    np.testing.assert_array_equal(fixed.labels, auto.labels)
    assert fixed.contrast is None  # a sigma given: nothing measured
    assert measured_scale(image, load_config([]).pipeline) == (auto.diameter, auto.contrast)
    # a given diameter (not the reference) measures the contrast too: sigma 1.2 x its factor
    given = segment(image, load_config(["pipeline.diameter=24"]).pipeline)
    sigma = 1.2 * diameter.noise_factor(given.contrast, 3.0)
    assert given.contrast < 2.0 and sigma > 1.6
    hand = ["pipeline.diameter=24", f"pipeline.smooth.sigma={sigma!r}"]
    np.testing.assert_array_equal(segment(image, load_config(hand).pipeline).labels, given.labels)


def test_frames_with_contrast_are_smoothed_as_before():
    """The demo's frames stand well above their noise (ratio > 3): nothing changes."""
    image, _ = synthetic_frame(2021, 0)
    auto = segment(image, load_config([]).pipeline)
    off = segment(image, load_config(["pipeline.smooth.contrast_to_noise=0"]).pipeline)
    assert auto.contrast > 5
    np.testing.assert_array_equal(auto.labels, off.labels)
