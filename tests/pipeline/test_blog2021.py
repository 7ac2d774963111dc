"""`pipeline=blog2021` reproduces the real dask-image blog graph pixel for pixel."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
from dask_image import ndfilters, ndmeasure, ndmorph

from hpcseg.data.synthetic import synthetic_frame
from hpcseg.pipeline.segment import segment

N_FRAMES = 3
# the blog's 2-D cross sandwiched between zero planes, so each frame is opened on its own
CROSS_3D = np.array(
    [
        [[0, 0, 0], [0, 0, 0], [0, 0, 0]],
        [[0, 1, 0], [1, 1, 1], [0, 1, 0]],
        [[0, 0, 0], [0, 0, 0], [0, 0, 0]],
    ]
)


def blog_graph(stack: np.ndarray, label_structure=None):
    """The blog's pipeline as dask-image code, one chunk per frame (as imread gives)."""
    images = da.from_array(stack, chunks=(1, *stack.shape[1:]))
    smoothed = ndfilters.gaussian_filter(images, sigma=[0, 1, 1])
    thresh = ndfilters.threshold_local(smoothed, images.chunksize)
    threshold_images = smoothed > thresh
    binary_images = ndmorph.binary_opening(threshold_images, structure=CROSS_3D)
    label_images, num_features = ndmeasure.label(binary_images, structure=label_structure)
    return images, binary_images, label_images, num_features


@pytest.fixture(scope="module")
def frames():
    return np.stack([synthetic_frame(11, i)[0] for i in range(N_FRAMES)])


@pytest.fixture(scope="module")
def ours(frames, make_config_module):
    cfg = make_config_module("pipeline=blog2021").pipeline
    return [segment(frame, cfg) for frame in frames]


@pytest.fixture(scope="module")
def make_config_module():
    from hpcseg.config.compose import load_config

    return lambda *o: load_config(list(o))


@pytest.mark.blog
@pytest.mark.slow
def test_labels_pixel_identical_up_to_frame_offset(frames, ours):
    with dask.config.set(scheduler="threads"):
        _, _, label_images, num_features = blog_graph(frames, CROSS_3D)
        labels, n = dask.compute(label_images, num_features)
    offset = 0
    for k, seg in enumerate(ours):
        theirs = labels[k]
        expected = np.where(seg.labels > 0, seg.labels + offset, 0)
        assert np.array_equal(theirs, expected), f"frame {k} differs"
        offset += int(seg.labels.max())
    assert offset == n


@pytest.mark.blog
@pytest.mark.slow
def test_area_and_mean_identical_for_every_object(frames, ours):
    with dask.config.set(scheduler="threads"):
        images, _, label_images, num_features = blog_graph(frames, CROSS_3D)
        labels, n = dask.compute(label_images, num_features)
        lab = da.from_array(labels, chunks=(1, *labels.shape[1:]))
        index = np.arange(1, n + 1)  # every object (the blog's arange(n - 1) + 1 drops the last)
        area, mean = dask.compute(
            ndmeasure.area(images, lab, index), ndmeasure.mean(images, lab, index)
        )
    our_area = np.concatenate([s.objects["area"] for s in ours])
    our_mean = np.concatenate([s.objects["mean_intensity"] for s in ours])
    assert len(our_area) == n
    np.testing.assert_array_equal(our_area, area)
    np.testing.assert_array_equal(our_mean, mean)


@pytest.mark.blog
@pytest.mark.slow
def test_blog_as_written_has_the_same_mask_but_labels_across_frames(frames, ours):
    """The blog labels the stack in 3-D: same foreground, but objects touching between
    consecutive frames merge into one label. hpcseg labels each frame (README, blog2021)."""
    with dask.config.set(scheduler="threads"):
        _, binary, label_images, num_features = blog_graph(frames)
        mask, _, n = dask.compute(binary, label_images, num_features)
    for k, seg in enumerate(ours):
        assert np.array_equal(mask[k], seg.labels > 0)
    per_frame_total = sum(int(s.labels.max()) for s in ours)
    assert n <= per_frame_total
