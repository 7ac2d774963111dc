"""Denoising before the threshold."""

from __future__ import annotations

import numpy as np

from hpcseg.pipeline import portable
from hpcseg.pipeline.backend import backend_of
from hpcseg.pipeline.sampling import per_axis


def gaussian(image, sigma: float, keep_dtype: bool, spacing: tuple[float, ...] | None = None):
    """Gaussian blur (scipy, mode 'reflect', truncate 4); ``sigma`` in in-plane pixels, scaled
    down along the z axis of an anisotropic stack by its ``spacing``.

    ``keep_dtype=True`` filters in the input dtype exactly as ``dask_image.ndfilters.
    gaussian_filter`` does on a whole-frame chunk (the blog); otherwise the result is float32.
    """
    be = backend_of(image)
    if sigma <= 0:
        return identity(image, sigma, keep_dtype, spacing)
    if spacing is not None:
        sigma = per_axis(sigma, spacing)
    if keep_dtype and be.xp is not np and np.issubdtype(image.dtype, np.integer):
        sigmas = sigma if isinstance(sigma, tuple) else (float(sigma),) * image.ndim
        return portable.gaussian_filter_integer(image, sigmas)  # scipy's bits (the blog's)
    source = image if keep_dtype else image.astype(be.xp.float32)
    return be.ndimage.gaussian_filter(source, sigma, mode="reflect", truncate=4.0)


def identity(image, sigma: float, keep_dtype: bool, spacing: tuple[float, ...] | None = None):
    """No smoothing (float32 unless ``keep_dtype``)."""
    return image if keep_dtype else image.astype(backend_of(image).xp.float32)
