"""Splitting touching nuclei: seeded watershed on the distance transform."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.segmentation import watershed


def watershed_split(
    mask: np.ndarray, min_distance: int, smoothing: float, connectivity: int = 1
) -> np.ndarray:
    """Label ``mask`` with touching objects separated.

    One seed per local maximum of the (lightly smoothed) Euclidean distance transform at least
    ``min_distance`` pixels apart within its connected component; the watershed of the negated
    distance from those seeds, restricted to the mask, gives the objects. Components without a
    seed keep their own label.
    """
    structure = ndi.generate_binary_structure(mask.ndim, connectivity)
    components, n = ndi.label(mask, structure=structure)
    if n == 0:
        return components
    distance = ndi.distance_transform_edt(mask).astype(np.float32)
    if smoothing > 0:
        distance = ndi.gaussian_filter(distance, smoothing)
    peaks = peak_local_max(
        distance, min_distance=min_distance, labels=components, exclude_border=False
    )
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    # components that got no seed (flat or tiny) seed themselves
    seeded = np.zeros(n + 1, bool)
    seeded[components[tuple(peaks.T)]] = True
    unseeded = ~seeded[components] & mask
    if unseeded.any():
        extra, _ = ndi.label(unseeded, structure=structure)
        markers[extra > 0] = extra[extra > 0] + len(peaks)
    return watershed(-distance, markers, mask=mask, connectivity=connectivity)
