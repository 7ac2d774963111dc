"""The chunk grid of a large image: each chunk's core, and crops around it with a halo.

Pure geometry (no pixels): the tiled mode's tasks are named by a chunk index, read a crop of
their core grown by the halo their operators need (clipped at the image border, where the
operators' own border rules apply exactly as on the whole image) and write their core only.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

Region = tuple[slice, ...]


@dataclass(frozen=True)
class ChunkGrid:
    """``shape`` cut into chunks of ``chunk`` (the last ones along an axis may be smaller)."""

    shape: tuple[int, ...]
    chunk: tuple[int, ...]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def counts(self) -> tuple[int, ...]:
        """Chunks along each axis."""
        return tuple(math.ceil(s / c) for s, c in zip(self.shape, self.chunk, strict=True))

    def __len__(self) -> int:
        return math.prod(self.counts)

    def indices(self) -> list[tuple[int, ...]]:
        """Every chunk's grid index, in raster order (the order of the global label offsets)."""
        return list(itertools.product(*(range(n) for n in self.counts)))

    def core(self, index: tuple[int, ...]) -> Region:
        """The pixels chunk ``index`` owns."""
        return tuple(
            slice(i * c, min((i + 1) * c, s))
            for i, c, s in zip(index, self.chunk, self.shape, strict=True)
        )

    def grow(self, region: Region, halo: tuple[int, ...]) -> Region:
        """``region`` grown by ``halo`` pixels per axis, clipped to the image."""
        return tuple(
            slice(max(r.start - h, 0), min(r.stop + h, s))
            for r, h, s in zip(region, halo, self.shape, strict=True)
        )

    def overlapping(self, region: Region) -> list[tuple[int, ...]]:
        """The chunks that share pixels with ``region``."""
        ranges = [
            range(r.start // c, (r.stop - 1) // c + 1)
            for r, c in zip(region, self.chunk, strict=True)
        ]
        return list(itertools.product(*ranges))


def within(inner: Region, outer: Region) -> Region:
    """``inner`` (image coordinates) as a slice of an array that holds ``outer``."""
    return tuple(
        slice(i.start - o.start, i.stop - o.start) for i, o in zip(inner, outer, strict=True)
    )


def union(a: Region, b: Region) -> Region:
    """The smallest box holding both regions."""
    return tuple(
        slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b, strict=True)
    )


def box(start, stop) -> Region:
    """A region from per-axis start (inclusive) and stop (exclusive) sequences."""
    return tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))


def boxes(starts: np.ndarray, stops: np.ndarray, origin) -> list[Region]:
    """Many boxes at once ((boxes, ndim) start and stop arrays) as regions of an array whose
    first pixel is at ``origin`` (one per axis, or one row per box): array arithmetic, then one
    tuple per box (per-object bookkeeping on thousands of objects a chunk)."""
    at = np.asarray(origin)
    low, high = (starts - at).tolist(), (stops - at).tolist()
    return [tuple(map(slice, a, b)) for a, b in zip(low, high, strict=True)]


def intersects(a: Region, b: Region) -> bool:
    return all(x.start < y.stop and y.start < x.stop for x, y in zip(a, b, strict=True))


def size(region: Region) -> int:
    return math.prod(r.stop - r.start for r in region)
