"""The scikit-image functions the stages need, written for any NumPy-like array library.

CuPy has ``cupyx.scipy.ndimage`` but no scikit-image; these give a backend the ``filters`` and
``segmentation`` namespaces the stages call (:mod:`hpcseg.pipeline.backend`). The heavy work
(histograms, labelling, flooding) runs in the array's own library; only a 256-bin histogram or
a list of label ids crosses to the host.

- :func:`threshold_otsu`: the image's histogram exactly as ``skimage.exposure.histogram`` bins
  it (a bincount for integers, 256 bins over the image's range for floats), then scikit-image's
  own Otsu on that histogram: the same threshold (tested).
- :func:`threshold_li`: Li's iteration is a loop over the image; it runs on the host, which the
  log says once per process.
- :func:`clear_border`: the objects with a pixel on the image border set to 0. scikit-image
  first relabels the image by connected same-valued regions (8-connected in 2-D), so of an
  object whose label covers two separate pieces it clears only the piece on the border; here
  the whole object goes (equal on objects that are one piece each: tested).
- ``watershed``: :func:`hpcseg.pipeline.flood.watershed`.

And one of scipy's: :func:`gaussian_filter_integer`, the Gaussian of an integer image in the
image's dtype bit for bit as ``scipy.ndimage.gaussian_filter`` makes it (the blog's smoothing),
which a device library's own filter does not promise (it sums in another order, and cupyx
in float32).
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import skimage.filters

from hpcseg.pipeline import flood
from hpcseg.pipeline.backend import backend_of
from hpcseg.pipeline.histogram import histogram
from hpcseg.pipeline.threshold import TRUNCATE, gaussian_weights, reflect_indices

log = logging.getLogger(__name__)

_on_host_said: set[str] = set()


def on_host(step: str, backend: str) -> None:
    """Log once per process that ``step`` runs on the host instead of in ``backend``."""
    if step not in _on_host_said:
        _on_host_said.add(step)
        log.info("%s runs on the CPU (no %s implementation); the rest stays on %s",
                 step, backend, backend)  # fmt: skip


def threshold_otsu(image=None, *, hist=None) -> Any:
    """``skimage.filters.threshold_otsu(image)``, the histogram made where the image lives;
    or of a ``hist`` (counts, bin centres) already made, as scikit-image takes it."""
    if hist is not None:
        return skimage.filters.threshold_otsu(hist=hist)
    first = image.ravel()[0]
    if bool((image == first).all()):
        return first
    return skimage.filters.threshold_otsu(hist=histogram(image))


def threshold_li(image) -> float:
    """``skimage.filters.threshold_li(image)``, on the host."""
    be = backend_of(image)
    on_host("threshold_li", be.name)
    return skimage.filters.threshold_li(be.to_host(image))


def clear_border(labels):
    """``labels`` without the objects that have a pixel on the image border."""
    xp = backend_of(labels).xp
    edge = xp.zeros(labels.shape, bool)
    for axis in range(labels.ndim):
        first = [slice(None)] * labels.ndim
        last = [slice(None)] * labels.ndim
        first[axis], last[axis] = 0, -1
        edge[tuple(first)] = True
        edge[tuple(last)] = True
    touching = xp.zeros(int(labels.max()) + 1, bool)
    touching[labels[edge]] = True
    touching[0] = True
    return xp.where(touching[labels], 0, labels)


def gaussian_filter_integer(image, sigmas: tuple[float, ...], truncate: float = TRUNCATE):
    """``scipy.ndimage.gaussian_filter(image, sigmas, mode='reflect', truncate=truncate)`` for
    an integer ``image``, bit for bit: scipy filters one axis after the other, each line in
    float64 as the centre tap times its weight plus the pairs of taps from the outermost in,
    and stores each pass in the image's dtype (truncated). The same operations, one whole-array
    operation per tap: a device library (CuPy) gives the same bits."""
    be = backend_of(image)
    xp = be.xp
    out = image
    for axis, sigma in enumerate(sigmas):
        if sigma <= 1e-15:  # scipy skips such axes
            continue
        weights = gaussian_weights(float(sigma), truncate)
        radius = len(weights) // 2
        lines = xp.moveaxis(out, axis, -1).astype(xp.float64)
        n = lines.shape[-1]
        padded = xp.take(lines, be.from_host(reflect_indices(n, radius)), axis=-1)
        total = padded[..., radius : radius + n] * float(weights[radius])
        for j in range(radius, 0, -1):
            pair = (
                padded[..., radius - j : radius - j + n] + padded[..., radius + j : radius + j + n]
            )
            total += pair * float(weights[radius + j])
        out = xp.moveaxis(total.astype(image.dtype), -1, axis)
    return xp.ascontiguousarray(out)


FILTERS = SimpleNamespace(threshold_otsu=threshold_otsu, threshold_li=threshold_li)
SEGMENTATION = SimpleNamespace(watershed=flood.watershed, clear_border=clear_border)
