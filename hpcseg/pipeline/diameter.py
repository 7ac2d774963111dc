"""The typical nucleus diameter, and every length of the pipeline derived from it.

Magnification changes how many pixels a nucleus spans, and with it the right smoothing, size
filter, seed separation and refinement windows. ``pipeline.diameter`` fixes that scale (pixels or
µm) or, with ``auto``, :func:`estimate` measures it on each image's foreground; :func:`resolve`
then fills every length the config leaves null, scaled from the values tuned at
:data:`REFERENCE` pixels, so at that diameter the derived pipeline is the tuned one exactly.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

from hpcseg.config.schemas import PipelineConfig
from hpcseg.pipeline.backend import backend_of
from hpcseg.pipeline.clean import fill_holes
from hpcseg.pipeline.sampling import window
from hpcseg.pipeline.split import object_distance

REFERENCE = 20.0  # pixels: the diameter the fixed lengths of `nuclei_v1` were tuned for
ESTIMATE_FRACTION = 0.3  # refine.fraction of the mask the diameter is measured on
STEPS_PER_DOUBLING = 6  # estimates are rounded to 20 x 2^(n/6): steps of 12 %
_MICRONS = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(um|µm|μm)?\s*$")
LIMITS = (5.0, 1000.0)  # pixels: the diameters the lengths are derived for (given or measured)
MIN_OBJECTS = 5  # fewer objects than this: nothing to measure (the reference stands)


def parse(text: str, pixel_size: float | None) -> float | None:
    """``pipeline.diameter`` in pixels; None for ``auto``. ValueError (one line) otherwise."""
    if str(text).strip().lower() == "auto":
        return None
    match = _MICRONS.match(str(text))
    if not match or float(match.group(1)) <= 0:
        raise ValueError(
            f"pipeline.diameter={text!r} must be auto, a number of pixels ('24') or of "
            "micrometres ('7.5um')"
        )
    value = float(match.group(1))
    if match.group(2):
        if not pixel_size:
            raise ValueError(
                f"pipeline.diameter={text} is in micrometres: set dataset.pixel_size too"
            )
        value /= pixel_size
    if not LIMITS[0] <= value <= LIMITS[1]:
        raise ValueError(
            f"pipeline.diameter={text} is {value:g} pixels: it must be between {LIMITS[0]:g} "
            f"and {LIMITS[1]:g} pixels"
        )
    return value


def needs(cfg: PipelineConfig) -> bool:
    """Whether a length that ``cfg``'s chain uses is left to the diameter (null)."""
    used = [cfg.clean.min_area]
    if str(cfg.smooth.method) != "none":
        used.append(cfg.smooth.sigma)
    if str(cfg.split.method) != "none":
        used += [cfg.split.min_distance, cfg.split.smoothing]
    if str(cfg.refine.method) != "none":
        used += [cfg.refine.margin, cfg.refine.window]
    if str(cfg.refine.method) == "objects":
        used.append(cfg.refine.peak_smoothing)
    return None in used


def measures_noise(cfg: PipelineConfig, ndim: int) -> bool:
    """Whether the chain measures an image's contrast to noise: ``cfg``'s smoothing is a
    Gaussian left to the diameter and the noise (a null sigma), on a 2-D frame (on z-stacks the
    extra smoothing has not been measured: none there)."""
    return ndim == 2 and str(cfg.smooth.method) == "gaussian" and cfg.smooth.sigma is None


MAX_NOISE_FACTOR = 4.0  # the most extra smoothing: below a quarter of the reference, all noise


def noise_factor(ratio: float | None, reference: float) -> float:
    """How many times the size's smoothing a frame of contrast to noise ``ratio``
    (:func:`hpcseg.pipeline.noise.contrast_to_noise`) gets: ``reference / ratio`` below
    ``reference`` (``smooth.contrast_to_noise``; the smoothed noise then stands as far below the
    contrast as at the reference: a 2-D Gaussian of sigma s divides white noise by about
    2 sqrt(pi) s), else 1; on the diameter's grid of 2^(1/6) steps (12 %), so a small wobble of
    the ratio changes nothing (ratios from reference / 2^(1/12) up get 1), and at most
    :data:`MAX_NOISE_FACTOR`. 1 without a (finite) ratio or with a reference of 0 (off)."""
    if ratio is None or not math.isfinite(ratio) or reference <= 0 or ratio >= reference:
        return 1.0
    steps = round(STEPS_PER_DOUBLING * math.log2(reference / max(ratio, 1e-9)))
    return min(2.0 ** (steps / STEPS_PER_DOUBLING), MAX_NOISE_FACTOR)


def _round(x: float) -> int:
    return math.floor(x + 0.5)


SMALL = 12.0  # pixels: nuclei up to this wide get a smoothing of d/20 (below 1 px)


def smoothing_sigma(diameter: float) -> float:
    """The denoising Gaussian's sigma for nuclei ``diameter`` pixels across: d/20, at least 1
    px (photon noise is per pixel: on photon-starved frames whose estimate came out at 14-16 px
    a smaller sigma let thousands of noise specks through), except for nuclei of at most
    :data:`SMALL` px, which a 1-px blur glues together (robustness grid, nuclei ~8 px across:
    F1@0.7 0.78 -> 0.90 on tuning seed 100)."""
    k = diameter / REFERENCE
    return k if diameter <= SMALL else max(1.0, k)


def resolve(
    cfg: PipelineConfig, diameter: float, ndim: int = 2, contrast: float | None = None
) -> PipelineConfig:
    """``cfg`` with every null length derived from ``diameter`` (in-plane pixels); lengths the
    config gives are kept. At :data:`REFERENCE` this is ``nuclei_v1``'s lengths exactly. A
    measured ``contrast`` to noise below ``smooth.contrast_to_noise`` multiplies a derived
    smoothing (:func:`noise_factor`)."""
    k = diameter / REFERENCE
    sigma = smoothing_sigma(diameter) * noise_factor(contrast, cfg.smooth.contrast_to_noise)

    def given(value, derived):
        return derived if value is None else value

    return replace(
        cfg,
        smooth=replace(cfg.smooth, sigma=given(cfg.smooth.sigma, sigma)),
        clean=replace(cfg.clean, min_area=given(cfg.clean.min_area, _round(30 * k**ndim))),
        split=replace(
            cfg.split,
            min_distance=given(cfg.split.min_distance, max(1, _round(4 * k))),
            smoothing=given(cfg.split.smoothing, float(k)),
        ),
        refine=replace(
            cfg.refine,
            margin=given(cfg.refine.margin, max(1, _round(3 * k))),
            window=given(cfg.refine.window, 2 * max(1, _round(15 * k)) + 1),
            peak_smoothing=given(cfg.refine.peak_smoothing, 2.0 * k if ndim == 2 else 0.0),
        ),
    )


def rounded(diameter: float) -> float:
    """``diameter`` on the grid 20 x 2^(n/6) (steps of 12 %), so that images of about the same
    magnification get the same lengths and a small wobble of the estimate changes nothing; the
    steps next to the reference count as the reference (within 1.5 steps, 19 %, the tuned
    lengths stand: on the tuning frames the estimate of the same nuclei spreads over them)."""
    steps = round(STEPS_PER_DOUBLING * math.log2(diameter / REFERENCE))
    if abs(steps) == 1:
        steps = 0
    return REFERENCE * 2.0 ** (steps / STEPS_PER_DOUBLING)


PINHOLE = 16  # pixels (voxels): holes up to this size are texture or noise, not edges


def fill_pinholes(mask):
    """``mask`` with its holes of at most :data:`PINHOLE` pixels filled: the specks of texture
    and noise inside a nucleus, which would shorten its distances to the background. Larger
    holes stay: the gaps a refinement opened between nuclei of a confluent sheet are edges."""
    return fill_holes(mask, PINHOLE)


def estimate(mask, spacing: tuple[float, ...] | None = None) -> float | None:
    """Typical nucleus diameter in in-plane pixels from a foreground ``mask``, rounded by
    :func:`rounded`; None when there is nothing to measure: fewer than :data:`MIN_OBJECTS`
    objects, none wider than 3 pixels, or a diameter under :data:`LIMITS` (specks of noise, as an
    empty field thresholded gives: under 5 px no nucleus is resolved).

    Each nucleus has a centre where its distance to the background peaks, at about its short
    semi-axis, also inside a clump (the peaks of touching nuclei stay apart). The estimate is
    twice the weighted median of those peaks (local maxima of the Euclidean distance
    transform, in a window of 2 pixels either side), each weighted by its value squared so that
    the small peaks of ragged edges and specks count little: the width of a typical nucleus
    across its short axis (exact for disks; 0.8-0.97 of the equivalent diameter of ellipses).
    The distances are taken per connected component on its box (the split's own distance
    map), which costs a fraction of a whole-image transform.
    """
    be = backend_of(mask)
    xp, ndi = be.xp, be.ndimage
    spacing = spacing or (1.0,) * mask.ndim
    components, n = ndi.label(fill_pinholes(mask > 0))
    if n < MIN_OBJECTS:
        return None
    distance = object_distance(components, 0.0, spacing)
    peaks = (distance == ndi.maximum_filter(distance, size=window(2, spacing))) & (distance >= 1.5)
    values = xp.sort(distance[peaks])
    if values.size == 0:
        return None
    weight = xp.cumsum(values.astype(xp.float64) ** 2)
    median = float(values[int(xp.searchsorted(weight, weight[-1] / 2))])
    measured = rounded(2.0 * median)
    return measured if LIMITS[0] <= measured <= LIMITS[1] else None
