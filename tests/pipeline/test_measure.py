"""Per-object measurements against scikit-image's regionprops, in 2-D and 3-D."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.measure import regionprops_table

from hpcseg.data.synthetic import synthetic_frame
from hpcseg.pipeline.measure import measure
from hpcseg.pipeline.segment import segment

PROPS_2D = (
    "label", "area", "bbox", "centroid", "centroid_weighted", "mean_intensity", "intensity_min",
    "intensity_max", "intensity_std", "equivalent_diameter_area", "extent", "axis_major_length",
    "axis_minor_length", "eccentricity", "orientation", "perimeter", "euler_number", "solidity",
)  # fmt: skip


PROPS_3D = (
    "label", "area", "bbox", "centroid", "centroid_weighted", "mean_intensity", "intensity_min",
    "intensity_max", "intensity_std", "equivalent_diameter_area", "extent", "axis_major_length",
    "axis_minor_length", "euler_number", "solidity",
)  # fmt: skip


def assert_matches_regionprops(labels: np.ndarray, intensity: np.ndarray) -> None:
    """Every column regionprops defines for this dimension agrees to 1e-6 (relative, and
    absolute near zero, where skimage's eigen-solver leaves ~1e-8 instead of 0)."""
    ours = measure(labels, intensity, shape_features=True)
    props = PROPS_2D if labels.ndim == 2 else PROPS_3D
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage's own warnings on flat 3-D hulls (see below)
        theirs = regionprops_table(labels, intensity_image=intensity, properties=props)
    assert set(theirs) <= set(ours)
    if labels.ndim == 3:
        # skimage returns an empty 3-D hull (solidity inf) for an object lying in one plane;
        # hpcseg gives its true convex area there, so solidity stays in (0, 1]
        flat = ~np.isfinite(theirs["solidity"])
        assert np.all((ours["solidity"][flat] > 0) & (ours["solidity"][flat] <= 1))
        theirs["solidity"] = np.where(flat, ours["solidity"], theirs["solidity"])
    for name, values in theirs.items():
        if name == "orientation":  # an axis angle: +pi/2 and -pi/2 are the same line
            turn = np.mod(ours[name] - values + np.pi / 2, np.pi) - np.pi / 2
            np.testing.assert_allclose(turn, 0, atol=1e-6, err_msg=name)
            continue
        np.testing.assert_allclose(ours[name], values, rtol=1e-6, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(ours["intensity_integrated"], ours["mean_intensity"] * ours["area"])
    bbox = np.stack([ours[f"bbox-{a}"] for a in range(2 * labels.ndim)], axis=1)
    at_edge = (bbox[:, : labels.ndim] == 0) | (bbox[:, labels.ndim :] == labels.shape)
    assert np.array_equal(ours["touches_border"], at_edge.any(axis=1))


def label_images(ndim: int):
    side = st.integers(1, 24 if ndim == 2 else 9)
    return arrays(np.int32, st.tuples(*[side] * ndim), elements=st.integers(0, 6))


@settings(max_examples=60, deadline=None)
@given(labels=label_images(2), seed=st.integers(0, 2**16))
def test_measure_agrees_with_regionprops_2d(labels, seed):
    """Random label images: objects touching the border, one-pixel objects, holes, gaps."""
    intensity = np.random.default_rng(seed).integers(0, 60000, labels.shape).astype(np.uint16)
    assert_matches_regionprops(labels, intensity)


@settings(max_examples=40, deadline=None)
@given(labels=label_images(3), seed=st.integers(0, 2**16))
def test_measure_agrees_with_regionprops_3d(labels, seed):
    intensity = np.random.default_rng(seed).integers(0, 60000, labels.shape).astype(np.uint16)
    assert_matches_regionprops(labels, intensity)


def test_measure_basic_columns_are_a_prefix_of_the_full_set():
    labels = np.zeros((20, 20), np.int32)
    labels[2:8, 3:9] = 1
    labels[10:19, 10:12] = 2
    intensity = np.arange(400, dtype=np.uint16).reshape(20, 20)
    basic = measure(labels, intensity)
    full = measure(labels, intensity, shape_features=True)
    assert list(full)[: len(basic)] == list(basic)
    assert {"perimeter", "solidity", "euler_number"} == set(full) - set(basic)
    for name in basic:
        np.testing.assert_array_equal(basic[name], full[name])


@pytest.mark.parametrize("index", [0, 1])
def test_measure_on_a_real_segmentation(make_config, index):
    image, _ = synthetic_frame(2, index)
    seg = segment(image, make_config().pipeline)
    assert_matches_regionprops(seg.labels, image)


@settings(max_examples=30, deadline=None)
@given(
    labels=label_images(3),
    z_um=st.sampled_from([0.5, 1.0, 2.0, 3.7]),
    xy_um=st.sampled_from([0.1, 0.65, 1.0]),
)
def test_physical_columns_match_regionprops_with_spacing(labels, z_um, xy_um):
    """Anisotropic voxels: µm columns equal regionprops(spacing=(z, y, x))."""
    intensity = np.ones(labels.shape, np.uint16)
    microns = (z_um, xy_um, xy_um)
    ours = measure(labels, intensity, microns=microns)
    theirs = regionprops_table(
        labels,
        spacing=microns,
        properties=("area", "centroid", "equivalent_diameter_area", "axis_major_length",
                    "axis_minor_length"),
    )  # fmt: skip
    np.testing.assert_allclose(ours["volume_um3"], theirs["area"], rtol=1e-9)
    for axis in range(3):
        np.testing.assert_allclose(ours[f"centroid-{axis}_um"], theirs[f"centroid-{axis}"])
    for ours_name, their_name in PHYSICAL.items():
        np.testing.assert_allclose(
            ours[ours_name], theirs[their_name], rtol=1e-6, atol=1e-6, err_msg=ours_name
        )


def test_physical_columns_2d_are_square_pixels():
    labels = np.zeros((30, 40), np.int32)
    labels[3:12, 5:25] = 1
    labels[15:28, 10:14] = 2
    ours = measure(labels, np.ones(labels.shape, np.uint16), True, microns=(0.5, 0.5))
    theirs = regionprops_table(
        labels, spacing=(0.5, 0.5), properties=("area", "axis_major_length", "perimeter")
    )
    np.testing.assert_allclose(ours["area_um2"], theirs["area"])
    np.testing.assert_allclose(ours["axis_major_length_um"], theirs["axis_major_length"])
    np.testing.assert_allclose(ours["perimeter_um"], theirs["perimeter"])


def test_flat_3d_object_gets_its_planar_solidity():
    """skimage gives an empty hull for an object in one plane; hpcseg its 2-D convex area."""
    plane = np.zeros((12, 12), np.int32)
    plane[2:10, 2:4] = 1
    plane[8:10, 2:10] = 1  # an L: convex area > area
    volume = np.zeros((3, 12, 12), np.int32)
    volume[1] = plane
    flat = measure(volume, np.ones(volume.shape, np.uint16), shape_features=True)
    planar = measure(plane, np.ones(plane.shape, np.uint16), shape_features=True)
    assert flat["solidity"][0] == planar["solidity"][0] < 1
    assert flat["euler_number"][0] == planar["euler_number"][0] == 1


PHYSICAL = {  # our µm column: the regionprops property computed with spacing=
    "equivalent_diameter_area_um": "equivalent_diameter_area",
    "axis_major_length_um": "axis_major_length",
    "axis_minor_length_um": "axis_minor_length",
}
