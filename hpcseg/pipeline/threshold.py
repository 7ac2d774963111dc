"""Foreground decisions: global (Otsu, Li) and the blog's Gaussian-weighted local threshold.

Global methods are split the scikit-image way: :func:`otsu`, :func:`log_otsu` and :func:`li`
compute the value, :func:`apply` applies it, so a chunked mode can compute the value once from
the whole image and apply it chunk by chunk.

:func:`local_gaussian` returns exactly ``image > scipy.ndimage.gaussian_filter(image.astype(
float64), (block_size - 1) / 6, mode='reflect') - offset`` (what ``dask_image.ndfilters.
threshold_local(..., method='gaussian')`` computes) but about 10x faster: the large-sigma Gaussian
is applied as two dense matrix products (BLAS), and the few pixels whose value lies within the
rounding-error bound of that approximation are decided again with scipy's own arithmetic,
bit for bit. See docs in the README ("blog2021 speed").
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

from hpcseg.pipeline.backend import backend_of
from hpcseg.pipeline.histogram import histogram

TRUNCATE = 4.0
# |BLAS result - scipy result| <= REL_TOL * max|image|: each of the two 1-D passes sums at most
# ~2*radius+1 positive-weight products, so both differ from the exact value by at most
# 2 * n * 2**-53 * max|x| (~1.6e-13 for n = 700); 1e-11 leaves a 30x margin.
REL_TOL = 1e-11
# Above this many rows with undecided pixels the full scipy filter is cheaper than the recheck.
MAX_RECHECK_ROWS = 48


def counted(
    method: str,
    image,
    correction: float = 1.0,
    lower: float = 0.0,
    noise: float = 3.0,
    floor: int | float | None = None,
    raw=None,
) -> float:
    """``method`` (a ``filters`` threshold: ``threshold_otsu``, ``threshold_li``) of the
    :func:`voters` of ``image`` above ``floor`` (None: every pixel), :func:`lowered` by
    ``lower``, times ``correction``; the floor when no pixel is above it."""
    votes = image if floor is None else voters(image, floor, raw)
    if votes.size == 0:
        return float(floor)
    return float(_lowered_value(votes, method, lower, noise)) * correction


def otsu(image, *args, **kwargs) -> float:
    """Otsu's global threshold (scikit-image), :func:`counted`'s arguments."""
    return counted("threshold_otsu", image, *args, **kwargs)


def li(image, *args, **kwargs) -> float:
    """Li's minimum cross-entropy global threshold (scikit-image), :func:`counted`'s
    arguments."""
    return counted("threshold_li", image, *args, **kwargs)


FLOAT_COUNT = 2.0**-16  # one count of a 16-bit sensor on a [0, 1] scale


def floor_for(dtype, given: float | None = None) -> int | float:
    """The intensity the global thresholds count pixels above (:func:`voters`; :func:`log_otsu`
    takes logs above it): ``given`` (``threshold.floor``) or one count, 1 for an integer image
    and :data:`FLOAT_COUNT` for a float one (a float image may be scaled to [0, 1], where a
    floor of 1 would leave nothing above it). Decided by the image as read, not by its smoothed
    copy, which is float unless ``smooth.keep_dtype``."""
    if given is not None:
        return given
    return 1 if np.dtype(dtype).kind in "biu" else FLOAT_COUNT


def log_intensity(image, floor: int | float = 1):
    """float32 log of the intensity clipped below at ``floor`` (what :func:`log_otsu`
    thresholds), the log taken in place in the float32 array (no third full-size array)."""
    xp = backend_of(image).xp
    logs = xp.maximum(image, floor).astype(xp.float32, copy=False)
    return xp.log(logs, out=logs)


def voters(image, floor: int | float, raw=None):
    """The values of ``image`` a global threshold counts: those of the pixels whose ``raw``
    value (the image as read; default ``image``) is above ``floor``, flattened when some are
    not. Zero padding around a stitched mosaic or a background subtracted to zero is one spike
    at the floor; counted, Otsu or Li splits it from everything else and every pixel above it
    becomes foreground (a frame padded to twice its width: F1@0.7 0.00 with otsu and li, 13
    objects of 136 with log_otsu). Left out, it is background (at or below any threshold above
    the floor).
    Decided on the pixels as read: smoothed, the padding's edge is a ramp of values down to
    the floor's, whose long tail in log units can draw Otsu's split into it."""
    above = (image if raw is None else raw) > floor
    return image if bool(above.all()) else image[above]


def log_votes(image, floor: int | float, raw=None):
    """The log intensities :func:`log_otsu`'s histogram is made of: :func:`log_intensity` of
    the :func:`voters` (empty when no pixel is above the floor)."""
    return log_intensity(voters(image, floor, raw), floor)


def log_otsu(
    image,
    correction: float = 1.0,
    lower: float = 0.0,
    noise: float = 3.0,
    floor: int | float = 1,
    raw=None,
) -> float:
    """Otsu's threshold on log intensity (:func:`log_votes`), in intensity units: the
    bright/dim range is compressed, so dim nuclei stay above it. ``lower`` moves it down in
    log units (:func:`lowered`). ``floor``: :func:`floor_for` of ``raw``, the image as read
    before smoothing (the pipeline passes both; by default 1, as for counts, and ``image``).
    With no pixel above the floor the threshold is the floor (no foreground)."""
    votes = log_votes(image, floor, raw)
    if votes.size == 0:
        return float(floor)
    value = _lowered_value(votes, "threshold_otsu", lower, noise)
    return float(backend_of(image).xp.exp(value)) * correction


def lower_for(lower: float | None, ndim: int) -> float:
    """``threshold.lower`` for an image of ``ndim`` dimensions: null is 0.5 for 2-D frames
    (robustness grid: F1@0.7 +0.003 to +0.09 on 13 of 16 conditions) and 0 for z-stacks (their
    axial blur halo enters the mask: held-out stacks, mean F1 0.824 -> 0.792)."""
    if lower is not None:
        return lower
    return 0.5 if ndim == 2 else 0.0


def _lowered_value(image, method: str, lower: float, noise: float):
    """``method`` (a ``filters`` threshold) of ``image``, then :func:`lowered` on the image's
    histogram (made only when ``lower`` > 0, so the method's own value is untouched at 0;
    Otsu's then comes from that one histogram, as scikit-image would make it)."""
    be = backend_of(image)
    if lower <= 0:
        return getattr(be.filters, method)(image)
    counts, centres = histogram(image)
    if np.count_nonzero(counts) <= 1:  # a single value: the method returns it as it is
        return getattr(be.filters, method)(image)
    if method == "threshold_otsu":
        value = be.filters.threshold_otsu(hist=(counts, centres))
    else:  # Li's iteration
        value = getattr(be.filters, method)(image)
    return lowered(value, counts, centres, lower, noise)


def lowered(value, counts, centres, lower: float, noise: float = 3.0):
    """``value`` moved ``lower`` of the way down to the background level, but kept ``noise``
    background standard deviations above it (never raised; in ``value``'s dtype).

    The background level is the most frequent value below ``value`` (the histogram's mode);
    its standard deviation is read on the mode's lower flank, which nuclei do not reach: the
    value under which 31.7 % of the pixels at or below the mode lie is one deviation under it
    (a normal's 15.9th percentile). Otsu's value sits between the background and the typical
    nucleus, above the dim nuclei and the blurred edges; lowered, the mask takes them in and
    the per-object cut trims each object at its own level. The noise floor keeps a
    photon-starved frame's threshold out of its noise. A mode in the histogram's first bin
    leaves no flank to read the noise on (a background clipped at zero, zero padding): the
    value stays. ``counts``, ``centres``: the histogram of the values ``value`` is on (log
    intensity for log_otsu). An integer value is rounded down (the mask is ``image >
    value``)."""
    if lower <= 0:
        return value
    counts = np.asarray(counts)
    centres = np.asarray(centres, np.float64)
    below = np.flatnonzero(centres < float(value))
    if not len(below) or counts[below].sum() == 0:
        return value
    peak = int(np.argmax(counts[below]))
    if peak == 0:
        return value
    mode = float(centres[below[peak]])
    flank = np.cumsum(counts[below[: peak + 1]])
    sigma = mode - float(centres[below[np.searchsorted(flank, flank[-1] * (1.0 - 0.683))]])
    found = min(
        float(value), max(mode + (1.0 - lower) * (float(value) - mode), mode + noise * sigma)
    )
    dtype = np.asarray(value).dtype
    return dtype.type(math.floor(found) if np.issubdtype(dtype, np.integer) else found)


def apply(image, value: float):
    """The foreground of a global threshold: pixels strictly above ``value``."""
    return image > value


@lru_cache(maxsize=16)
def gaussian_weights(sigma: float, truncate: float = TRUNCATE) -> np.ndarray:
    """scipy's 1-D Gaussian weights for ``sigma``, read back as the filter's impulse response."""
    radius = int(truncate * float(sigma) + 0.5)
    impulse = np.zeros(2 * radius + 1)
    impulse[radius] = 1.0
    weights = ndi.gaussian_filter1d(impulse, sigma, mode="constant", truncate=truncate)
    weights.setflags(write=False)
    return weights


def reflect_indices(n: int, radius: int) -> np.ndarray:
    """Source index of each padded position -radius..n+radius-1 under scipy's 'reflect'."""
    idx = np.mod(np.arange(-radius, n + radius), 2 * n)
    return np.where(idx < n, idx, 2 * n - 1 - idx)


@lru_cache(maxsize=16)
def _filter_matrix(n: int, sigma: float) -> np.ndarray:
    """The (n, n) matrix M with ``M @ x`` = the 'reflect' Gaussian of a length-n line x."""
    weights = gaussian_weights(sigma)
    radius = len(weights) // 2
    src = reflect_indices(n, radius)
    matrix = np.zeros((n, n))
    rows = np.repeat(np.arange(n), 2 * radius + 1)
    cols = src[np.arange(n)[:, None] + np.arange(2 * radius + 1)[None, :]].ravel()
    np.add.at(matrix, (rows, cols), np.tile(weights, n))
    matrix.setflags(write=False)
    return matrix


def _scipy_line(padded: np.ndarray, weights: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """scipy's symmetric correlate1d arithmetic at positions ``centre`` of padded lines.

    ``out = x[i] * w[0]``, then for each offset j from the outermost inward
    ``out += (x[i - j] + x[i + j]) * w[j]`` (float64, in this order: bit-identical to scipy).
    """
    radius = len(weights) // 2
    out = padded[..., centre] * weights[radius]
    for j in range(radius, 0, -1):
        out += (padded[..., centre - j] + padded[..., centre + j]) * weights[radius + j]
    return out


def _exact_at(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, sigmas) -> np.ndarray:
    """scipy's 2-D Gaussian of ``x`` (axis 0 pass, then axis 1) at the pixels (rows, cols)."""
    height, width = x.shape
    w0, w1 = gaussian_weights(sigmas[0]), gaussian_weights(sigmas[1])
    r0, r1 = len(w0) // 2, len(w1) // 2
    src0, src1 = reflect_indices(height, r0), reflect_indices(width, r1)
    out = np.empty(len(rows))
    for row in np.unique(rows):
        sel = np.nonzero(rows == row)[0]
        window = x[src0[row : row + 2 * r0 + 1]].T  # (width, 2*r0+1): the columns' taps
        first_pass = _scipy_line(window, w0, np.array(r0))  # row `row` after the axis-0 pass
        padded = first_pass[src1]
        out[sel] = _scipy_line(padded, w1, cols[sel] + r1)
    return out


def _above_scipy_gaussian(x, sigmas, offset: float):
    """``x > gaussian(x) - offset`` with scipy's own filter (2-D: bit-exact). Off NumPy, the
    filter runs on the host: a device library sums in another order (and cupyx in float32
    for float32 data), which can tip a pixel that lies on its threshold."""
    be = backend_of(x)
    if be.xp is np:
        return x > ndi.gaussian_filter(x, sigmas, mode="reflect", truncate=TRUNCATE) - offset
    host = be.to_host(x)
    exact = ndi.gaussian_filter(host, sigmas, mode="reflect", truncate=TRUNCATE) - offset
    return x > be.from_host(exact)


def local_gaussian(
    image, block_size: int | None = None, offset: float = 0.0, sizes: tuple[int, ...] | None = None
):
    """The mask ``image > gaussian(image, (block_size - 1) / 6) - offset``, bit-exact to scipy.

    ``block_size=None`` uses the frame's own size per axis (the blog passes the chunk size);
    ``sizes`` gives the block per axis instead (the tiled mode: the chunk, on a crop).
    A local threshold has no single value, and the exact recheck needs the image, so this
    returns the mask itself.
    """
    be = backend_of(image)
    xp = be.xp
    x = image.astype(xp.float64)
    if sizes is None:
        sizes = x.shape if block_size is None else (block_size,) * x.ndim
    sigmas = tuple((float(s) - 1.0) / 6.0 for s in sizes)
    if x.ndim != 2 or min(sigmas) <= 1e-15:  # not the blog's case: let scipy do it
        return _above_scipy_gaussian(x, sigmas, offset)
    rows_filter = xp.asarray(_filter_matrix(x.shape[0], sigmas[0]))
    cols_filter = xp.asarray(_filter_matrix(x.shape[1], sigmas[1]))
    approx = rows_filter @ x @ cols_filter.T
    approx -= offset
    mask = x > approx
    tol = REL_TOL * max(float(xp.abs(x).max()), 1.0) + abs(offset) * 1e-15
    rows, cols = xp.nonzero(xp.abs(x - approx) <= tol)
    if len(rows) == 0:
        return mask
    if len(xp.unique(rows)) > MAX_RECHECK_ROWS:
        return _above_scipy_gaussian(x, sigmas, offset)
    host_rows, host_cols = be.to_host(rows), be.to_host(cols)
    exact = _exact_at(be.to_host(x), host_rows, host_cols, sigmas) - offset
    mask[rows, cols] = x[rows, cols] > xp.asarray(exact)
    return mask
