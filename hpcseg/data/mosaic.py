"""A synthetic mosaic too large for one worker, rendered region by region, exactly.

The mosaic is an unbounded plane (or volume) of nuclei that ``shape`` crops, a pure function of
its seed and parameters: any region is rendered from what lies in or near it, so regions tile
exactly into the whole (to the last bit) whatever the split. That is what tests and benchmarks of
the tiled mode need: a 16384 x 16384 image of ~100k nuclei written chunk by chunk, never whole
in memory, with instance ground truth for any region.

* Nuclei: one per cell of a jittered grid (85 % of cells), a fifth of them with a touching
  partner, like :mod:`hpcseg.data.synthetic`'s: ellipses (ellipsoids in 3-D) of semi-major axis
  6-14 px, 15 % dim, bright domes with a chromatin-like texture. A cell's nuclei are drawn from
  an RNG seeded by (seed, block of cells), so they do not depend on the region asked for; where
  nuclei overlap, the one of the lower id (cell order) owns the pixel.
* Background: a smooth uneven field (long waves along y times long waves along x), ±~30 %.
* Optics and camera: Gaussian blur (stronger along z), then shot and read noise as one Gaussian
  of variance ``signal + 4²`` (the normal approximation of Poisson counts at these levels),
  offset 100, 16-bit. Every random pixel value (texture, noise) comes from an RNG per fixed
  block of the plane, seeded by (seed, stream, block index); filters are applied to the region
  grown by their radius and cropped, so a region's pixels equal the whole image's.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import tifffile
import zarr
from scipy import ndimage as ndi

from hpcseg.results.atomic import atomic_path

GENERATOR_VERSION = 1

DENSITY_2D = 370.0  # nuclei per 10^6 px²: one per ~2,700 px², ~100k in 16384²
DENSITY_3D = 16.0  # nuclei per 10^6 voxels of in-plane pixel size (as synthetic_stack)
OCCUPANCY = 0.85  # fraction of grid cells with a nucleus
DIM_FRACTION = 0.15
READ_NOISE = 4.0
OFFSET = 100.0
TRUNCATE = 4.0  # the blur's reach in sigmas (scipy's default): int(4 sigma + 0.5) pixels
TEXTURE_SIGMA, TEXTURE_TRUNCATE = 2.0, 3.0  # the texture is smoothed white noise

_NOISE_BLOCK = {2: (128, 128), 3: (16, 64, 64)}  # the random pixels' RNG blocks
_CELL_BLOCK = {2: 8, 3: 4}  # grid cells per RNG block of cells, per axis
_INDEX_OFFSET = 1 << 40  # block indices are >= 0 for SeedSequence (the plane is unbounded)
_STREAM_CELLS, _STREAM_TEXTURE, _STREAM_NOISE = 1, 2, 3

Kind = Literal["zarr", "ome-zarr", "tiff"]


@dataclass(frozen=True)
class _Mosaic:
    """A mosaic's parameters and what follows from them and the seed."""

    seed: int
    ndim: int
    radius: tuple[float, float]  # range of the in-plane semi-major axis, px
    pair_fraction: float
    z_ratio: float  # plane step / pixel size (3-D)
    cell: tuple[float, ...]  # grid cell edge per axis (z in planes)
    peak: float  # photons at a nucleus
    background: float  # photons of background
    texture: float  # texture strength (relative std)
    waves: tuple[tuple[tuple[float, float], ...], ...]  # per axis (y, x): (wavenumber, phase)

    @property
    def blur(self) -> tuple[float, ...]:
        return (2.0 / self.z_ratio, 1.2, 1.2) if self.ndim == 3 else (1.2, 1.2)

    @property
    def half(self) -> tuple[int, ...]:
        """A nucleus's stencil half-size per axis (its pixels lie within this of its centre)."""
        r = math.ceil(self.radius[1]) + 1
        return (math.ceil(self.radius[1] / self.z_ratio) + 1, r, r) if self.ndim == 3 else (r, r)

    @property
    def reach(self) -> tuple[float, ...]:
        """How far beyond its grid cell a nucleus (a partner included) can have pixels."""
        r = 3.0 * self.radius[1] + 2.0
        return (r / self.z_ratio + 2.0, r, r) if self.ndim == 3 else (r, r)


def _mosaic(
    seed: int,
    ndim: int,
    density: float | None,
    radius: tuple[float, float],
    pair_fraction: float,
    z_ratio: float,
) -> _Mosaic:
    if ndim not in (2, 3):
        raise ValueError(f"a mosaic is 2-D (Y, X) or 3-D (Z, Y, X), not {ndim}-D")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, not {seed}")
    if not 0 < radius[0] <= radius[1]:
        raise ValueError(f"radius must be a range (min, max) of positive pixels, not {radius}")
    if not 0 <= pair_fraction <= 1 or z_ratio <= 0:
        raise ValueError("pair_fraction must be in [0, 1] and z_ratio > 0")
    density = (DENSITY_2D if ndim == 2 else DENSITY_3D) if density is None else density
    if density <= 0:
        raise ValueError(f"density must be > 0, not {density}")
    per_cell = OCCUPANCY * (1.0 + pair_fraction)
    edge = (per_cell * 1e6 / density) ** (1.0 / ndim)  # in in-plane pixels
    cell = (edge / z_ratio, edge, edge) if ndim == 3 else (edge, edge)
    rng = np.random.default_rng([GENERATOR_VERSION, seed, 0, ndim])
    peak = 10 ** rng.uniform(math.log10(300.0), math.log10(3000.0))
    background = 10 ** rng.uniform(math.log10(20.0), math.log10(200.0))
    waves = tuple(  # the uneven background: 3 long waves (500-4000 px) along y, 3 along x
        tuple((2 * math.pi / 10 ** rng.uniform(2.7, 3.6), rng.uniform(0, 2 * math.pi))
              for _ in range(3))
        for _axis in range(2)
    )  # fmt: skip
    return _Mosaic(
        seed, ndim, (float(radius[0]), float(radius[1])), float(pair_fraction), float(z_ratio),
        cell, peak, background, 0.2 if ndim == 2 else 0.15, waves,
    )  # fmt: skip


# ------------------------------------------------------------------------------ the nuclei
@dataclass(frozen=True)
class _Nuclei:
    """Nuclei as arrays (one row each), sorted by id."""

    ids: np.ndarray  # int64, unique: 2 * (cell's rank in row-major order) + 1 (+1: partner)
    centre: np.ndarray  # (N, ndim) float64, pixels (z in planes)
    semi: np.ndarray  # (N, 3): z (physical, in-plane px; 0 in 2-D), major, minor
    theta: np.ndarray  # in-plane orientation
    brightness: np.ndarray


def _cell_block(m: _Mosaic, block: tuple[int, ...]) -> _Nuclei:
    """The nuclei of one block of grid cells: a function of (seed, block) only."""
    g = _CELL_BLOCK[m.ndim]
    rng = np.random.default_rng(
        [GENERATOR_VERSION, m.seed, _STREAM_CELLS, m.ndim, *(b + _INDEX_OFFSET for b in block)]
    )
    s = (g,) * m.ndim
    r0, r1 = m.radius
    occupied = rng.random(s) < OCCUPANCY
    jitter = rng.random((m.ndim, *s))
    major = rng.uniform(r0, r1, s)
    minor = major * rng.uniform(0.6, 0.95, s)
    flat_z = major * rng.uniform(0.6, 0.85, s) if m.ndim == 3 else np.zeros(s)
    theta = rng.uniform(0.0, math.pi, s)
    bright = rng.lognormal(0.0, 0.25, s) * np.where(
        rng.random(s) < DIM_FRACTION, rng.uniform(0.3, 0.5, s), 1.0
    )
    paired = occupied & (rng.random(s) < m.pair_fraction)
    if m.ndim == 3:  # where the partner is: mostly side by side, as in synthetic_stack
        direction = rng.standard_normal((3, *s)) * np.array([0.3, 1.0, 1.0]).reshape(3, 1, 1, 1)
        direction /= np.maximum(np.linalg.norm(direction, axis=0), 1e-12)
    else:
        angle = rng.uniform(0.0, 2 * math.pi, s)
        direction = np.stack([np.sin(angle), np.cos(angle)])
    p_major = rng.uniform(r0, r1, s)
    p_minor = p_major * rng.uniform(0.6, 0.95, s)
    p_flat_z = p_major * rng.uniform(0.6, 0.85, s) if m.ndim == 3 else np.zeros(s)
    p_dist = rng.uniform(0.85, 1.0, s)
    p_theta = rng.uniform(0.0, math.pi, s)
    p_bright = rng.lognormal(0.0, 0.25, s) * np.where(
        rng.random(s) < DIM_FRACTION, rng.uniform(0.3, 0.5, s), 1.0
    )

    # the first nucleus lies inside its cell where the cell is large enough
    index = np.stack(np.meshgrid(*(np.arange(g) + b * g for b in block), indexing="ij"))
    column = (-1, *(1,) * m.ndim)
    cell = np.array(m.cell).reshape(column)
    if m.ndim == 3:  # extents in pixels (z in planes)
        extent, to_planes = np.stack([flat_z / m.z_ratio, major, major]), [m.z_ratio, 1, 1]
    else:
        extent, to_planes = np.stack([major, major]), [1, 1]
    fits = cell > 2 * extent
    centre = index * cell + np.where(fits, extent + jitter * (cell - 2 * extent), jitter * cell)
    step = direction * ((major + p_minor) * p_dist)  # touching, in in-plane pixels
    p_centre = centre + step / np.array(to_planes, np.float64).reshape(column)

    rank = _cell_rank(index)
    ids = np.stack([2 * rank + 1, 2 * rank + 2], axis=-1)[np.stack([occupied, paired], -1)]
    order = np.argsort(ids, kind="stable")
    pick = np.stack([occupied, paired], axis=-1)

    def both(first: np.ndarray, partner: np.ndarray) -> np.ndarray:
        return np.stack([first, partner], axis=-1)[pick][order]

    centres = np.stack([both(centre[a], p_centre[a]) for a in range(m.ndim)], axis=-1)
    semi = np.stack([both(flat_z, p_flat_z), both(major, p_major), both(minor, p_minor)], -1)
    return _Nuclei(ids[order], centres, semi, both(theta, p_theta), both(bright, p_bright))


_SPAN = 1 << 20  # grid cells per axis the ranks cover, centred on 0


def _cell_rank(index: np.ndarray) -> np.ndarray:
    """Cells' rank in row-major order over the unbounded grid (int64; comparing ranks is
    comparing index tuples lexicographically)."""
    rank = np.zeros(index.shape[1:], np.int64)
    for axis_index in index:
        rank = rank * _SPAN + (axis_index.astype(np.int64) + _SPAN // 2)
    return rank


def _labels(m: _Mosaic, shape: tuple[int, ...], ids: np.ndarray) -> np.ndarray:
    """Nucleus ids as small labels (>= 1, in the same order): ranks over the cells that can
    have pixels in ``shape``, not over the unbounded grid."""
    pad = [math.ceil(r / c) + 1 for r, c in zip(m.reach, m.cell, strict=True)]
    count = [math.ceil(n / c) + 2 * p for n, c, p in zip(shape, m.cell, pad, strict=True)]
    rank, partner = (ids - 1) // 2, (ids - 1) % 2
    local = np.zeros_like(rank)
    for a in reversed(range(m.ndim)):  # decode the rank, re-encode it over the small grid
        index = rank % _SPAN - _SPAN // 2 + pad[a]
        rank = rank // _SPAN
        local += index * math.prod(count[a + 1 :])
    labels = 2 * local + partner + 1
    if labels.size and labels.max() >= 2**31:
        raise ValueError(f"a mosaic of shape {shape} has more nuclei than int32 labels")
    return labels


def _nuclei(m: _Mosaic, lo: tuple[int, ...], hi: tuple[int, ...]) -> _Nuclei:
    """The nuclei that can have pixels in the box [lo, hi), sorted by id."""
    g = _CELL_BLOCK[m.ndim]
    ranges = []
    for a in range(m.ndim):
        first = math.floor((lo[a] - m.reach[a]) / m.cell[a])
        last = math.floor((hi[a] - 1 + m.reach[a]) / m.cell[a])
        ranges.append(range(first // g, last // g + 1))
    parts = [_cell_block(m, block) for block in itertools.product(*ranges)]
    half = np.array(m.half)
    centre = np.concatenate([p.centre for p in parts])
    near = np.all((centre + half + 1 > lo) & (centre - half - 1 < hi), axis=1)
    ids = np.concatenate([p.ids for p in parts])[near]
    order = np.argsort(ids, kind="stable")

    def pick(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])[near][order]

    return _Nuclei(ids[order], pick("centre"), pick("semi"), pick("theta"), pick("brightness"))


def _render_nuclei(
    m: _Mosaic, lo: tuple[int, ...], hi: tuple[int, ...], shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """The nuclei's profile (float32 domes of their brightness) on the box [lo, hi), or given
    the mosaic's ``shape`` their int32 instance labels; the lower id owns an overlap."""
    labels = shape is not None
    nuclei = _nuclei(m, lo, hi)
    box = tuple(b - a for a, b in zip(lo, hi, strict=True))
    n = len(nuclei.ids)
    if n == 0:
        return np.zeros(box, np.int32 if labels else np.float32)
    # every nucleus on a stencil of fixed size around its centre: (n, *stencil) arrays
    coords, inside_box = [], []
    for a, h in enumerate(m.half):
        base = np.floor(nuclei.centre[:, a]).astype(np.int64)
        p = base[:, None] + np.arange(-h, h + 1)[None, :]
        view = [slice(None)] + [None] * m.ndim
        view[1 + a] = slice(None)
        coords.append(p[tuple(view)])
        inside_box.append(((p >= lo[a]) & (p < hi[a]))[tuple(view)])

    def rows(values: np.ndarray) -> np.ndarray:
        return values.reshape(-1, *(1,) * m.ndim)

    dy = coords[-2] - rows(nuclei.centre[:, -2])
    dx = coords[-1] - rows(nuclei.centre[:, -1])
    cos_t, sin_t = rows(np.cos(nuclei.theta)), rows(np.sin(nuclei.theta))
    u = (dx * cos_t + dy * sin_t) / rows(nuclei.semi[:, 1])
    v = (-dx * sin_t + dy * cos_t) / rows(nuclei.semi[:, 2])
    rr = u * u + v * v
    if m.ndim == 3:
        dz = (coords[0] - rows(nuclei.centre[:, 0])) * m.z_ratio
        rr = rr + (dz / rows(nuclei.semi[:, 0])) ** 2
    valid = rr <= 1.0
    for ok in inside_box:
        valid &= ok
    flat = np.zeros(valid.shape, np.int64)
    for a in range(m.ndim):
        flat = flat * box[a] + (coords[a] - lo[a])
    index = flat[valid]
    rank = np.broadcast_to(rows(np.arange(n, dtype=np.int32)), valid.shape)[valid]
    owner = np.full(math.prod(box), n, np.int32)
    np.minimum.at(owner, index, rank)  # the lowest id: the same whatever the box
    if labels:
        ids = np.append(_labels(m, shape, nuclei.ids), 0)
        return ids[owner].astype(np.int32).reshape(box)
    win = owner[index] == rank
    bright = np.broadcast_to(rows(nuclei.brightness), valid.shape)[valid]
    dome = bright * (0.7 + 0.3 * np.sqrt(np.clip(1.0 - rr[valid], 0.0, 1.0)))
    profile = np.zeros(math.prod(box), np.float32)
    profile[index[win]] = dome[win]
    return profile.reshape(box)


# ---------------------------------------------------------------------- per-pixel randomness
def _block_noise(
    m: _Mosaic, stream: int, lo: tuple[int, ...], hi: tuple[int, ...], uniform: bool = False
) -> np.ndarray:
    """Float32 white noise of mean 0 and std 1 (normal, or with ``uniform`` uniform: 4x faster)
    on the box [lo, hi) of the unbounded plane: each fixed block's values come from an RNG
    seeded by (seed, stream, block index)."""
    block = _NOISE_BLOCK[m.ndim]
    out = np.empty(tuple(b - a for a, b in zip(lo, hi, strict=True)), np.float32)
    ranges = [range(a // s, -(-b // s)) for a, b, s in zip(lo, hi, block, strict=True)]
    for index in itertools.product(*ranges):
        rng = np.random.default_rng(
            [GENERATOR_VERSION, m.seed, stream, m.ndim, *(i + _INDEX_OFFSET for i in index)]
        )
        if uniform:
            values = rng.random(block, dtype=np.float32)
            values -= np.float32(0.5)
            values *= np.float32(math.sqrt(12.0))
        else:
            values = rng.standard_normal(block, dtype=np.float32)
        src, dst = [], []
        for i, s, a, b in zip(index, block, lo, hi, strict=True):
            start, stop = max(i * s, a), min((i + 1) * s, b)
            src.append(slice(start - i * s, stop - i * s))
            dst.append(slice(start - a, stop - a))
        out[tuple(dst)] = values[tuple(src)]
    return out


def _reach(sigma: float, truncate: float = TRUNCATE) -> int:
    """How far scipy's Gaussian filter reaches: its result is exact that far from the edges."""
    return int(truncate * sigma + 0.5)


def _crop(data: np.ndarray, margins: tuple[int, ...]) -> np.ndarray:
    return data[tuple(slice(r, n - r) for r, n in zip(margins, data.shape, strict=True))]


def _filter_std(sigma: float, truncate: float) -> float:
    """The std of unit white noise after scipy's 1-D Gaussian filter of ``sigma``."""
    r = _reach(sigma, truncate)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    return float(np.sqrt((k * k).sum()))


def _uneven(m: _Mosaic, lo: tuple[int, ...], hi: tuple[int, ...]) -> np.ndarray:
    """The smooth background field (about 1 ± 0.3) on the box's (Y, X), from global
    coordinates: a product of waves along y and along x (one outer product: cheap)."""
    axes = []
    for axis, waves in zip((-2, -1), m.waves, strict=True):
        t = np.arange(lo[axis], hi[axis], dtype=np.float64)
        axes.append(1.0 + 0.12 * sum(np.sin(k * t + phase) for k, phase in waves))
    return np.multiply.outer(axes[0].astype(np.float32), axes[1].astype(np.float32))


# --------------------------------------------------------------------------------- public
def _region_bounds(
    shape: tuple[int, ...], region: tuple[slice, ...] | None
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"shape must be 2-D (Y, X) or 3-D (Z, Y, X) and positive, not {shape}")
    region = tuple(slice(None) for _ in shape) if region is None else tuple(region)
    if len(region) != len(shape) or not all(isinstance(s, slice) for s in region):
        raise ValueError(f"region must be {len(shape)} slices, got {region!r}")
    lo, hi = [], []
    for s, n in zip(region, shape, strict=True):
        if s.step not in (None, 1):
            raise ValueError(f"region slices must have step 1, got {s!r}")
        start, stop, _ = s.indices(n)
        lo.append(start)
        hi.append(max(start, stop))
    return tuple(lo), tuple(hi)


def mosaic_region(
    seed: int,
    shape: tuple[int, ...],
    region: tuple[slice, ...],
    *,
    density: float | None = None,
    radius: tuple[float, float] = (6.0, 14.0),
    pair_fraction: float = 0.2,
    z_ratio: float = 2.0,
) -> np.ndarray:
    """The uint16 pixels of ``region`` of the mosaic of ``shape`` ((Y, X) or (Z, Y, X)) and
    ``seed``: identical whatever regions are asked for, so regions tile exactly into the whole.

    ``density``: nuclei per 10^6 px² (2-D; default 370, one per ~2,700 px²) or per 10^6 voxels
    of in-plane pixel size (3-D; default 16); ``radius``: the range of the semi-major axis in
    pixels; ``pair_fraction``: the fraction of grid cells whose nucleus has a touching partner;
    ``z_ratio``: the plane step over the pixel size (3-D).
    """
    lo, hi = _region_bounds(shape, region)
    m = _mosaic(seed, len(lo), density, radius, pair_fraction, z_ratio)
    if any(b <= a for a, b in zip(lo, hi, strict=True)):
        return np.zeros(tuple(b - a for a, b in zip(lo, hi, strict=True)), np.uint16)
    blur = tuple(_reach(s) for s in m.blur)
    tex = _reach(TEXTURE_SIGMA, TEXTURE_TRUNCATE)
    outer_lo = tuple(a - r for a, r in zip(lo, blur, strict=True))
    outer_hi = tuple(b + r for b, r in zip(hi, blur, strict=True))
    profile = _render_nuclei(m, outer_lo, outer_hi)

    noise = _block_noise(
        m,
        _STREAM_TEXTURE,
        tuple(a - tex for a in outer_lo),
        tuple(b + tex for b in outer_hi),
        uniform=True,
    )
    texture = ndi.gaussian_filter(noise, TEXTURE_SIGMA, truncate=TEXTURE_TRUNCATE)
    texture = _crop(texture, (tex,) * m.ndim)
    texture *= m.texture / _filter_std(TEXTURE_SIGMA, TEXTURE_TRUNCATE) ** m.ndim
    signal = profile * texture
    signal += profile
    signal *= np.float32(m.peak)
    signal += np.float32(m.background) * _uneven(m, outer_lo, outer_hi)
    del profile, texture, noise
    signal = _crop(ndi.gaussian_filter(signal, m.blur, truncate=TRUNCATE), blur)

    # shot and read noise: Poisson(signal) + N(0, 4^2) ~ signal + sqrt(signal + 16) N(0, 1)
    spread = np.maximum(signal, 0.0)
    spread += np.float32(READ_NOISE**2)
    np.sqrt(spread, out=spread)
    spread *= _block_noise(m, _STREAM_NOISE, lo, hi)
    signal += spread
    signal += np.float32(OFFSET)
    np.rint(signal, out=signal)
    np.clip(signal, 0, 65535, out=signal)
    return signal.astype(np.uint16)


def mosaic_truth(
    seed: int,
    shape: tuple[int, ...],
    region: tuple[slice, ...],
    *,
    density: float | None = None,
    radius: tuple[float, float] = (6.0, 14.0),
    pair_fraction: float = 0.2,
    z_ratio: float = 2.0,
) -> np.ndarray:
    """The int32 instance labels of ``region`` (0: background; a nucleus's label is its id,
    unique in the mosaic but not consecutive), for the same parameters as
    :func:`mosaic_region`."""
    lo, hi = _region_bounds(shape, region)
    m = _mosaic(seed, len(lo), density, radius, pair_fraction, z_ratio)
    return _render_nuclei(m, lo, hi, shape=tuple(int(n) for n in shape))


def mosaic_nuclei(
    seed: int,
    shape: tuple[int, ...],
    region: tuple[slice, ...] | None = None,
    *,
    density: float | None = None,
    radius: tuple[float, float] = (6.0, 14.0),
    pair_fraction: float = 0.2,
    z_ratio: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The labels (int64, as :func:`mosaic_truth` gives them) and centres ((N, ndim) float64,
    pixels; z in planes) of the nuclei whose centre lies in ``region`` (default: the whole
    mosaic), without rendering a pixel; ``len`` of them counts the nuclei."""
    lo, hi = _region_bounds(shape, region)
    m = _mosaic(seed, len(lo), density, radius, pair_fraction, z_ratio)
    g = _CELL_BLOCK[m.ndim]
    ranges = [
        range(math.floor((lo[a] - m.reach[a]) / m.cell[a]) // g,
              math.floor((hi[a] + m.reach[a]) / m.cell[a]) // g + 1)
        for a in range(m.ndim)
    ]  # fmt: skip
    ids, centres = [], []
    for block in itertools.product(*ranges):
        part = _cell_block(m, block)
        keep = np.all((part.centre >= lo) & (part.centre < hi), axis=1)
        ids.append(part.ids[keep])
        centres.append(part.centre[keep])
    all_ids = np.concatenate(ids)
    order = np.argsort(all_ids, kind="stable")
    return _labels(m, tuple(int(n) for n in shape), all_ids[order]), np.concatenate(centres)[order]


def write_mosaic(
    path: str | os.PathLike,
    shape: tuple[int, ...],
    seed: int = 0,
    *,
    chunk: int = 2048,
    kind: Kind = "zarr",
    tile: int = 512,
    pixel_size: float = 0.65,
    ome_version: Literal["0.4", "0.5"] = "0.5",
    compression: str | None = None,
    workers: int | None = None,
    density: float | None = None,
    radius: tuple[float, float] = (6.0, 14.0),
    pair_fraction: float = 0.2,
    z_ratio: float = 2.0,
) -> str:
    """Write the mosaic of ``shape`` and ``seed`` to ``path`` region by region (``chunk``
    pixels a side, on ``workers`` threads), never whole in memory; return the path.

    ``kind``: ``"zarr"`` a Zarr v3 array (dimension names y, x / z, y, x); ``"ome-zarr"`` an
    OME-Zarr image (NGFF ``ome_version`` 0.4 on Zarr v2 or 0.5 on Zarr v3; level 0 only, with
    axes in micrometres and a pixel-size scale); ``"tiff"`` a tiled BigTIFF (OME-TIFF if the
    name ends .ome.tif(f), else the pixel size in its resolution tags). ``tile`` is the storage
    tile or chunk edge (a multiple of 16); ``compression`` a tifffile codec name for TIFFs (Zarr
    uses its default Zstd). The file appears complete or not at all (written under a temporary
    name, then renamed).
    """
    shape = _region_bounds(shape, None)[1]
    ndim = len(shape)
    params = {"density": density, "radius": radius, "pair_fraction": pair_fraction,
              "z_ratio": z_ratio}  # fmt: skip
    _mosaic(seed, ndim, density, radius, pair_fraction, z_ratio)  # validates the parameters
    if kind not in ("zarr", "ome-zarr", "tiff"):
        raise ValueError(f"kind must be 'zarr', 'ome-zarr' or 'tiff', not {kind!r}")
    if tile < 16 or tile % 16:
        raise ValueError(f"tile must be a positive multiple of 16, not {tile}")
    if ome_version not in ("0.4", "0.5"):
        raise ValueError(f"ome_version must be '0.4' or '0.5', not {ome_version!r}")
    chunk = max(tile, -(-chunk // tile) * tile)  # regions cover whole storage chunks
    workers = workers or min(8, len(os.sched_getaffinity(0)))
    z_step = pixel_size * z_ratio if ndim == 3 else None
    target = Path(path)

    def render(region: tuple[slice, ...]) -> np.ndarray:
        return mosaic_region(seed, shape, region, **params)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        if kind == "tiff":
            with atomic_path(target) as tmp:
                _write_tiff(tmp, target.name, shape, tile, chunk, pixel_size, z_step,
                            compression, render, pool)  # fmt: skip
        else:
            with _atomic_folder(target) as tmp:
                _write_zarr(tmp, target.name, kind, shape, tile, chunk, pixel_size, z_step,
                            ome_version, render, pool)  # fmt: skip
    return str(target)


def _regions(shape: tuple[int, ...], step: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """The boxes of edge ``step`` (per axis) that tile ``shape``, in row-major order."""
    starts = [range(0, n, s) for n, s in zip(shape, step, strict=True)]
    return [
        tuple(slice(a, min(a + s, n)) for a, s, n in zip(corner, step, shape, strict=True))
        for corner in itertools.product(*starts)
    ]


def _zarr_chunks(shape: tuple[int, ...], tile: int) -> tuple[int, ...]:
    edge = (min(shape[0], 16),) if len(shape) == 3 else ()
    return edge + tuple(min(n, tile) for n in shape[-2:])


def _write_zarr(tmp, name, kind, shape, tile, chunk, pixel_size, z_step, ome_version, render,
                pool):  # fmt: skip
    names = ["z", "y", "x"][-len(shape) :]
    chunks = _zarr_chunks(shape, tile)
    if kind == "zarr":
        array = zarr.create_array(
            store=str(tmp), shape=shape, chunks=chunks, dtype="uint16", fill_value=0,
            dimension_names=names, zarr_format=3,
        )  # fmt: skip
    else:
        fmt = 2 if ome_version == "0.4" else 3
        group = zarr.open_group(str(tmp), mode="w", zarr_format=fmt)
        extra = {"chunk_key_encoding": {"name": "v2", "separator": "/"}} if fmt == 2 else {}
        if fmt == 3:
            extra["dimension_names"] = names
        array = group.create_array(
            "0", shape=shape, chunks=chunks, dtype="uint16", fill_value=0, **extra
        )
        scale = ([z_step] if z_step else []) + [pixel_size, pixel_size]
        multiscale = {
            "name": name.split(".")[0],
            "axes": [{"name": n, "type": "space", "unit": "micrometer"} for n in names],
            "datasets": [
                {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}
            ],
        }
        if fmt == 2:
            group.attrs["multiscales"] = [{"version": "0.4", **multiscale}]
        else:
            group.attrs["ome"] = {"version": "0.5", "multiscales": [multiscale]}
    step = ((chunks[0],) if len(shape) == 3 else ()) + (chunk, chunk)

    def write(region: tuple[slice, ...]) -> None:
        array[region] = render(region)

    for _ in pool.map(write, _regions(shape, step)):
        pass


def _write_tiff(tmp, name, shape, tile, chunk, pixel_size, z_step, compression, render, pool):
    ndim = len(shape)
    axes = "ZYX" if ndim == 3 else "YX"
    kwargs: dict = {}
    if name.lower().endswith((".ome.tif", ".ome.tiff")):
        meta = {"axes": axes, "PhysicalSizeX": pixel_size, "PhysicalSizeY": pixel_size,
                "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm"}  # fmt: skip
        if z_step:
            meta.update(PhysicalSizeZ=z_step, PhysicalSizeZUnit="µm")
        kwargs.update(ome=True, metadata=meta)
    else:
        kwargs.update(
            metadata={"axes": axes}, resolution=(1e4 / pixel_size, 1e4 / pixel_size),
            resolutionunit="CENTIMETER",
        )  # fmt: skip
    # bands of whole pages rows (2-D: `chunk` rows; 3-D: a few whole planes), rendered as
    # regions in parallel while the band before is written
    if ndim == 2:
        bands = _regions(shape, (chunk, shape[1]))
    else:
        planes = max(1, min(16, (256 << 20) // (2 * shape[1] * shape[2])))
        bands = _regions(shape, (planes, shape[1], shape[2]))

    def start(band: tuple[slice, ...]):
        step = (*(s.stop - s.start for s in band[:-2]), chunk, chunk)
        parts = [
            (part, pool.submit(render, tuple(slice(b.start + p.start, b.start + p.stop)
                                             for b, p in zip(band, part, strict=True))))
            for part in _regions(tuple(s.stop - s.start for s in band), step)
        ]  # fmt: skip
        return band, parts

    def tiles() -> Iterator[np.ndarray]:
        pending = start(bands[0])
        for i in range(len(bands)):
            band, parts = pending
            if i + 1 < len(bands):
                pending = start(bands[i + 1])
            data = np.empty(tuple(s.stop - s.start for s in band), np.uint16)
            for part, future in parts:
                data[part] = future.result()
            for page in data.reshape(-1, *data.shape[-2:]):
                for y in range(0, page.shape[0], tile):
                    for x in range(0, page.shape[1], tile):
                        yield page[y : y + tile, x : x + tile]

    tifffile.imwrite(
        tmp, tiles(), shape=shape, dtype=np.uint16, tile=(tile, tile), bigtiff=True,
        photometric="minisblack", compression=compression, **kwargs,
    )  # fmt: skip


@contextlib.contextmanager
def _atomic_folder(target: Path) -> Iterator[Path]:
    """A temporary folder next to ``target``, renamed onto it on success (an existing Zarr
    store there is replaced; anything else there is refused)."""
    if target.exists() and not (target.is_dir() and _looks_like_zarr(target)):
        raise FileExistsError(f"{target} exists and is not a Zarr store; not overwriting it")
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _looks_like_zarr(folder: Path) -> bool:
    return any((folder / m).exists() for m in (".zarray", ".zattrs", ".zgroup", "zarr.json"))
