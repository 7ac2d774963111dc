"""The synthetic generator: deterministic, BBBC039-like frames."""

from __future__ import annotations

import numpy as np
import tifffile

from hpcseg.data import synthetic


def test_synthetic_frame_is_deterministic_and_bbbc039_like():
    image, mask = synthetic.synthetic_frame(4, 9)
    again, mask_again = synthetic.synthetic_frame(4, 9)
    assert np.array_equal(image, again) and np.array_equal(mask, mask_again)
    assert image.shape == (520, 696) and image.dtype == np.uint16 and mask.dtype == np.uint16
    n = len(np.unique(mask)) - 1
    assert 50 <= n <= 150
    assert image[mask > 0].mean() > 1.5 * image[mask == 0].mean()


def test_frames_vary_in_brightness_across_the_set():
    peaks = [np.percentile(synthetic.synthetic_frame(0, i)[0], 99.5) for i in range(24)]
    assert max(peaks) / min(peaks) > 4


def test_frame_i_does_not_depend_on_how_many_are_requested(tmp_path):
    few = synthetic.ensure_frames(tmp_path / "a", 3, 2, (96, 128))
    many = synthetic.ensure_frames(tmp_path / "b", 3, 5, (96, 128))
    assert [p.name for p in few] == [p.name for p in many[:2]]
    for p, q in zip(few, many, strict=False):
        assert np.array_equal(tifffile.imread(p), tifffile.imread(q))
