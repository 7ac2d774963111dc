"""BBBC039-like synthetic nuclei frames with instance ground truth.

Frame ``i`` of seed ``s`` depends only on ``(s, i)``, so asking for more frames never changes the
first ones. Each frame: 50-150 elliptic, textured nuclei (some touching, some in clumps of 3-5,
dim ones next to bright ones), per-image background and brightness varying ~10x across the set,
an illumination gradient and uneven background, optical blur, Poisson shot noise and Gaussian
read noise, as 16-bit counts. :func:`synthetic_stack` makes 3-D z-stacks the same way.
:class:`FrameStyle` turns the knobs (size, density, clumps, photons, texture, unevenness, blur)
for robustness benchmarks; its defaults give the frames above exactly.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage as ndi

from hpcseg.results.atomic import atomic_path

log = logging.getLogger(__name__)

GENERATOR_VERSION = 2


@dataclass(frozen=True)
class FrameStyle:
    """How :func:`synthetic_frame` draws a frame; the defaults are the demo set's frames.

    ``scale`` multiplies every length of the scene (nucleus axes, texture grain, blur), as a
    higher magnification would: nuclei are ~20 px across at 1, ~8 px at 0.4, ~60 px at 3.
    ``density`` multiplies the number of nuclei (50-150 a frame at 1, divided by ``scale``
    squared; in a 520x696 frame 1 covers 5-13 %, 4-6 is confluent). ``clumps`` multiplies the
    chance that a nucleus starts a clump of 3-5 or touches an earlier one. ``photons``
    multiplies the photon counts of nuclei and background (0.05: photon-starved, read noise
    matters). ``texture`` is the chromatin texture's relative std, ``unevenness`` the uneven
    background's amplitude, ``blur`` the optical blur's sigma in pixels at scale 1.
    """

    scale: float = 1.0
    density: float = 1.0
    clumps: float = 1.0
    photons: float = 1.0
    texture: float = 0.2
    unevenness: float = 0.35
    blur: float = 1.2


DEFAULT_STYLE = FrameStyle()


def _texture_and_levels(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    strength: float,
    grain: float = 2.0,
    photons: float = 1.0,
):
    """Chromatin-like texture (relative, std ``strength``, grain ``grain`` px), the photons at a
    nucleus and the background level, drawn in this order (the frames depend on it)."""
    texture = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), grain)
    texture *= strength / max(float(texture.std()), 1e-6)
    peak = 10 ** rng.uniform(math.log10(300.0), math.log10(3000.0))  # photons at a nucleus
    background = 10 ** rng.uniform(math.log10(20.0), math.log10(200.0))
    return texture, peak * photons, background * photons


def _camera(rng: np.random.Generator, signal: np.ndarray) -> np.ndarray:
    """Expected photons → 16-bit counts: Poisson shot noise, Gaussian read noise, offset 100."""
    counts = rng.poisson(np.clip(signal, 0, None)).astype(np.float32)
    counts += rng.normal(0.0, 4.0, size=signal.shape).astype(np.float32) + 100.0
    return np.clip(np.rint(counts), 0, 65535).astype(np.uint16)


def synthetic_frame(
    seed: int,
    index: int,
    shape: tuple[int, int] = (520, 696),
    style: FrameStyle = DEFAULT_STYLE,
):
    """Return ``(image uint16, instance mask uint16)`` for frame ``index`` of ``seed``."""
    rng = np.random.default_rng([GENERATOR_VERSION, seed, index])
    height, width = shape
    mask = np.zeros(shape, np.uint16)
    profile = np.zeros(shape, np.float32)
    k = style.scale
    # 50-150 nuclei at scale 1 and density 1 (in any frame size), as many per nucleus area
    n_target = max(1, round(int(rng.integers(50, 151)) * style.density / (k * k)))
    placed: list[tuple[float, float, float]] = []
    attempts = 0
    clump = 0  # members still to place in the current clump of 3-5
    while len(placed) < n_target and attempts < 30 * n_target:
        attempts += 1
        if clump == 0 and rng.random() < 0.08 * style.clumps:
            clump = int(rng.integers(3, 6))
        semi_major = k * rng.uniform(8.0, 15.0)
        semi_minor = semi_major * rng.uniform(0.6, 0.95)
        theta = rng.uniform(0.0, math.pi)
        if clump and placed:  # the next member of a clump: touches the previous one
            cy, cx, r0 = placed[-1]
            angle = rng.uniform(0.0, 2 * math.pi)
            dist = (r0 + semi_minor) * rng.uniform(0.9, 1.0)
            cy, cx = cy + dist * math.sin(angle), cx + dist * math.cos(angle)
        elif (
            placed and rng.random() < 0.25 * style.clumps
        ):  # a touching neighbour of an earlier nucleus
            cy, cx, r0 = placed[rng.integers(len(placed))]
            angle = rng.uniform(0.0, 2 * math.pi)
            dist = (r0 + semi_minor) * rng.uniform(0.85, 1.0)
            cy, cx = cy + dist * math.sin(angle), cx + dist * math.cos(angle)
        else:
            cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        reach = math.ceil(semi_major) + 1
        y0, y1 = max(0, int(cy) - reach), min(height, int(cy) + reach + 1)
        x0, x1 = max(0, int(cx) - reach), min(width, int(cx) + reach + 1)
        if y1 - y0 < 3 or x1 - x0 < 3:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        dy, dx = yy - cy, xx - cx
        cos_t, sin_t = math.cos(theta), math.sin(theta)
        u = (dx * cos_t + dy * sin_t) / semi_major
        v = (-dx * sin_t + dy * cos_t) / semi_minor
        rr = u * u + v * v
        inside = rr <= 1.0
        crop = mask[y0:y1, x0:x1]
        n_inside = int(inside.sum())
        if n_inside < 20 * k * k or np.count_nonzero(crop[inside]) > 0.15 * n_inside:
            clump = 0 if attempts % 5 == 0 else clump  # give up a clump that does not fit
            continue
        clump = max(0, clump - 1)
        new = inside & (crop == 0)
        crop[new] = len(placed) + 1
        brightness = rng.lognormal(0.0, 0.25)
        if rng.random() < 0.15:  # a dim nucleus, often right next to a bright one
            brightness *= rng.uniform(0.3, 0.5)
        dome = brightness * (0.7 + 0.3 * np.sqrt(np.clip(1.0 - rr, 0.0, 1.0)))
        profile[y0:y1, x0:x1][new] = dome[new]
        placed.append((cy, cx, semi_major))

    texture, peak, background = _texture_and_levels(
        rng, shape, style.texture, 2.0 * k, style.photons
    )
    gy, gx = rng.uniform(-1.0, 1.0, size=2)
    ramp_y = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None] * gy
    ramp_x = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :] * gx
    illumination = 0.85 + 0.3 * (ramp_y + ramp_x) / 2  # 0.7 .. 1.0 across the frame
    coarse = rng.standard_normal((height // 32 + 2, width // 32 + 2)).astype(np.float32)
    uneven = ndi.zoom(ndi.gaussian_filter(coarse, 1.0), 32, order=1)[:height, :width]
    uneven = 1.0 + style.unevenness * uneven / max(
        float(np.abs(uneven).max()), 1e-6
    )  # 0.65 .. 1.35
    signal = illumination * (background * uneven + peak * profile * (1.0 + texture))
    signal = ndi.gaussian_filter(signal, style.blur * k)
    return _camera(rng, signal), mask


def synthetic_stack(
    seed: int, index: int, shape: tuple[int, int, int] = (40, 192, 192), z_ratio: float = 2.0
):
    """Return ``(stack uint16, instance mask uint16)``: a z-stack of ellipsoidal nuclei.

    ``z_ratio`` is the plane step over the pixel size: nuclei (6-11 pixels in semi-axis, lying
    roughly flat) span ``1 / z_ratio`` as many planes as pixels. About a quarter touch a
    neighbour; 15 % are dim; blur is stronger along z, as in a widefield or confocal stack.
    """
    rng = np.random.default_rng([GENERATOR_VERSION, 3, seed, index])
    depth, height, width = shape
    mask = np.zeros(shape, np.uint16)
    profile = np.zeros(shape, np.float32)
    physical = np.array([depth * z_ratio, height, width], np.float64)  # in in-plane pixels
    n_target = max(3, int(rng.poisson(physical.prod() / 60_000)))
    placed: list[tuple[np.ndarray, float]] = []
    attempts = 0
    while len(placed) < n_target and attempts < 30 * n_target:
        attempts += 1
        semi = rng.uniform(6.0, 11.0) * np.array(
            [rng.uniform(0.6, 0.85), 1.0, rng.uniform(0.65, 0.95)]
        )
        theta = rng.uniform(0.0, math.pi)  # in-plane orientation
        if placed and rng.random() < 0.3:  # touching an earlier nucleus
            centre0, r0 = placed[rng.integers(len(placed))]
            direction = rng.standard_normal(3) * np.array([0.3, 1.0, 1.0])
            direction /= np.linalg.norm(direction)
            centre = centre0 + direction * (r0 + semi[2]) * rng.uniform(0.85, 1.0)
        else:
            centre = rng.uniform(0.0, 1.0, 3) * physical
        reach = np.ceil(semi.max() / np.array([z_ratio, 1.0, 1.0])).astype(int) + 1
        at = (centre / np.array([z_ratio, 1.0, 1.0])).astype(int)
        lo = np.maximum(at - reach, 0)
        hi = np.minimum(at + reach + 1, shape)
        if np.any(hi - lo < 2):
            continue
        zz, yy, xx = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        dz, dy, dx = zz * z_ratio - centre[0], yy - centre[1], xx - centre[2]
        cos_t, sin_t = math.cos(theta), math.sin(theta)
        u = (dx * cos_t + dy * sin_t) / semi[1]
        v = (-dx * sin_t + dy * cos_t) / semi[2]
        rr = u * u + v * v + (dz / semi[0]) ** 2
        inside = rr <= 1.0
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        crop = mask[box]
        n_inside = int(inside.sum())
        if n_inside < 40 or np.count_nonzero(crop[inside]) > 0.15 * n_inside:
            continue
        new = inside & (crop == 0)
        crop[new] = len(placed) + 1
        brightness = rng.lognormal(0.0, 0.25) * (
            rng.uniform(0.3, 0.5) if rng.random() < 0.15 else 1
        )
        dome = brightness * (0.7 + 0.3 * np.sqrt(np.clip(1.0 - rr, 0.0, 1.0)))
        profile[box][new] = dome[new]
        placed.append((centre, float(semi[1])))

    texture, peak, background = _texture_and_levels(rng, shape, 0.15)
    signal = background + peak * profile * (1.0 + texture)
    signal = ndi.gaussian_filter(signal, (2.0 / z_ratio, 1.2, 1.2))  # axial blur is larger
    return _camera(rng, signal), mask


def default_cache_dir() -> Path:
    """$HPCSEG_CACHE_DIR, else $XDG_CACHE_HOME/hpcseg, else ~/.cache/hpcseg."""
    if os.environ.get("HPCSEG_CACHE_DIR"):
        return Path(os.environ["HPCSEG_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "hpcseg"


def synthetic_folder(
    cache_dir: str | None, seed: int, shape: tuple[int, ...], z_ratio: float = 1.0
) -> Path:
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    size = "x".join(str(s) for s in shape) + (f"-z{z_ratio:g}" if len(shape) == 3 else "")
    return root / "synthetic" / f"g{GENERATOR_VERSION}-{size}-s{seed}"


def frame_name(seed: int, index: int) -> str:
    return f"synthetic-s{seed}-{index:05d}.tif"


def ensure_frames(
    folder: Path, seed: int, n_images: int, shape: tuple[int, ...], z_ratio: float = 1.0
) -> list[Path]:
    """Generate the missing frames or stacks (3-D ``shape``) and their masks into ``folder``;
    return the image paths."""
    images, masks = folder / "images", folder / "masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    paths = [images / frame_name(seed, i) for i in range(n_images)]
    missing = [i for i, p in enumerate(paths) if not p.exists()]
    if missing:
        log.info("generating %d synthetic frames into %s", len(missing), folder)
    for i in missing:
        if len(shape) == 3:
            image, mask = synthetic_stack(seed, i, shape, z_ratio)
        else:
            image, mask = synthetic_frame(seed, i, shape)
        name = frame_name(seed, i)
        with atomic_path(masks / name) as tmp:
            tifffile.imwrite(tmp, mask, compression="zlib")
        with atomic_path(images / name) as tmp:  # the image last: it marks the pair complete
            tifffile.imwrite(tmp, image)
    return paths
