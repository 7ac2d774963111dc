"""The histogram the global thresholds are computed on, made where the image lives."""

from __future__ import annotations

import numpy as np

from hpcseg.pipeline.backend import backend_of

BINS = 256  # scikit-image's default for float images


def histogram(image) -> tuple[np.ndarray, np.ndarray]:
    """(counts, bin centres) on the host, as ``skimage.exposure.histogram(image,
    source_range='image')`` computes them: a bincount for integers, 256 bins over the image's
    range for floats."""
    be = backend_of(image)
    xp = be.xp
    low, high = image.min(), image.max()
    if bool(low == high):  # one value: one bin (NumPy cannot make 256 bins of a float's ulp)
        return np.array([image.size]), np.array([be.to_host(low)[()]])
    if np.issubdtype(image.dtype, np.integer):
        low_i, high_i = int(low), int(high)
        counts = xp.bincount(image.ravel().astype(xp.intp) - low_i, minlength=high_i - low_i + 1)
        return be.to_host(counts), np.arange(low_i, high_i + 1)
    # the edges as NumPy makes them for this dtype and range, then counted where the image is
    low, high = be.to_host(low)[()], be.to_host(high)[()]
    edges = float_edges(image.dtype, low, high)
    if xp is np:  # NumPy's even-bins path: the same counts as these edges give, faster
        counts = np.histogram(image, BINS, (low, high))[0]
    else:
        counts = be.to_host(xp.histogram(image, bins=be.from_host(edges))[0])
    return counts, centres(edges)


def float_edges(dtype, low, high) -> np.ndarray:
    """The :data:`BINS` + 1 bin edges of a float image of ``dtype`` over [``low``, ``high``], as
    NumPy makes them (in that dtype's arithmetic): one definition for the whole image and the
    tiled mode's summed chunk histograms."""
    return np.histogram_bin_edges(np.zeros(1, dtype), BINS, (low, high))


def centres(edges: np.ndarray) -> np.ndarray:
    """The bins' centres from their edges."""
    return (edges[:-1] + edges[1:]) / 2.0
