"""One image through the pipeline: a flat chain of stages picked from method tables.

smooth → threshold → clean → [refine] → [diameter] → split → [refine → split] → label →
measure. Which function runs at each step is looked up in the tables below by the config's
method names, so a new method is a function plus a table entry. Every step's time is booked to
its own stage.

The lengths a config leaves null come from the nucleus diameter (``hpcseg/pipeline/diameter.py``).
With ``diameter=auto`` the chain first runs at the reference diameter, measures the diameter on
the mask it got, and runs the steps before it again only if the lengths they use change with
it. A derived smoothing is measured against the image's contrast to noise
(``hpcseg/pipeline/noise.py``) at the same point, with the diameter given or measured.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from hpcseg.config.schemas import PipelineConfig, RefineMethod
from hpcseg.pipeline import clean, diameter, label, noise, refine, smooth, split, threshold
from hpcseg.pipeline.backend import NUMPY, Backend, backend_of
from hpcseg.pipeline.measure import image_summary, measure
from hpcseg.pipeline.sampling import Sampling

# the timed stages, in the order of the images table's seconds_<stage> columns
STAGES = ("smooth", "threshold", "clean", "split", "refine", "diameter", "label", "measure")


@dataclass
class Segmentation:
    """The result of one image: labels, per-object columns, stage timings, decisions."""

    labels: Any
    objects: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    threshold: float | None = None
    summary: dict = field(default_factory=dict)
    diameter: float | None = None  # the nucleus diameter (px) the lengths came from
    contrast: float | None = None  # the contrast to noise a derived smoothing was measured on


@dataclass
class _State:
    """What the steps pass along: the inputs, the current mask or labels, decisions."""

    image: Any
    cfg: PipelineConfig
    sampling: Sampling
    spacing: tuple[float, ...]
    min_size: int
    given: PipelineConfig | None = None  # the config before its null lengths were derived
    diameter: float | None = None
    contrast: float | None = None  # the contrast to noise, measured with the diameter
    measure_diameter: bool = False  # diameter=auto and a length is left to it
    measure_contrast: bool = False  # a Gaussian whose sigma is left to the diameter and noise
    seconds: dict[str, float] = field(default_factory=dict)
    again: list = field(default_factory=list)  # steps a step asked to run again, next
    smoothed: Any = None
    mask: Any = None
    labels: Any = None  # set by a split; None means "label the mask's components"
    threshold: float | None = None
    objects: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    background: tuple | None = None  # the last refine background level and what it came from


FRACTIONS = {"components": 0.3, "objects": 0.4}  # refine.fraction's default, tuned per method


def with_refinement(cfg: PipelineConfig) -> PipelineConfig:
    """``cfg`` with ``refine.method=auto`` and a null ``refine.fraction`` made concrete: auto
    is objects (cut after a first split, then split again), components without a split; the
    fraction is the method's."""
    method = str(cfg.refine.method)
    if method == "auto":
        method = "components" if str(cfg.split.method) == "none" else "objects"
    fraction = cfg.refine.fraction
    if fraction is None:
        fraction = FRACTIONS.get(method)  # none: no fraction
    return replace(cfg, refine=replace(cfg.refine, method=RefineMethod(method), fraction=fraction))


def min_object_size(cfg: PipelineConfig, ndim: int, sampling: Sampling) -> int:
    """The size filter in pixels (voxels): ``clean.min_area``, raised by the µm² (2-D) or µm³
    (3-D) filter when the pixel size is known."""
    size = cfg.clean.min_area
    microns = sampling.microns(ndim)
    physical = cfg.clean.min_area_um2 if ndim == 2 else cfg.clean.min_volume_um3
    if physical is not None and microns:
        size = max(size, math.ceil(physical / math.prod(microns) - 1e-9))
    return size


# ------------------------------------------------------------------------------ the steps
def _smooth(s: _State) -> None:
    c = s.cfg.smooth
    s.background = None  # a re-run's new image: the level of the old one is not kept alive
    s.smoothed = SMOOTHERS[c.method](s.image, c.sigma, c.keep_dtype, s.spacing)


def _threshold(s: _State) -> None:
    c = s.cfg.threshold
    if c.method in GLOBAL_THRESHOLDS:  # compute the value, then apply it
        lower = threshold.lower_for(c.lower, s.image.ndim)
        floor = threshold.floor_for(s.image.dtype, c.floor)  # one count of the image as read
        s.threshold = GLOBAL_THRESHOLDS[c.method](
            s.smoothed, c.correction, lower, c.noise, floor=floor, raw=s.image
        )
        s.mask = threshold.apply(s.smoothed, s.threshold)
    else:
        s.mask = LOCAL_THRESHOLDS[c.method](s.smoothed, c.block_size, c.offset)


def _clean(s: _State) -> None:
    c = s.cfg.clean
    s.labels = None
    footprint = clean.opening_footprint(c.opening, c.opening_radius, s.spacing)
    if footprint is not None:
        s.mask = clean.open_mask(s.mask, footprint)
    if c.fill_holes:
        s.mask = clean.fill_holes(s.mask)
    s.mask = clean.remove_small(s.mask, s.min_size, s.cfg.label.connectivity)


def _cut(s: _State, objects: Any, bright: Any = None) -> None:
    """Each object at its own threshold (no hole filling after: it would fill the gaps the
    refinement opened between nuclei); ``bright``: the image the objects' bright levels are
    measured on (default: the smoothed image the cut applies to)."""
    c = s.cfg.refine
    level = _background_level(s, objects > 0)
    refined = refine.refine_objects(
        s.smoothed, objects, c.fraction, s.spacing, c.margin, c.window, level, bright
    )
    refined = refined > 0
    s.mask = clean.remove_small(refined, s.min_size, s.cfg.label.connectivity)
    s.labels = None


def _refine_components(s: _State) -> None:
    _cut(s, label.connected_components(s.mask, s.cfg.label.connectivity))


def _refine_objects(s: _State) -> None:
    """The split's objects cut, their bright levels measured at ``refine.peak_smoothing``: at
    the smoothing of the cut itself a textured or photon-starved nucleus's spread puts its
    cut into the texture's valleys and breaks it into pieces (measured: bench_robustness)."""
    sigma = s.cfg.refine.peak_smoothing
    bright = smooth.gaussian(s.image, sigma, False, s.spacing) if sigma else None
    _cut(s, s.labels, bright)


def _watershed(s: _State) -> None:
    c = s.cfg.split
    s.labels = split.watershed_split(
        s.mask,
        c.min_distance,
        c.smoothing,
        s.cfg.label.connectivity,
        s.spacing,
        str(c.landscape),
        s.smoothed,
    )


def _estimate_mask(s: _State) -> Any:
    """The mask the diameter is measured on: refined per component, so that nuclei a global
    threshold glued into sheets (dense, confluent) read as themselves: the refinement the chain
    already ran, or one for the estimate alone at the default fraction (a deeper cut breaks
    textured nuclei into pieces that read as small nuclei)."""
    if REFINE_BEFORE_SPLIT[s.cfg.refine.method]:
        return s.mask
    c = s.cfg.refine
    components = label.connected_components(s.mask, s.cfg.label.connectivity)
    fraction = diameter.ESTIMATE_FRACTION
    level = _background_level(s, s.mask)
    return refine.refine_objects(
        s.smoothed, components, fraction, s.spacing, c.margin, c.window, level
    )


def _background_level(s: _State, foreground: Any) -> Any:
    """:func:`hpcseg.pipeline.refine.background_level` of ``foreground`` at the current lengths,
    computed once for the diameter estimate's cut and the per-object cut when the measured
    diameter leaves the lengths as they were (the reference's): they see the same union of
    objects (a split's objects cover its mask's components) unless a step between them changed
    it, which the comparison catches."""
    c = s.cfg.refine
    key = (c.margin, c.window)
    if s.background is not None:
        smoothed, used, union, level = s.background
        xp = backend_of(foreground).xp
        if smoothed is s.smoothed and used == key and xp.array_equal(union, foreground):
            return level
    level = refine.background_level(s.smoothed, foreground, s.spacing, c.margin, c.window)
    s.background = (s.smoothed, key, foreground, level)
    return level


def _diameter(s: _State) -> None:
    """Measure the diameter (``auto``) and the contrast to noise (a derived smoothing) on the
    mask so far and derive the lengths from them (no diameter found: the reference's). When a
    length the steps before used changes with them (the smoothing, a per-component
    refinement's windows or size filter, a smaller size filter), they run again with it; a
    larger size filter with no refinement before is applied to the mask as it is (the same).
    So the result is the one the measured diameter and smoothing give when set by hand; the
    re-run's time goes to its stages."""
    measured, s.contrast = _measured(s, s.measure_diameter)
    if s.measure_diameter:
        s.diameter = measured
    scale = s.diameter or diameter.REFERENCE
    resolved = diameter.resolve(s.given, scale, s.image.ndim, s.contrast)
    before, used_size = s.cfg, s.min_size
    s.cfg = resolved
    s.min_size = min_object_size(resolved, s.image.ndim, s.sampling)
    refined = bool(REFINE_BEFORE_SPLIT[resolved.refine.method])
    if (
        _early_settings(resolved) != _early_settings(before)
        or (refined and s.min_size != used_size)
        or s.min_size < used_size
    ):
        s.again = _early_steps(resolved)
    elif s.min_size > used_size:  # no refinement yet: the same as filtering in clean
        s.mask = clean.remove_small(s.mask, s.min_size, resolved.label.connectivity)


def _measured(s: _State, estimate: bool) -> tuple[float | None, float | None]:
    """The diameter estimate (if ``estimate``) and the contrast to noise (if the smoothing is
    derived) on the mask so far; None where not measured or nothing was found."""
    found = diameter.estimate(_estimate_mask(s), s.spacing) if estimate else None
    contrast = noise.contrast_to_noise(s.image, s.mask) if s.measure_contrast else None
    return found, contrast


def _early_settings(cfg: PipelineConfig) -> tuple:
    """What the steps before the diameter read from ``cfg``, bar the size filter: the
    smoothing (if any) and a per-component refinement's settings (not the objects cut's
    ``peak_smoothing``, which they never use)."""
    r = cfg.refine
    smoothing = cfg.smooth if str(cfg.smooth.method) != "none" else None
    refinement = (
        (r.method, r.fraction, r.margin, r.window) if REFINE_BEFORE_SPLIT[r.method] else None
    )
    return smoothing, refinement


def _label(s: _State) -> None:
    if s.labels is None:
        s.labels = label.connected_components(s.mask, s.cfg.label.connectivity)
    else:
        s.labels = label.raster_order(s.labels)
    if s.cfg.clean.exclude_border and s.labels.any():
        segmentation = backend_of(s.labels).segmentation
        s.labels = label.raster_order(segmentation.clear_border(s.labels))


def _measure(s: _State) -> None:
    microns = s.sampling.microns(s.image.ndim)
    s.objects = measure(s.labels, s.image, s.cfg.measure.shape_features, microns)
    s.summary = image_summary(s.labels, s.image, s.objects["area"])


# ------------------------------------------------------------------------------ the tables
SMOOTHERS: dict[str, Callable] = {"none": smooth.identity, "gaussian": smooth.gaussian}
GLOBAL_THRESHOLDS: dict[str, Callable] = {
    "otsu": threshold.otsu,
    "log_otsu": threshold.log_otsu,
    "li": threshold.li,
}
LOCAL_THRESHOLDS: dict[str, Callable] = {"local_gaussian": threshold.local_gaussian}
Step = tuple[str, Callable[[_State], None]]
SPLIT_STEPS: dict[str, list[Step]] = {"none": [], "watershed": [("split", _watershed)]}
REFINE_BEFORE_SPLIT: dict[str, list[Step]] = {
    "none": [],
    "components": [("refine", _refine_components)],
    "objects": [],
}
REFINE_AFTER_SPLIT: dict[str, list[Step]] = {
    "none": [],
    "components": [],
    "objects": [("refine", _refine_objects), ("split", _watershed)],  # needs a first split
}


def _early_steps(cfg: PipelineConfig) -> list[Step]:
    """The steps before the diameter is known (from the image to a clean mask)."""
    return [
        ("smooth", _smooth),
        ("threshold", _threshold),
        ("clean", _clean),
        *REFINE_BEFORE_SPLIT[cfg.refine.method],
    ]


def plan(cfg: PipelineConfig, measure_scale: bool = False) -> list[Step]:
    """The steps ``cfg`` runs, in order, each with the stage its time is booked to;
    ``measure_scale``: a diameter step after the early steps (``diameter=auto``, or a derived
    smoothing to measure against the noise)."""
    cfg = with_refinement(cfg)
    return [
        *_early_steps(cfg),
        *([("diameter", _diameter)] if measure_scale else []),
        *SPLIT_STEPS[cfg.split.method],
        *REFINE_AFTER_SPLIT[cfg.refine.method],
        ("label", _label),
        ("measure", _measure),
    ]


def segment(image: Any, cfg: PipelineConfig, sampling: Sampling | None = None) -> Segmentation:
    """smooth → threshold → clean → [refine] → [diameter] → split → [refine → split] → label →
    measure for one 2-D frame or 3-D stack (the chain ``cfg``'s methods pick).

    ``sampling`` (µm per pixel, µm between planes) scales every length of a z-stack's stages to
    its voxel spacing, turns the µm size filters into pixels and adds the µm columns.
    """
    state = _start(image, cfg, sampling or Sampling())
    _run(state, plan(state.cfg, state.measure_diameter or state.measure_contrast))
    return Segmentation(
        state.labels,
        state.objects,
        state.seconds,
        state.threshold,
        state.summary,
        state.diameter,
        state.contrast,
    )


def measured_scale(
    image: Any, cfg: PipelineConfig, sampling: Sampling | None = None
) -> tuple[float | None, float | None]:
    """What :func:`segment` measures on ``image`` before its split: the diameter estimate (px;
    :func:`hpcseg.pipeline.diameter.estimate`, with a given diameter too: None says there are
    no nuclei to measure) and the contrast to noise with a derived smoothing
    (:func:`hpcseg.pipeline.noise.contrast_to_noise`; None: not measured or nothing found);
    the steps before the split at the given diameter's lengths or the reference's. The tiled
    mode measures an image on samples of it this way."""
    state = _start(image, cfg, sampling or Sampling())
    _run(state, _early_steps(state.cfg))
    return _measured(state, estimate=True)  # with a given diameter too: no nuclei reads None


def _start(image: Any, cfg: PipelineConfig, sampling: Sampling) -> _State:
    """The state before the first step: ``cfg`` with its null lengths from the diameter it
    gives, or from the reference diameter until one is measured."""
    cfg = with_refinement(cfg)
    needed = diameter.needs(cfg)
    given = diameter.parse(cfg.diameter, sampling.pixel_size) if needed else None
    resolved = diameter.resolve(cfg, given or diameter.REFERENCE, image.ndim)
    return _State(
        image=image,
        cfg=resolved,
        sampling=sampling,
        spacing=sampling.spacing(image.ndim),
        min_size=min_object_size(resolved, image.ndim, sampling),
        given=cfg,
        diameter=given,
        measure_diameter=needed and given is None,
        measure_contrast=diameter.measures_noise(cfg, image.ndim),
        seconds=dict.fromkeys(STAGES, 0.0),
    )


def _run(state: _State, steps: list[Step]) -> None:
    """Run ``steps`` on ``state``, each step's time booked to its stage; steps a step asks to
    run again (``state.again``) run right after it."""
    wait = backend_of(state.image).synchronize  # a GPU's kernels end after the call returns
    for stage, step in steps:
        t0 = time.perf_counter()
        step(state)
        wait()
        state.seconds[stage] += time.perf_counter() - t0
        again, state.again = state.again, []
        _run(state, again)


def segment_on(
    backend: Backend, image: Any, cfg: PipelineConfig, sampling: Sampling | None = None
) -> tuple[Segmentation, float]:
    """:func:`segment` in ``backend``'s array library (a GPU's) for a host image, with the
    labels and columns brought back to the host; also the seconds the two copies took."""
    if backend is NUMPY:
        return segment(image, cfg, sampling), 0.0
    t0 = time.perf_counter()
    pixels = backend.from_host(image)
    backend.synchronize()
    upload = time.perf_counter() - t0
    result = segment(pixels, cfg, sampling)
    t0 = time.perf_counter()
    result.labels = backend.to_host(result.labels)
    result.objects = {name: backend.to_host(values) for name, values in result.objects.items()}
    return result, upload + time.perf_counter() - t0
