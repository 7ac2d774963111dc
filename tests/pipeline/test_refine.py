"""Per-object threshold refinement."""

from __future__ import annotations

import numpy as np
from skimage.draw import disk


def test_refine_cuts_each_object_at_its_own_height():
    from hpcseg.pipeline.refine import refine_objects

    intensity = np.zeros((60, 80))
    labels = np.zeros((60, 80), np.int32)
    for index, (centre, peak) in enumerate((((30, 20), 1000.0), ((30, 58), 100.0)), start=1):
        rr, cc = disk(centre, 14)
        labels[rr, cc] = index
        inner = disk(centre, 8)
        intensity[rr, cc] = 0.2 * peak  # a dim rim (halo) ...
        intensity[inner] = peak  # ... around the nucleus itself
    refined = refine_objects(intensity, labels, fraction=0.4)
    for index, centre in ((1, (30, 20)), (2, (30, 58))):
        inner = np.zeros_like(labels, bool)
        inner[disk(centre, 8)] = True
        assert np.array_equal(refined == index, inner)  # the same cut, 10x apart in brightness
