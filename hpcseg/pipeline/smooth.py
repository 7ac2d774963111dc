"""Denoising before the threshold."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from hpcseg.pipeline.sampling import per_axis


def gaussian(
    image: np.ndarray, sigma: float, keep_dtype: bool, spacing: tuple[float, ...] | None = None
) -> np.ndarray:
    """Gaussian blur (scipy, mode 'reflect', truncate 4); ``sigma`` in in-plane pixels, scaled
    down along the z axis of an anisotropic stack by its ``spacing``.

    ``keep_dtype=True`` filters in the input dtype exactly as ``dask_image.ndfilters.
    gaussian_filter`` does on a whole-frame chunk (the blog); otherwise the result is float32.
    """
    if sigma <= 0:
        return image if keep_dtype else image.astype(np.float32)
    if spacing is not None:
        sigma = per_axis(sigma, spacing)
    if keep_dtype:
        return ndi.gaussian_filter(image, sigma, mode="reflect", truncate=4.0)
    return ndi.gaussian_filter(image.astype(np.float32), sigma, mode="reflect", truncate=4.0)


def identity(
    image: np.ndarray, sigma: float, keep_dtype: bool, spacing: tuple[float, ...] | None = None
) -> np.ndarray:
    """No smoothing."""
    return image if keep_dtype else image.astype(np.float32)
