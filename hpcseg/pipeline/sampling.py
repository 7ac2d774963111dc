"""Pixel and voxel geometry: how big a pixel is, and how far apart the planes of a z-stack are.

Every length parameter of the pipeline (sigmas, radii, minimum distances, windows) is given in
*in-plane pixels*. On a z-stack whose planes are further apart than its pixels, the same physical
length spans fewer planes than pixels; :class:`Sampling` turns one length into per-axis lengths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Sampling:
    """``pixel_size``: micrometres per in-plane pixel (None = unknown); ``z_step``: micrometres
    between planes of a 3-D stack (None = as the pixels, i.e. isotropic)."""

    pixel_size: float | None = None
    z_step: float | None = None

    def spacing(self, ndim: int) -> tuple[float, ...]:
        """Per-axis voxel size relative to an in-plane pixel: (z ratio, 1, 1) or (1, 1)."""
        if ndim == 3 and self.pixel_size and self.z_step:
            return (self.z_step / self.pixel_size, 1.0, 1.0)
        return (1.0,) * ndim

    def microns(self, ndim: int) -> tuple[float, ...] | None:
        """Per-axis voxel size in µm; None when the pixel size is unknown."""
        if not self.pixel_size:
            return None
        return tuple(s * self.pixel_size for s in self.spacing(ndim))


def per_axis(length: float, spacing: tuple[float, ...]) -> tuple[float, ...]:
    """A length in in-plane pixels as a length along each axis (in that axis's samples)."""
    return tuple(length / s for s in spacing)


def window(radius: float, spacing: tuple[float, ...]) -> tuple[int, ...]:
    """An odd window size per axis covering ``radius`` in-plane pixels either side (>= 1)."""
    return tuple(2 * max(math.floor(radius / s + 0.5), 0) + 1 for s in spacing)
