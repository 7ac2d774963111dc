"""Splitting touching nuclei: seeded watershed on the distance transform."""

from __future__ import annotations

from hpcseg.pipeline.backend import backend_of
from hpcseg.pipeline.label import label_seeds
from hpcseg.pipeline.packing import distance_each, watershed_each
from hpcseg.pipeline.sampling import per_axis, window


def object_distance(
    components, smoothing: float, spacing: tuple[float, ...] | None = None, boxes=None
):
    """Each pixel's Euclidean distance (in in-plane pixels, through the voxel ``spacing``) to the
    edge of its own component, lightly smoothed.

    Computed per component on its bounding box (other components count as background), so the
    cost follows the objects, not the frame. A batched backend (a GPU) takes one distance
    transform of the whole foreground instead: the same wherever no two components touch
    diagonally (they cannot under ``connectivity=2``; near such a contact the other component
    does not count as background, so distances there can come out larger). ``boxes``: the
    components' ``find_objects``, if already at hand.
    """
    be = backend_of(components)
    ndi = be.ndimage
    if be.batched:
        inside = components > 0
        distance = ndi.distance_transform_edt(inside, sampling=spacing).astype(be.xp.float32)
    else:
        distance = be.xp.zeros(components.shape, be.xp.float32)
        boxes = ndi.find_objects(components) if boxes is None else boxes
        ids = [i for i, box in enumerate(boxes, start=1) if box is not None]
        padded = [grown_box(boxes[i - 1], components.shape) for i in ids]
        owns = [components[b] == i for i, b in zip(ids, padded, strict=True)]
        ringed = [
            all(
                s.start > 0 and s.stop < n
                for s, n in zip(boxes[i - 1], components.shape, strict=True)
            )
            for i in ids
        ]
        for b, own, d in zip(padded, owns, distance_each(owns, spacing, ringed), strict=True):
            distance[b][own] = d[own]
    if smoothing > 0:
        mask = components > 0
        sigma = per_axis(smoothing, spacing) if spacing else smoothing
        distance = ndi.gaussian_filter(distance, sigma)
        distance[~mask] = 0
    return distance


def grown_box(box: tuple[slice, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    """``box`` grown by one pixel on every side, clipped to an array of ``shape``."""
    return tuple(
        slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(box, shape, strict=True)
    )


def landscape_map(
    kind: str,
    components,
    smoothing: float,
    spacing: tuple[float, ...],
    intensity=None,
    boxes=None,
):
    """What the watershed climbs: each nucleus should be one hill.

    ``distance``: the distance to the object's edge (shape: round nuclei pinched where they
    touch); ``intensity``: the (smoothed) brightness inside objects (nuclei brightest at their
    centres, darker where they touch); ``distance_intensity``: their product, with the
    brightness scaled to each object's maximum (both cues at once). ``boxes``: the
    components' ``find_objects``, if already at hand.
    """
    if kind == "distance":
        return object_distance(components, smoothing, spacing, boxes)
    if intensity is None:
        raise ValueError(f"the '{kind}' landscape needs the intensity image")
    be = backend_of(components)
    xp, ndi = be.xp, be.ndimage
    inside = components > 0
    bright = intensity.astype(xp.float32)
    if smoothing > 0:
        bright = ndi.gaussian_filter(bright, per_axis(smoothing, spacing))
    bright = bright - float(bright[inside].min()) + 1.0 if inside.any() else bright
    bright[~inside] = 0
    if kind == "intensity":
        return bright
    peak = ndi.maximum(bright, components, xp.arange(components.max() + 1))
    peak = xp.asarray(peak, xp.float32)
    peak[0] = 1.0
    return object_distance(components, smoothing, spacing, boxes) * (bright / peak[components])


def watershed_split(
    mask,
    min_distance: int,
    smoothing: float,
    connectivity: int = 1,
    spacing: tuple[float, ...] | None = None,
    landscape: str = "distance",
    intensity=None,
):
    """Label ``mask`` with touching objects separated.

    Seeds are the local maxima of the ``landscape`` (:func:`landscape_map`; by default the
    distance map) at least ``min_distance`` pixels apart. A connected component with one seed
    (or none) stays one object; a component with several is split by the watershed of the
    negated landscape from its seeds, computed on its bounding box only, so the cost follows the
    number of clumps. Labels are distinct but not consecutive;
    :func:`hpcseg.pipeline.label.raster_order` numbers them.
    """
    be = backend_of(mask)
    ndi = be.ndimage
    structure = ndi.generate_binary_structure(mask.ndim, connectivity)
    components, n = ndi.label(mask, structure=structure)
    if n == 0:
        return components
    spacing = spacing or (1.0,) * mask.ndim
    boxes = None if be.batched else ndi.find_objects(components)
    height = landscape_map(landscape, components, smoothing, spacing, intensity, boxes)
    # seeds: pixels that are the maximum of their window of min_distance either side (fewer
    # planes along a coarser z); a plateau of equal maxima is one seed
    size = window(min_distance, spacing)
    peaks = (height == ndi.maximum_filter(height, size=size)) & (height > 0)
    seeds, n_seeds = label_seeds(peaks)
    if n_seeds == 0:
        return components
    if be.batched:
        return _split_at_once(components, n, seeds, height, connectivity)
    return _split_clumps(components, n, seeds, height, connectivity, boxes)


def _split_clumps(components, n: int, seeds, height, connectivity: int, boxes: list):
    """The splitting of :func:`watershed_split` without a batched backend: each component
    with two or more seeds flooded on its box, all in one watershed call
    (:func:`hpcseg.pipeline.packing.watershed_each`); the pieces are labelled n + 1 on."""
    xp = backend_of(components).xp
    seed_pixels = xp.flatnonzero(seeds)
    first = seed_pixels[xp.unique(seeds.ravel()[seed_pixels], return_index=True)[1]]
    owner = components.ravel()[first]  # the component of each seed
    seeds_per_component = xp.bincount(owner, minlength=n + 1)
    labels = components.astype(xp.int32)
    clumps = xp.flatnonzero(seeds_per_component[1:] >= 2) + 1
    chosen = [int(i) for i in clumps if boxes[i - 1] is not None]
    owns = [components[boxes[i - 1]] == i for i in chosen]
    lut = xp.zeros(int(seeds.max()) + 1, xp.int32)  # seed id -> piece (set per clump)
    heights, markers, next_label = [], [], n + 1
    for i, own in zip(chosen, owns, strict=True):
        local = seeds[boxes[i - 1]] * own
        ids = xp.unique(local)[1:]
        lut[ids] = xp.arange(next_label, next_label + len(ids))
        next_label += len(ids)
        markers.append(lut[local])
        heights.append(-height[boxes[i - 1]])
    pieces = watershed_each(heights, markers, owns, connectivity)
    for i, own, piece in zip(chosen, owns, pieces, strict=True):
        labels[boxes[i - 1]][own] = piece[own]
    return labels


def _split_at_once(components, n: int, seeds, height, connectivity: int):
    """:func:`watershed_split`'s splitting as one watershed over all the components with two or
    more seeds (for a batched backend): the components do not touch, so flooding them together
    gives each the labels its own watershed would. Each (seed, component) pair is one marker."""
    be = backend_of(components)
    xp = be.xp
    pairs = xp.where(seeds > 0, seeds.astype(xp.int64) * (n + 1) + components, 0)
    ids, markers = xp.unique(pairs.ravel(), return_inverse=True)  # id 0: no seed
    markers = xp.where(pairs > 0, markers.reshape(pairs.shape) + 1, 0)  # 1.. per pair
    seeds_per_component = xp.bincount(
        ids % (n + 1), weights=(ids > 0).astype(xp.float64), minlength=n + 1
    )
    splits = seeds_per_component >= 2
    splits[0] = False
    region = splits[components]
    flooded = be.segmentation.watershed(
        -height, xp.where(region, markers, 0), mask=region, connectivity=connectivity
    )
    return xp.where(region & (flooded > 0), flooded + n, components).astype(xp.int32)
