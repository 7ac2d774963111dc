"""Splitting touching nuclei: the watershed and its landscapes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import two_touching_nuclei

from hpcseg.pipeline.split import watershed_split


def test_watershed_splits_two_touching_discs():
    mask = two_touching_nuclei() > 500
    labels = watershed_split(mask, min_distance=5, smoothing=1.0)
    assert len(np.unique(labels[labels > 0])) == 2  # distinct, not consecutive (see label stage)
    assert np.array_equal(labels > 0, mask)
    assert labels[40, 30] != labels[40, 70]


@pytest.mark.parametrize(
    ("landscape", "objects"), [("distance", 1), ("intensity", 2), ("distance_intensity", 2)]
)
def test_intensity_landscape_splits_what_the_shape_cannot(landscape, objects):
    """Two square nuclei side by side make one rectangle: its distance map has one ridge, but
    each nucleus is brightest at its own centre."""
    from hpcseg.results.evaluate import score

    yy, xx = np.mgrid[:40, :64]
    truth = np.zeros((40, 64), np.int32)
    truth[10:30, 12:32], truth[10:30, 32:52] = 1, 2
    image = 100 + sum(
        1000 * np.exp(-((yy - 19.5) ** 2 + (xx - cx) ** 2) / 60) for cx in (21.5, 41.5)
    )
    labels = watershed_split(truth > 0, 4, 1.0, landscape=landscape, intensity=image)
    assert len(np.unique(labels[labels > 0])) == objects
    if objects == 2:
        assert score(truth, labels)["f1_90"] == 1.0
    with pytest.raises(ValueError, match="needs the intensity image"):
        watershed_split(truth > 0, 4, 1.0, landscape="intensity")
