"""Per-object threshold refinement."""

from __future__ import annotations

import numpy as np
from skimage.draw import disk


def test_refine_cuts_each_object_at_its_own_height():
    from hpcseg.pipeline.refine import refine_objects

    intensity = np.zeros((60, 80))
    labels = np.zeros((60, 80), np.int32)
    for index, (centre, peak) in enumerate((((30, 20), 1000.0), ((30, 58), 100.0)), start=1):
        rr, cc = disk(centre, 14)
        labels[rr, cc] = index
        inner = disk(centre, 8)
        intensity[rr, cc] = 0.2 * peak  # a dim rim (halo) ...
        intensity[inner] = peak  # ... around the nucleus itself
    refined = refine_objects(intensity, labels, fraction=0.4)
    for index, centre in ((1, (30, 20)), (2, (30, 58))):
        inner = np.zeros_like(labels, bool)
        inner[disk(centre, 8)] = True
        assert np.array_equal(refined == index, inner)  # the same cut, 10x apart in brightness


def test_a_shared_background_level_gives_the_same_cut():
    from hpcseg.data.synthetic import synthetic_frame
    from hpcseg.pipeline.label import connected_components
    from hpcseg.pipeline.refine import background_level, refine_objects

    image = synthetic_frame(3, 0)[0].astype(np.float32)
    labels = connected_components(image > np.percentile(image, 90))
    level = background_level(image, labels > 0, None, 4, 41)
    expected = refine_objects(image, labels, 0.3, None, 4, 41)
    assert np.array_equal(refine_objects(image, labels, 0.3, None, 4, 41, level), expected)
    assert not np.array_equal(refine_objects(image, labels, 0.3, None, 2, 11), expected)


def test_the_default_chain_computes_the_background_level_once(monkeypatch):
    """The diameter estimate's cut and the per-object cut share one background level (the
    split's objects cover the mask's components) when the diameter keeps the reference's
    lengths."""
    from hpcseg.config.compose import load_config
    from hpcseg.data.synthetic import synthetic_frame
    from hpcseg.pipeline import refine
    from hpcseg.pipeline.segment import segment

    calls = []
    original = refine.background_level
    monkeypatch.setattr(refine, "background_level", lambda *a: calls.append(1) or original(*a))
    cfg = load_config(["pipeline=nuclei"]).pipeline
    result = segment(synthetic_frame(3, 0)[0], cfg)
    assert result.diameter == 20.0 and len(result.objects["area"]) > 20
    assert len(calls) == 1


def _disk_nucleus(texture: float):
    """An 80x80 frame with one nucleus of radius 16 (chromatin texture of relative std
    ``texture``, grain 1.5 px) and its label."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(1)
    image = np.full((80, 80), 100.0, np.float32)
    labels = np.zeros((80, 80), np.int32)
    rr, cc = disk((40, 40), 16)
    labels[rr, cc] = 1
    grain = ndi.gaussian_filter(rng.standard_normal((80, 80)), 1.5)
    image[rr, cc] = 1000 * (1 + texture * (grain / grain.std())[rr, cc])
    return image, labels


def test_a_smoother_bright_level_breaks_a_textured_nucleus_less():
    """The bright level measured at a coarser smoothing (refine.peak_smoothing) is not pushed
    up by texture: the cut leaves fewer pieces and more of the nucleus; a flat one is cut the
    same."""
    from scipy import ndimage as ndi

    from hpcseg.pipeline import smooth
    from hpcseg.pipeline.refine import refine_objects

    def cut(texture: float, sigma: float):
        image, labels = _disk_nucleus(texture)
        bright = smooth.gaussian(image, sigma, False) if sigma else None
        kept = refine_objects(smooth.gaussian(image, 1.0, False), labels, 0.4, bright=bright) > 0
        return ndi.label(kept)[1], int(kept.sum())

    (pieces_fine, kept_fine), (pieces_coarse, kept_coarse) = cut(0.6, 0), cut(0.6, 2.0)
    assert pieces_coarse < pieces_fine and kept_coarse > kept_fine
    assert cut(0.0, 0) == cut(0.0, 2.0) == (1, len(disk((40, 40), 16)[0]))


def _segment_frames():
    from hpcseg.data.synthetic import FrameStyle, synthetic_frame

    return [
        synthetic_frame(5, 0)[0],  # d = 20: the cached level is used
        synthetic_frame(5, 1, style=FrameStyle(scale=2.0, density=2.0))[0],  # d != 20
        synthetic_frame(5, 2, style=FrameStyle(density=6.0, clumps=2.0))[0],  # confluent
    ]


def test_the_cached_background_level_gives_the_labels_of_a_fresh_one(monkeypatch):
    from hpcseg.config.compose import load_config
    from hpcseg.pipeline import refine, segment

    cfg = load_config(["pipeline=nuclei"]).pipeline
    frames = _segment_frames()
    cached = [segment.segment(image, cfg) for image in frames]
    assert {r.diameter for r in cached} > {20.0}  # a miss (d != 20) is covered too

    def fresh(s, foreground):
        c = s.cfg.refine
        return refine.background_level(s.smoothed, foreground, s.spacing, c.margin, c.window)

    monkeypatch.setattr(segment, "_background_level", fresh)
    for image, result in zip(frames, cached, strict=True):
        assert np.array_equal(segment.segment(image, cfg).labels, result.labels)


def test_segment_measures_the_bright_levels_at_peak_smoothing():
    """0 measures them on the smoothed image the cut applies to, and so does a peak_smoothing
    equal to the smoothing's sigma (the same image); the default d/10 changes the objects of
    a textured frame."""
    from hpcseg.config.compose import load_config
    from hpcseg.data.synthetic import FrameStyle, synthetic_frame
    from hpcseg.pipeline.segment import segment

    image = synthetic_frame(5, 3, style=FrameStyle(texture=0.4))[0]

    def labels(*overrides):
        return segment(image, load_config(["pipeline=nuclei", *overrides]).pipeline).labels

    off = labels("pipeline.refine.peak_smoothing=0")
    assert np.array_equal(labels("pipeline.refine.peak_smoothing=1.0"), off)  # sigma 1 at d=20
    assert not np.array_equal(labels(), off)
