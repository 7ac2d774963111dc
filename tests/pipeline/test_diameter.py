"""The nucleus diameter: its estimate on known shapes, the lengths derived from it, and the
pipeline with `diameter=auto` on frames of other magnifications."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from skimage.draw import disk, ellipse

from hpcseg.config.compose import load_config
from hpcseg.config.schemas import RefineMethod
from hpcseg.data.synthetic import FrameStyle, synthetic_frame
from hpcseg.pipeline import diameter
from hpcseg.pipeline.segment import measured_scale, segment, with_refinement

AUTO = load_config([]).pipeline


def disks(radius: int, shape=(400, 400), gap: int = 6, touching: bool = False) -> np.ndarray:
    """A grid of disks of ``radius``; ``touching``: each row's disks overlap their neighbours
    by a pixel, so every row is one clump."""
    mask = np.zeros(shape, bool)
    step_x = 2 * radius - 1 if touching else 2 * radius + gap
    for cy in range(radius + 3, shape[0] - radius - 3, 2 * radius + gap):
        for cx in range(radius + 3, shape[1] - radius - 3, step_x):
            mask[disk((cy, cx), radius, shape=shape)] = True
    return mask


@pytest.mark.parametrize("radius", [4, 6, 10, 20, 30])
def test_the_estimate_of_disks_is_their_diameter(radius):
    assert diameter.estimate(disks(radius)) == diameter.rounded(2 * radius)
    assert abs(diameter.estimate(disks(radius)) / (2 * radius) - 1) < 0.12


@pytest.mark.parametrize("radius", [5, 12])
def test_clumps_count_their_nuclei_not_their_extent(radius):
    clumped = disks(radius, touching=True)
    assert diameter.estimate(clumped) == diameter.rounded(2 * radius)


def test_ellipses_give_their_short_axis():
    mask = np.zeros((300, 300), bool)
    for cy in range(30, 280, 60):
        for cx in range(30, 280, 60):
            mask[ellipse(cy, cx, 10, 20, shape=mask.shape)] = True
    assert diameter.estimate(mask) == diameter.rounded(20)


def test_specks_and_ragged_edges_count_little():
    mask = disks(10)
    rng = np.random.default_rng(0)
    mask[rng.random(mask.shape) < 0.01] = True  # single-pixel specks everywhere
    assert diameter.estimate(mask) == diameter.rounded(20)


def test_balls_in_an_anisotropic_stack():
    """Planes 2 pixels apart: a ball of radius 8 px spans 4 planes either side."""
    zz, yy, xx = np.ogrid[:24, :64, :64]
    ball = ((zz - 12) * 2.0) ** 2 + (yy - 32) ** 2 + (xx - 32) ** 2 <= 8**2
    balls = np.concatenate([ball] * 5, axis=2)  # 5 balls in a row
    assert diameter.estimate(balls, (2.0, 1.0, 1.0)) == diameter.rounded(16)


def test_nothing_to_measure():
    assert diameter.estimate(np.zeros((50, 50), bool)) is None
    assert diameter.estimate(disks(10, shape=(40, 60))) is None  # 2 nuclei: too few to say
    noise = np.random.default_rng(0).poisson(110, (520, 696)).astype(np.uint16)
    result = segment(noise, AUTO)  # specks of a thresholded empty field are no nuclei
    assert result.diameter is None and measured_scale(noise, AUTO)[0] is None
    line = np.zeros((5, 50), bool)
    line[2, 3:-3] = True
    assert diameter.estimate(line) is None  # nothing 3 px wide


def test_rounding_keeps_the_tuned_lengths_near_the_reference():
    assert diameter.rounded(20.0) == diameter.rounded(18.5) == diameter.rounded(23.0) == 20.0
    assert diameter.rounded(40.0) == 40.0
    assert diameter.rounded(8.0) == pytest.approx(20 * 2 ** (-8 / 6))
    assert diameter.rounded(15.0) < 17.0


def test_at_the_reference_the_default_with_components_is_nuclei_v1():
    """The default with its refinement as components, log-Otsu's own threshold and the lengths
    of the reference diameter is the old default exactly."""
    v1 = load_config(["pipeline=nuclei_v1"]).pipeline
    components = load_config(
        ["pipeline.refine.method=components", "pipeline.threshold.lower=0"]
    ).pipeline
    resolved = diameter.resolve(with_refinement(components), diameter.REFERENCE)
    # peak_smoothing is the objects cut's alone: components do not use it, objects do
    unused = replace(resolved.refine, peak_smoothing=None)
    assert not diameter.needs(replace(resolved, refine=unused))
    objects = replace(resolved.refine, method=RefineMethod.objects, peak_smoothing=None)
    assert diameter.needs(replace(resolved, refine=objects))
    assert replace(resolved, name=v1.name, refine=unused) == v1


def test_lengths_scale_with_the_diameter_and_given_ones_stay():
    cfg = diameter.resolve(AUTO, 40.0)
    assert (cfg.smooth.sigma, cfg.clean.min_area, cfg.split.min_distance) == (2.0, 120, 8)
    assert (cfg.split.smoothing, cfg.refine.margin, cfg.refine.window) == (2.0, 6, 61)
    assert cfg.refine.peak_smoothing == 4.0  # d/10 in 2-D ...
    assert diameter.resolve(AUTO, 40.0, ndim=3).refine.peak_smoothing == 0.0  # ... off in 3-D
    small = diameter.resolve(AUTO, 8.0)
    assert (small.smooth.sigma, small.split.min_distance, small.refine.window) == (0.4, 2, 13)
    # at least 1 px from 12 px up (photon noise is per pixel), d/20 for the smallest nuclei
    assert [diameter.resolve(AUTO, d).smooth.sigma for d in (12.0, 12.6, 16.0)] == [0.6, 1.0, 1.0]
    assert diameter.resolve(AUTO, 8.0, ndim=3).clean.min_area == 2  # 30 x 0.4^3
    given = load_config(["pipeline.split.min_distance=9"]).pipeline
    assert diameter.resolve(given, 40.0).split.min_distance == 9
    assert diameter.resolve(diameter.resolve(AUTO, 40.0), 8.0) == diameter.resolve(AUTO, 40.0)


def test_auto_refinement_is_objects_with_a_split_and_components_without():
    assert (str(with_refinement(AUTO).refine.method), with_refinement(AUTO).refine.fraction) == (
        "objects",
        0.4,
    )
    components = load_config(["pipeline.refine.method=components"]).pipeline
    assert with_refinement(components).refine.fraction == 0.3
    no_split = load_config(["pipeline.split.method=none"]).pipeline
    assert str(with_refinement(no_split).refine.method) == "components"
    given = load_config(["pipeline.refine.method=none", "pipeline.refine.fraction=0.2"]).pipeline
    assert with_refinement(given).refine == given.refine


def test_only_the_lengths_a_chain_uses_ask_for_a_diameter():
    assert diameter.needs(AUTO)
    assert not diameter.needs(load_config(["pipeline=blog2021"]).pipeline)
    assert not diameter.needs(load_config(["pipeline=nuclei_v1"]).pipeline)


def test_parse():
    assert diameter.parse("auto", None) is None
    assert diameter.parse("24", None) == 24.0
    assert diameter.parse("7.5um", 0.5) == 15.0
    assert diameter.parse("7.5 µm", 0.25) == 30.0
    assert diameter.parse("7.5μm", 0.25) == 30.0  # the Greek mu too
    for bad in ("big", "0", "-3", "um"):
        with pytest.raises(ValueError, match="must be auto"):
            diameter.parse(bad, 0.5)
    for out_of_range in ("3", "5000", "0.2um"):
        with pytest.raises(ValueError, match="must be between 5 and 1000 pixels"):
            diameter.parse(out_of_range, 0.1)
    with pytest.raises(ValueError, match=r"dataset\.pixel_size"):
        diameter.parse("7um", None)


@pytest.mark.parametrize(("scale", "low", "high"), [(0.4, 6.0, 10.5), (1.0, 17.0, 23.0),
                                                    (2.0, 32.0, 45.0)])  # fmt: skip
def test_the_pipeline_measures_frames_of_other_magnifications(scale, low, high):
    """Synthetic nuclei ~8, ~20 and ~40 px across (short axis ~7, ~18, ~35 px)."""
    side = (round(260 * max(scale, 1.0)), round(348 * max(scale, 1.0)))
    style = FrameStyle(scale=scale, density=0.25 * max(scale, 1.0) ** 2)
    image, _ = synthetic_frame(4, 0, side, style)
    result = segment(image, AUTO)
    assert low <= result.diameter <= high
    assert result.diameter == measured_scale(image, AUTO)[0] or scale == 1.0


def test_auto_equals_the_measured_diameter_given():
    """Small nuclei: the steps before the split run again with the measured lengths, so the
    result is the one the measured diameter gives when set by hand."""
    image, _ = synthetic_frame(2, 1, (260, 348), FrameStyle(scale=0.4, density=0.25))
    auto = segment(image, AUTO)
    assert auto.diameter < 12
    by_hand = segment(image, replace(AUTO, diameter=str(auto.diameter)))
    assert by_hand.diameter == auto.diameter
    np.testing.assert_array_equal(auto.labels, by_hand.labels)


def test_the_early_steps_run_again_only_for_lengths_they_use(monkeypatch):
    """A per-component chain whose early lengths are all given runs them once at any diameter
    (the per-object cut's peak_smoothing, which changes with it, is not theirs)."""
    from hpcseg.pipeline import segment as chain

    calls = []
    gaussian = chain.SMOOTHERS["gaussian"]
    monkeypatch.setitem(chain.SMOOTHERS, "gaussian", lambda *a: calls.append(1) or gaussian(*a))
    fixed = [
        "pipeline.refine.method=components",
        "pipeline.smooth.sigma=1",
        "pipeline.clean.min_area=30",
        "pipeline.refine.margin=3",
        "pipeline.refine.window=31",
    ]
    image, _ = synthetic_frame(2, 0, (520, 696), FrameStyle(scale=2.0))
    result = segment(image, load_config(fixed).pipeline)
    assert result.diameter >= 30 and len(calls) == 1
    calls.clear()
    segment(image, load_config([*fixed[1:]]).pipeline)  # objects: the split's lengths only
    assert len(calls) == 1


def test_a_given_diameter_in_micrometres():
    image, _ = synthetic_frame(2, 1, (130, 174))
    from hpcseg.pipeline.sampling import Sampling

    result = segment(image, replace(AUTO, diameter="10um"), Sampling(pixel_size=0.5))
    assert math.isclose(result.diameter, 20.0)
