"""Splitting touching nuclei: seeded watershed on the distance transform."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed


def object_distance(components: np.ndarray, smoothing: float) -> np.ndarray:
    """Each pixel's Euclidean distance to the edge of its own component, lightly smoothed.

    Computed per component on its bounding box (other components count as background), so the
    cost follows the objects, not the frame.
    """
    distance = np.zeros(components.shape, np.float32)
    for index, box in enumerate(ndi.find_objects(components), start=1):
        if box is None:
            continue
        padded = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        own = components[padded] == index
        distance[padded][own] = ndi.distance_transform_edt(own)[own]
    if smoothing > 0:
        mask = components > 0
        distance = ndi.gaussian_filter(distance, smoothing)
        distance[~mask] = 0
    return distance


def watershed_split(
    mask: np.ndarray, min_distance: int, smoothing: float, connectivity: int = 1
) -> np.ndarray:
    """Label ``mask`` with touching objects separated.

    Seeds are the local maxima of the distance map (:func:`object_distance`) at least
    ``min_distance`` pixels apart. A connected component with one seed (or none) stays one
    object; a component with several is split by the watershed of the negated distance from
    its seeds, computed on its bounding box only, so the cost follows the number of clumps.
    Labels are distinct but not consecutive; :func:`hpcseg.pipeline.label.raster_order`
    numbers them.
    """
    structure = ndi.generate_binary_structure(mask.ndim, connectivity)
    components, n = ndi.label(mask, structure=structure)
    if n == 0:
        return components
    distance = object_distance(components, smoothing)
    # seeds: pixels that are the maximum of their (2 min_distance + 1) window; a plateau of
    # equal maxima is one seed
    size = 2 * min_distance + 1
    peaks = (distance == ndi.maximum_filter(distance, size=size)) & (distance > 0)
    seeds, n_seeds = ndi.label(peaks, structure=np.ones((3,) * mask.ndim, bool))
    if n_seeds == 0:
        return components
    seed_pixels = np.flatnonzero(seeds)
    first = seed_pixels[np.unique(seeds.ravel()[seed_pixels], return_index=True)[1]]
    owner = components.ravel()[first]  # the component of each seed
    seeds_per_component = np.bincount(owner, minlength=n + 1)
    labels = components.astype(np.int32)
    next_label = n + 1
    for index, box in enumerate(ndi.find_objects(components), start=1):
        if box is None or seeds_per_component[index] < 2:
            continue
        own = components[box] == index
        local = seeds[box] * own
        ids = np.unique(local)[1:]
        lut = np.zeros(int(n_seeds) + 1, np.int32)
        lut[ids] = np.arange(next_label, next_label + len(ids))
        next_label += len(ids)
        split = watershed(-distance[box], lut[local], mask=own, connectivity=connectivity)
        labels[box][own] = split[own]
    return labels
