"""Labelling and canonical label order."""

from __future__ import annotations

import numpy as np

from hpcseg.pipeline import label


def test_raster_order_relabels_by_first_pixel():
    labels = np.array([[0, 7, 7], [3, 0, 0], [3, 0, 9]])
    assert label.raster_order(labels).tolist() == [[0, 1, 1], [2, 0, 0], [2, 0, 3]]
