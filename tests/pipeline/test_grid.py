"""Region helpers of the chunk grid: many boxes at once equal one box at a time."""

from __future__ import annotations

import numpy as np
import pytest

from hpcseg.pipeline.grid import box, boxes, within


@pytest.mark.parametrize("ndim", [2, 3])
def test_boxes_equal_one_box_at_a_time(ndim):
    rng = np.random.default_rng(ndim)
    starts = rng.integers(10, 60, (25, ndim))
    stops = starts + rng.integers(0, 20, (25, ndim))
    outer = box([3] * ndim, [100] * ndim)
    pairs = list(zip(starts, stops, strict=True))
    assert boxes(starts, stops, [3] * ndim) == [within(box(a, b), outer) for a, b in pairs]
    # one origin per box: each box within itself
    assert boxes(starts, stops, starts) == [tuple(slice(0, int(s)) for s in b - a)
                                            for a, b in pairs]  # fmt: skip
    assert boxes(starts[:0], stops[:0], [0] * ndim) == []
