"""Connected-component labelling and canonical label order."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def connected_components(mask: np.ndarray, connectivity: int = 1) -> np.ndarray:
    """Label the mask's components 1..n in raster order (scipy.ndimage.label)."""
    structure = ndi.generate_binary_structure(mask.ndim, connectivity)
    labels, _ = ndi.label(mask, structure=structure)
    return labels


def raster_order(labels: np.ndarray) -> np.ndarray:
    """Relabel to 1..n by each object's first pixel in raster order (stable, gap-free)."""
    flat = labels.ravel()
    present = flat > 0
    if not present.any():
        return np.zeros_like(labels, dtype=np.int32)
    uniq, first = np.unique(flat[present], return_index=True)
    order = np.argsort(first, kind="stable")
    lut = np.zeros(int(uniq.max()) + 1, np.int32)
    lut[uniq[order]] = np.arange(1, len(uniq) + 1, dtype=np.int32)
    return lut[labels]
