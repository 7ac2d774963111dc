"""The fast local Gaussian threshold decides exactly like scipy/dask-image."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from hpcseg.data.synthetic import synthetic_frame
from hpcseg.pipeline import threshold
from hpcseg.pipeline.threshold import _exact_at, gaussian_weights, local_gaussian


def scipy_decision(image, block_size=None, offset=0.0):
    x = image.astype(np.float64)
    sizes = x.shape if block_size is None else (block_size,) * x.ndim
    sigmas = [(s - 1) / 6.0 for s in sizes]
    return x > ndi.gaussian_filter(x, sigmas, mode="reflect") - offset


def test_weights_are_scipys():
    from scipy.ndimage._filters import _gaussian_kernel1d  # private, used only to cross-check

    for sigma in (1.0, 86.5, 695 / 6):
        radius = int(4 * sigma + 0.5)
        assert np.array_equal(gaussian_weights(sigma), _gaussian_kernel1d(sigma, 0, radius)[::-1])


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_blog_threshold_equals_scipy_on_synthetic_frames(index):
    image, _ = synthetic_frame(7, index)
    smoothed = ndi.gaussian_filter(image, 1.0)
    mask = local_gaussian(smoothed)
    assert np.array_equal(mask, scipy_decision(smoothed))


@pytest.mark.parametrize(
    ("shape", "dtype", "block_size", "offset"),
    [
        ((64, 80), np.uint8, None, 0.0),
        ((120, 90), np.int16, 31, 2.5),
        ((33, 300), np.uint16, 101, -1.0),
    ],
)
def test_equals_scipy_on_random_images(shape, dtype, block_size, offset):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype)
    image = rng.integers(max(info.min, -500), min(info.max, 5000), size=shape).astype(dtype)
    mask = local_gaussian(image, block_size, offset)
    assert np.array_equal(mask, scipy_decision(image, block_size, offset))


def test_exact_recheck_is_bit_identical_to_scipy():
    image, _ = synthetic_frame(3, 0)
    x = ndi.gaussian_filter(image, 1.0).astype(np.float64)
    sigmas = ((x.shape[0] - 1) / 6, (x.shape[1] - 1) / 6)
    reference = ndi.gaussian_filter(x, sigmas, mode="reflect")
    rng = np.random.default_rng(0)
    rows = np.concatenate([[0, 0, 519, 519, 260], rng.integers(0, 520, 20)])
    cols = np.concatenate([[0, 695, 0, 695, 348], rng.integers(0, 696, 20)])
    assert np.array_equal(_exact_at(x, rows, cols, sigmas), reference[rows, cols])


@pytest.mark.parametrize("max_rows", [10_000, 0])
def test_decision_exact_when_many_pixels_are_rechecked(monkeypatch, max_rows):
    """A huge tolerance sends most pixels through the recheck (or the scipy fallback)."""
    monkeypatch.setattr(threshold, "REL_TOL", 1e-3)
    monkeypatch.setattr(threshold, "MAX_RECHECK_ROWS", max_rows)
    image, _ = synthetic_frame(5, 1, shape=(96, 128))
    smoothed = ndi.gaussian_filter(image, 1.0)
    mask = local_gaussian(smoothed)
    assert np.array_equal(mask, scipy_decision(smoothed))


def test_pixels_exactly_at_threshold_stay_background():
    image = np.full((40, 50), 9, np.uint16)  # the threshold is 9 up to rounding, everywhere
    mask = local_gaussian(image)
    assert np.array_equal(mask, scipy_decision(image))


def test_log_otsu_threshold_is_in_intensity_units():
    from hpcseg.pipeline.threshold import apply, log_otsu, otsu

    image = np.full((50, 50), 100.0)
    image[5:15, 5:15] = 5000.0
    image[25:45, 25:45] = 400.0  # a dim object
    value = log_otsu(image)
    mask = apply(image, value)
    assert 100 <= value < 400 and mask[35, 35] and mask[10, 10] and not mask[0, 0]
    assert np.array_equal(mask, image > value)
    assert otsu(image, correction=2.0) == 2.0 * otsu(image)


def _two_bumps(spread: float) -> tuple[np.ndarray, np.ndarray]:
    """A histogram (counts, centres) of a background bump at 50 (``spread`` wide, 70 %) and
    nuclei around 200 (30 %), one bin per unit."""
    centres = np.arange(256, dtype=np.float64)
    background = np.exp(-0.5 * ((centres - 50.0) / spread) ** 2)
    nuclei = np.exp(-0.5 * ((centres - 200.0) / 15.0) ** 2)
    counts = 7e5 * background / background.sum() + 3e5 * nuclei / nuclei.sum()
    return np.rint(counts).astype(np.int64), centres


def test_lowered_goes_the_fraction_down_to_the_background_mode():
    from hpcseg.pipeline.threshold import lowered

    counts, centres = _two_bumps(4.0)  # the floor (mode + 3 x 4) stays below
    for lower in (0.25, 0.5, 0.75):
        got = lowered(np.float32(125.0), counts, centres, lower, noise=3.0)
        assert got.dtype == np.float32
        assert got == np.float32(50.0 + (1.0 - lower) * 75.0)
    assert lowered(np.float32(125.0), counts, centres, 0.0) == np.float32(125.0)


def test_lowered_stays_noise_deviations_above_the_background_and_is_never_raised():
    from hpcseg.pipeline.threshold import lowered

    counts, centres = _two_bumps(20.0)  # a wide background: the floor binds
    got = lowered(125.0, counts, centres, 0.9, noise=3.0)  # 0.9 of the way would be 57.5
    assert abs(got - (50.0 + 3 * 20.0)) <= 3.5  # the mode + 3 sigma (sigma read to a bin)
    assert lowered(125.0, counts, centres, 0.9, noise=5.0) == 125.0  # floor above: unchanged
    assert lowered(-1.0, counts, centres, 0.5) == -1.0  # no bin below: unchanged


def test_lowered_log_otsu_takes_in_dim_nuclei_and_keeps_out_the_noise():
    """On a frame with dim nuclei the lowered log-Otsu threshold covers more of the nuclei; on
    a photon-starved frame its noise floor keeps the background out (without the floor the
    background floods in)."""
    from dataclasses import replace

    from hpcseg.data.synthetic import DEFAULT_STYLE
    from hpcseg.pipeline.threshold import log_otsu

    def coverage(image, truth, value):
        mask = image > value
        far = ~ndi.binary_dilation(truth > 0, iterations=4)
        return mask[truth > 0].mean(), mask[far].mean()

    image, truth = synthetic_frame(100, 0)
    smoothed = ndi.gaussian_filter(image.astype(np.float32), 1.0)
    own, lowered_value = log_otsu(smoothed), log_otsu(smoothed, lower=0.5)
    assert lowered_value < own
    (recall_own, _), (recall_low, false_low) = (
        coverage(smoothed, truth, own),
        coverage(smoothed, truth, lowered_value),
    )
    assert recall_low > recall_own + 0.02 and false_low < 0.002

    image, truth = synthetic_frame(100, 0, style=replace(DEFAULT_STYLE, photons=0.03))
    smoothed = ndi.gaussian_filter(image.astype(np.float32), 1.0)
    _, false_floor = coverage(smoothed, truth, log_otsu(smoothed, lower=0.9))
    _, false_none = coverage(smoothed, truth, log_otsu(smoothed, lower=0.9, noise=0.0))
    assert false_floor < 0.002 and false_none > 0.1


def test_lower_is_half_for_frames_and_off_for_stacks_unless_given():
    assert threshold.lower_for(None, 2) == 0.5
    assert threshold.lower_for(None, 3) == 0.0
    assert threshold.lower_for(0.2, 3) == 0.2 and threshold.lower_for(0.0, 2) == 0.0


@pytest.mark.parametrize(("dtype", "value"), [(np.uint16, 7), (np.float32, 7), (np.float32, 1e8)])
def test_a_flat_image_keeps_its_value_when_lowered(dtype, value):
    """One value: no histogram of 256 bins (NumPy refuses one of 1e8 in float32), no lowering."""
    flat = np.full((5, 6), value, dtype)
    for method in (threshold.otsu, threshold.log_otsu):
        assert method(flat, lower=0.5) == method(flat)


def test_a_mode_in_the_first_bin_is_not_lowered():
    """A background clipped at zero (or zero padding) piles into the first bin: no flank to read
    its noise on, so the value stays rather than falling into that noise."""
    counts, centres = _two_bumps(4.0)
    counts = counts.copy()
    counts[0] = 10 * counts.max()
    assert threshold.lowered(125.0, counts, centres, 0.5) == 125.0


def test_an_integer_value_is_rounded_down_so_the_mask_is_the_same():
    """On integer images the lowered value is an integer below the exact one: ``image >
    value`` then keeps the same pixels (negative values too)."""
    centres = np.arange(-20, 21)
    counts = np.rint(
        1e4 * np.exp(-0.5 * ((centres + 14) / 1.5) ** 2)
        + 3e3 * np.exp(-0.5 * ((centres - 15) / 2.0) ** 2)
    ).astype(np.int64)
    got = threshold.lowered(np.int64(0), counts, centres, 0.45)
    exact = -14 + 0.55 * 14  # -6.3: above the floor (-14 + 3 x 1.5, read to whole bins)
    assert got.dtype == np.int64 and got == np.floor(exact) == -7
    image = np.arange(-20, 21)
    assert np.array_equal(image > got, image > exact)


def test_li_is_lowered_too():
    """Li's value on a narrow background (mode 100, sd 5) and nuclei around 400, halfway down."""
    rng = np.random.default_rng(2)
    values = [rng.normal(100.0, 5.0, 7000), rng.normal(400.0, 30.0, 3000)]
    image = np.concatenate(values).astype(np.float32)
    own, low = threshold.li(image), threshold.li(image, lower=0.5)
    assert abs(low - (100.0 + 0.5 * (own - 100.0))) < 3.0  # the mode read to a bin (~2 wide)


def test_the_floor_is_one_count_of_the_image_as_read():
    assert threshold.floor_for(np.uint16) == 1 and threshold.floor_for(np.int8) == 1
    assert threshold.floor_for(bool) == 1
    assert threshold.floor_for(np.float32) == threshold.floor_for(np.float64) == 2.0**-16
    assert threshold.floor_for(np.float32, 1.0) == threshold.floor_for(np.uint16, 1.0) == 1.0


def test_a_given_floor_is_the_pipelines():
    """``threshold.floor`` replaces the count: above every pixel, no foreground."""
    from hpcseg.config.compose import load_config
    from hpcseg.data.synthetic import synthetic_frame
    from hpcseg.pipeline.segment import segment

    image = synthetic_frame(2021, 1)[0]
    result = segment(image, load_config(["pipeline.threshold.floor=1e9"]).pipeline)
    assert result.threshold == 1e9 and result.labels.max() == 0


def test_log_votes_are_the_logs_of_the_pixels_above_the_floor():
    image = np.array([[0, 1, 2, 300], [5, 0, 1, 7]], np.uint16)
    np.testing.assert_array_equal(
        threshold.log_votes(image, 1), np.log(np.array([2, 300, 5, 7], np.float32))
    )
    whole = threshold.log_votes(image + 2, 1)
    assert whole.shape == image.shape
    np.testing.assert_array_equal(whole, threshold.log_intensity(image + 2))


def _smoothed_frame():
    from scipy import ndimage as ndi

    from hpcseg.data.synthetic import synthetic_frame

    image, _ = synthetic_frame(2021, 0)
    return ndi.gaussian_filter(image.astype(np.float32), 1.0)


@pytest.mark.parametrize("method", ["otsu", "log_otsu", "li"])
def test_global_thresholds_leave_zero_padding_out(method):
    """A frame padded with zeros to twice its width (a mosaic's empty margin) gets about the
    threshold of the frame itself; counted, the padding's spike drew it down (log_otsu to ~15,
    otsu and li under the frame's background: most of the frame foreground)."""
    smoothed = _smoothed_frame()
    padded = np.pad(smoothed, ((0, 0), (0, smoothed.shape[1])))
    compute = getattr(threshold, method)
    for lower in (0.0, 0.5):
        own = compute(smoothed, lower=lower, floor=1)
        assert abs(compute(padded, lower=lower, floor=1) - own) < 0.02 * own
    background = float(np.median(smoothed))
    if method != "log_otsu":  # None: every pixel counts, the padding too
        assert compute(smoothed) == compute(smoothed, floor=1)  # nothing at the floor here
        assert compute(padded) < background < own


def test_log_otsu_of_a_float_image_scaled_to_one():
    """The same frame divided by its maximum: the same threshold, scaled (a floor of 1 left no
    pixel above it, and the mask was empty)."""
    smoothed = _smoothed_frame()
    scale = float(smoothed.max())
    scaled = smoothed / np.float32(scale)
    for lower in (0.0, 0.5):
        own = threshold.log_otsu(smoothed, lower=lower, floor=1)
        got = threshold.log_otsu(scaled, lower=lower, floor=threshold.floor_for(np.float32))
        assert got * scale == pytest.approx(own, rel=1e-3)


@pytest.mark.parametrize("method", ["otsu", "log_otsu", "li"])
def test_with_nothing_above_the_floor_there_is_no_foreground(method):
    for image in (np.zeros((6, 7), np.uint16), np.ones((6, 7), np.float32) * 0.5):
        value = getattr(threshold, method)(image, lower=0.5, floor=1)
        assert value == 1.0 and not threshold.apply(image, value).any()


@pytest.mark.parametrize(
    ("variant", "method"),
    [
        ("zero-padded", "log_otsu"),
        ("scaled to [0, 1]", "log_otsu"),
        ("both", "log_otsu"),
        ("background to zero", "log_otsu"),
        ("zero-padded", "otsu"),
        ("zero-padded", "li"),
    ],
)
def test_the_default_segments_frames_as_stored_otherwise(variant, method):
    """Whole default pipeline: a frame zero-padded, as float in [0, 1], both, or with its
    background subtracted (half its pixels 0) scores as the frame itself does (within 0.03
    F1@0.7; before the floor: 13 objects of 136 padded, none scaled, 0.48 subtracted; padded,
    otsu and li 0.00). The floor decided on the smoothed pixels gave 0.81 subtracted."""
    from hpcseg.config.compose import load_config
    from hpcseg.data.synthetic import synthetic_frame
    from hpcseg.pipeline.segment import segment
    from hpcseg.results.evaluate import score

    image, truth = synthetic_frame(2021, 1)
    cfg = load_config([f"pipeline.threshold.method={method}"]).pipeline
    if variant == "zero-padded":
        other = np.pad(image, ((0, 0), (0, image.shape[1])))
        labels = segment(other, cfg).labels[:, : image.shape[1]]
    elif variant == "both":  # the padding's smoothed edge: a ramp far below one count
        other = np.pad(image / image.max(), ((0, 0), (0, image.shape[1]))).astype(np.float32)
        labels = segment(other, cfg).labels[:, : image.shape[1]]
    elif variant == "scaled to [0, 1]":
        labels = segment((image / image.max()).astype(np.float32), cfg).labels
    else:
        other = np.clip(image.astype(np.int32) - int(np.median(image)), 0, None)
        labels = segment(other.astype(np.uint16), cfg).labels
    own = score(truth, segment(image, cfg).labels)["f1_70"]
    assert own > 0.85
    assert score(truth, labels)["f1_70"] > own - 0.03
