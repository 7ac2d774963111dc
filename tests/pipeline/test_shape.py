"""Unit tests of hpcseg.pipeline.shape: perimeter, Euler number and convex area/volume of every
object of a label image at once.

Known answers are worked out by hand in the comments and, where skimage defines the same value,
also checked against ``skimage.measure`` on the object's own binary crop (the reference the
module promises to equal). The whole-table agreement on random images lives in
tests/test_pipeline.py; these tests pin single features on chosen shapes and edge cases.

Hand perimeters follow skimage's 4-neighbourhood weighting: a border pixel (an object pixel
with a 4-neighbour outside the object) gets the code 1 + 2 * (its 4-neighbours that are border
pixels of the object) + 10 * (its diagonal neighbours that are), and the weight 1 for the codes
5, 7, 15, 17, 25, 27, sqrt(2) for 21, 33, (1 + sqrt(2)) / 2 for 13, 23 and 0 for all others.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import perimeter as sk_perimeter
from skimage.measure import regionprops
from skimage.morphology import diamond

from hpcseg.pipeline import shape

SQRT2 = math.sqrt(2)


def grid(*rows: str) -> np.ndarray:
    """A binary 2-D image from strings, '#' object and '.' background."""
    return np.array([[c == "#" for c in row] for row in rows], np.int32)


def present_labels(labels: np.ndarray) -> np.ndarray:
    """The labels in the image, ascending (what measure.py passes as ``present``)."""
    return np.unique(labels[labels > 0]).astype(np.int64)


def euler(labels: np.ndarray) -> np.ndarray:
    return shape.euler_numbers(labels, present_labels(labels))


def convex(labels: np.ndarray) -> np.ndarray:
    present = present_labels(labels)
    slices = ndi.find_objects(labels) if labels.size else []
    return shape.convex_areas(labels, present, [slices[i - 1] for i in present])


def perimeter(labels: np.ndarray) -> np.ndarray:
    return shape.perimeter_2d(labels, int(labels.max(initial=0)))


def crop_region(labels: np.ndarray, label: int):
    """skimage's regionprops of one object alone: the binary crop of its bounding box."""
    (box,) = ndi.find_objects((labels == label).astype(np.int32))
    (region,) = regionprops((labels[box] == label).astype(np.uint8))
    return region


# --- known answers, 2-D --------------------------------------------------------------------

KNOWN_2D = [
    # one pixel: code 1 (no border neighbours) -> perimeter 0; one component; hull = itself
    pytest.param(grid("#"), 0.0, 1, 1, id="pixel"),
    # 1x5 line: the 3 inner pixels have code 1 + 2 + 2 = 5 (weight 1), the ends 1 + 2 = 3 (0)
    pytest.param(grid("#####"), 3.0, 1, 5, id="row-1x5"),
    pytest.param(grid("#", "#", "#", "#", "#"), 3.0, 1, 5, id="column-5x1"),
    # diagonal of 3: the middle has two diagonal border neighbours, 1 + 10 + 10 = 21 (sqrt 2),
    # the ends 1 + 10 = 11 (0); 8-connected, so one component; the diamond hull adds no pixel
    pytest.param(grid("#..", ".#.", "..#"), SQRT2, 1, 3, id="diagonal-3"),
    # 2x2 square: each pixel 1 + 2 + 2 + 10 = 15 (weight 1) -> 4 = 4 * (2 - 1)
    pytest.param(grid("##", "##"), 4.0, 1, 4, id="square-2"),
    # filled k x k square (k >= 3): every one of its 4 (k - 1) border pixels has two border
    # 4-neighbours along the edge and code 5, 15 or 25 (weight 1) -> 4 (k - 1) = 16 for k = 5
    pytest.param(np.ones((5, 5), np.int32), 16.0, 1, 25, id="square-5"),
    # ring: the 8 pixels have code 5 (corners) or 1 + 4 + 20 = 25 (edges) -> 8; one hole -> 0
    pytest.param(grid("###", "#.#", "###"), 8.0, 0, 9, id="ring"),
    # diamond ring: 4 pixels, each with two diagonal border neighbours (21, sqrt 2) -> 4 sqrt 2;
    # 8-connected around a 4-connected hole -> Euler 0; its hull holds the centre pixel too
    pytest.param(grid(".#.", "#.#", ".#."), 4 * SQRT2, 0, 5, id="diamond-ring"),
    # two holes: the 12 outer pixels have codes 5, 7 or 25 (weight 1), the middle pixel
    # (1, 2) has 1 + 2 + 2 + 4 * 10 = 45 (weight 0) -> 12; Euler 1 - 2 = -1; hull = 3 x 5
    pytest.param(grid("#####", "#.#.#", "#####"), 12.0, -1, 15, id="two-holes"),
    # plus: the centre is interior; each arm end has code 1 + 10 + 10 = 21 -> 4 sqrt 2; the
    # hull of its diamonds is the diamond |r - 1| + |c - 1| <= 1.5: the 5 pixels only
    pytest.param(grid(".#.", "###", ".#."), 4 * SQRT2, 1, 5, id="plus"),
    # X: the centre has code 1 + 4 * 10 = 41 (0), the corners 1 + 10 = 11 (0) -> 0; one
    # 8-connected component, its background 4-connected to the outside -> 1; hull = 3 x 3
    pytest.param(grid("#.#", ".#.", "#.#"), 0.0, 1, 9, id="X"),
    # L with arms of 4: codes (0,0) 3, (1,0) 5, (2,0) 15, (3,0) 5, (3,1) 15, (3,2) 5, (3,3) 3
    # -> 5; the hull edge from (0, 0.5) to (2.5, 3) is c = r + 1/2, so row r holds the
    # columns 0..r: 1 + 2 + 3 + 4 = 10 pixels
    pytest.param(grid("#...", "#...", "#...", "####"), 5.0, 1, 10, id="L-4"),
    # two separate pixels (0, 0) and (1, 2): codes 1 -> 0; two components -> 2; the hull edges
    # (-0.5, 0)-(0.5, 2) and (0.5, 0)-(1.5, 2) pass exactly through the centres (0, 1) and
    # (1, 1), which count (skimage includes the hull's border): 2 + 2 = 4
    pytest.param(grid("#..", "..#"), 0.0, 2, 4, id="centres-on-hull"),
    # the same a knight's move apart vertically, (0, 1) and (2, 0): here the edges joining the
    # left tips (0, 0.5)-(2, -0.5) and the right tips (0, 1.5)-(2, 0.5) pass through the
    # centres (1, 0) and (1, 1) -> 4
    pytest.param(grid(".#", "..", "#."), 0.0, 2, 4, id="centres-on-hull-vertical"),
    # staircase triangle (row r holds columns 0..r), (2, 1) interior: codes (0,0) 13,
    # (1,0) 7, (1,1) 1 + 2 + 30 = 33, (2,0) 25, (2,2) 33, (3,0) 5, (3,1) 25, (3,2) 7, (3,3) 13
    # -> 2 (1 + sqrt 2) / 2 + 2 sqrt 2 + 5 = 6 + 3 sqrt 2; convex (the hull edge c = r + 1/2)
    pytest.param(np.tril(np.ones((4, 4), np.int32)), 6 + 3 * SQRT2, 1, 10, id="triangle"),
    # hook (0,0), (0,2), (1,0), (1,1): codes 13, 11 (0), 5 and 1 + 2 + 20 = 23 -> 2 + sqrt 2;
    # one 8-connected component; the hull adds (0, 1) but not (1, 2), outside the edge
    # (0.5, 2)-(1.5, 1), c = 2.5 - r -> 5
    pytest.param(grid("#.#.", "##.."), 2 + SQRT2, 1, 5, id="hook"),
]


@pytest.mark.parametrize("margin", [0, 2], ids=["at-border", "inside"])
@pytest.mark.parametrize(("image", "per", "eul", "area_convex"), KNOWN_2D)
def test_known_answers_2d(image, per, eul, area_convex, margin):
    """Perimeter, Euler number and convex area of one object equal the hand-worked values, and
    skimage agrees with each on the crop; the same whether the object fills the image (so the
    module's padding is what bounds it) or sits away from the border."""
    labels = np.pad(image, margin)
    assert perimeter(labels)[1] == pytest.approx(per, abs=1e-12)
    assert euler(labels).tolist() == [eul]
    assert convex(labels).tolist() == [area_convex]

    region = crop_region(labels, 1)
    assert sk_perimeter(region.image, 4) == pytest.approx(per, abs=1e-12)
    assert region.euler_number == eul
    assert region.area_convex == area_convex


@pytest.mark.parametrize(
    ("image", "solidity"),
    [
        pytest.param(np.ones((3, 4), np.int32), 1.0, id="rectangle"),
        pytest.param(diamond(2).astype(np.int32), 1.0, id="digital-diamond"),
        # rows 0..3 hold columns 0..r: the hull edge c = r + 1/2 leaves out every pixel above
        pytest.param(np.tril(np.ones((4, 4), np.int32)), 1.0, id="staircase-triangle"),
        pytest.param(grid("#####"), 1.0, id="line"),
        pytest.param(grid("#...", "#...", "#...", "####"), 7 / 10, id="L-4"),
        pytest.param(grid("###", "#.#", "###"), 8 / 9, id="ring"),
        # a 4x4 checkerboard colour: the hull of its 8 pixels misses only the two opposite
        # corner pixels of the other colour (e.g. (0, 3): the edge from (0, 2.5) to (0.5, 3)
        # is c = r + 2.5 and 3 > 2.5) -> 8 / 14
        pytest.param((np.indices((4, 4)).sum(0) % 2 == 0).astype(np.int32), 8 / 14, id="checker"),
    ],
)
def test_solidity_2d(image, solidity):
    """area / convex area is exactly 1 for digitally convex objects and the hand-counted
    fraction otherwise (skimage agrees on the crop)."""
    area = int(image.sum())
    assert area / convex(image)[0] == pytest.approx(solidity, rel=1e-12)
    assert crop_region(image, 1).solidity == pytest.approx(solidity, rel=1e-12)


# --- known answers, 3-D --------------------------------------------------------------------


def _hollow(side: int) -> np.ndarray:
    cube = np.ones((side,) * 3, np.int32)
    cube[1:-1, 1:-1, 1:-1] = 0
    return cube


def _two_cavities() -> np.ndarray:
    block = np.ones((3, 3, 5), np.int32)
    block[1, 1, 1] = block[1, 1, 3] = 0
    return block


def _solid_torus() -> np.ndarray:
    ring = np.ones((2, 3, 3), np.int32)  # a 3x3 ring extruded over 2 planes: one tunnel
    ring[:, 1, 1] = 0
    return ring


def _plus_3d() -> np.ndarray:
    plus = np.zeros((3, 3, 3), np.int32)
    plus[1, 1, :] = plus[1, :, 1] = plus[:, 1, 1] = 1
    return plus


def _corner() -> np.ndarray:
    corner = np.zeros((2, 2, 2), np.int32)
    corner[0, 0, 0] = corner[0, 0, 1] = corner[0, 1, 0] = corner[1, 0, 0] = 1
    return corner


def _two_cubes() -> np.ndarray:
    two = np.zeros((2, 2, 5), np.int32)
    two[..., :2] = two[..., 3:] = 1  # two 2x2x2 cubes, a 2x2x1 gap between them
    return two


KNOWN_3D = [
    # filled cube: one component, no tunnel or cavity -> 1; hull = the cube
    pytest.param(np.ones((3, 3, 3), np.int32), 1, 27, id="cube"),
    # hollow cubes: one component + one cavity -> 2; the hull fills the cavity
    pytest.param(_hollow(3), 2, 27, id="hollow-3"),
    pytest.param(_hollow(5), 2, 125, id="hollow-5"),
    # two cavities -> 1 + 2 = 3; hull = the 3x3x5 block
    pytest.param(_two_cavities(), 3, 45, id="two-cavities"),
    # solid torus: one component - one tunnel -> 0; hull = the 2x3x3 block
    pytest.param(_solid_torus(), 0, 18, id="torus"),
    # 3-D plus: the hull of its voxel octahedra is |z-1| + |y-1| + |x-1| <= 1.5: 7 voxels
    pytest.param(_plus_3d(), 1, 7, id="plus"),
    # a corner voxel and its 3 neighbours: all corners satisfy z + y + x <= 1.5, which the
    # other 4 voxels of the 2x2x2 box (sums 2, 2, 2, 3) do not -> 4
    pytest.param(_corner(), 1, 4, id="corner"),
    # two 2x2x2 cubes with a gap: 2 components; the hull of the aligned boxes' octahedra is
    # the bevelled 2x2x5 box, holding all its 20 voxel centres, the gap's 4 included
    pytest.param(_two_cubes(), 2, 20, id="two-cubes"),
]


@pytest.mark.parametrize("margin", [0, 1], ids=["at-border", "inside"])
@pytest.mark.parametrize(("image", "eul", "volume_convex"), KNOWN_3D)
def test_known_answers_3d(image, eul, volume_convex, margin):
    """3-D Euler number (26-connectivity) and convex volume equal the hand-worked values and
    skimage on the crop, with the object filling the volume or away from its border."""
    labels = np.pad(image, margin)
    assert euler(labels).tolist() == [eul]
    assert convex(labels).tolist() == [volume_convex]
    region = crop_region(labels, 1)
    assert region.euler_number == eul
    assert region.area_convex == volume_convex


# --- several objects in one image ----------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int32, np.uint16, np.int64])
def test_objects_with_label_gaps_2d(dtype):
    """Touching objects with labels 2, 5, 7, 9 only: perimeter is indexed by label (length
    n + 1, zero for the background and absent labels), Euler numbers and convex areas follow
    ``present``; each value is the hand value and skimage's on that object's own crop, so
    neighbouring labels count as background."""
    labels = np.zeros((6, 10), dtype)
    labels[0:3, 0:3] = 2  # a ring at the top-left corner...
    labels[1, 1] = 5  # ...around a one-pixel object filling its hole
    labels[0:4, 3] = 7  # an L touching the ring's right side and the top border
    labels[3, 3:7] = 7
    labels[4:6, 7:10] = 9  # a 2x3 block at the bottom-right corner, diagonal to the L's end
    present = present_labels(labels)
    assert present.tolist() == [2, 5, 7, 9]

    per = perimeter(labels)
    assert per.shape == (10,)
    # ring 8 (as alone), pixel 0, L-4 5, 2x3 block: all 6 pixels code 15 or 27 -> 6
    np.testing.assert_allclose(per[present], [8, 0, 5, 6], atol=1e-12)
    assert not per[[0, 1, 3, 4, 6, 8]].any()
    assert euler(labels).tolist() == [0, 1, 1, 1]  # label 5 is a hole in label 2's own crop
    assert convex(labels).tolist() == [9, 1, 10, 6]  # label 5's pixel is in label 2's hull

    for k, label in enumerate(present):
        region = crop_region(labels, label)
        assert per[label] == pytest.approx(region.perimeter, abs=1e-12)
        assert euler(labels)[k] == region.euler_number
        assert convex(labels)[k] == region.area_convex


def test_interleaved_labels_checkerboard_2d():
    """Two labels on the colours of a 4x4 checkerboard, every pixel touching the other label:
    each colour is one 8-connected component with 2 interior 4-connected holes (Euler -1),
    its 8 pixels have codes 11 (2 corners), 21 (4 edge pixels, sqrt 2) and 41 (2 inner) ->
    perimeter 4 sqrt 2, and convex area 14 (see test_solidity_2d) — as skimage on each crop."""
    labels = (np.indices((4, 4)).sum(0) % 2 * 5 + 3).astype(np.int32)  # labels 3 and 8
    np.testing.assert_allclose(perimeter(labels)[[3, 8]], [4 * SQRT2] * 2, atol=1e-12)
    assert euler(labels).tolist() == [-1, -1]
    assert convex(labels).tolist() == [14, 14]
    for label in (3, 8):
        region = crop_region(labels, label)
        assert (region.perimeter, region.euler_number, region.area_convex) == pytest.approx(
            (4 * SQRT2, -1, 14)
        )


def test_objects_with_label_gaps_3d():
    """Labels 2, 4, 7, 9 in one volume: a hollow cube at the corner with a 3-D plus (label 7)
    filling its cavity and touching its inner faces, a 2x2x2 cube against its outer face, and
    a torus at the opposite corner. Each value follows ``present`` and equals the hand value
    and skimage on the crop (label 7 is outside in label 2's crop, so 2 keeps its cavity)."""
    labels = np.zeros((7, 9, 9), np.int32)
    labels[0:5, 0:5, 0:5] = _hollow(5) * 2
    labels[1:4, 1:4, 1:4] = _plus_3d() * 7
    labels[0:2, 0:2, 5:7] = 4
    labels[5:7, 6:9, 6:9] = _solid_torus() * 9
    present = present_labels(labels)
    assert present.tolist() == [2, 4, 7, 9]
    assert euler(labels).tolist() == [2, 1, 1, 0]
    assert convex(labels).tolist() == [125, 8, 7, 18]
    for k, label in enumerate(present):
        region = crop_region(labels, label)
        assert euler(labels)[k] == region.euler_number
        assert convex(labels)[k] == region.area_convex


def test_interleaved_labels_checkerboard_3d():
    """Two labels on the colours of a 4x4x4 checkerboard: every 2x2x2 window holds both, so
    each label must count only its own voxels of the window; Euler numbers equal skimage on
    each crop, and each colour's hull is the 4x4x4 box less the other colour's 4 box corners
    (as in 2-D): 60."""
    labels = (np.indices((4, 4, 4)).sum(0) % 2 * 5 + 3).astype(np.int32)
    assert convex(labels).tolist() == [60, 60]
    for k, label in enumerate((3, 8)):
        region = crop_region(labels, label)
        assert euler(labels)[k] == region.euler_number
        assert region.area_convex == 60


# --- edge cases ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(5, 5), (0, 4), (3, 4, 5), (0, 3, 3)])
def test_no_objects(size):
    """An image without objects (also a zero-size one) gives empty per-object arrays and a
    perimeter array holding only the zero background entry."""
    labels = np.zeros(size, np.int32)
    assert euler(labels).shape == (0,)
    assert convex(labels).shape == (0,)
    if len(size) == 2:
        assert perimeter(labels).tolist() == [0]


@pytest.mark.parametrize(
    ("image", "per"),
    [
        # straight lines of N: N - 2 inner pixels of code 5 -> N - 2
        pytest.param(grid("#######"), 5.0, id="row"),
        pytest.param(grid("#######").T.copy(), 5.0, id="column"),
        # diagonal lines of N: N - 2 inner pixels of code 21 -> (N - 2) sqrt 2
        pytest.param(np.eye(6, dtype=np.int32), 4 * SQRT2, id="diagonal"),
        pytest.param(np.eye(6, dtype=np.int32)[::-1].copy(), 4 * SQRT2, id="anti-diagonal"),
    ],
)
def test_one_pixel_thick_lines_2d(image, per):
    """1-pixel-thick lines: perimeter as worked out, Euler 1, convex area = the pixel count
    (the diamond hull of a straight or diagonal line adds no pixel), as skimage."""
    n = int(image.sum())
    labels = np.pad(image, 1)
    assert perimeter(labels)[1] == pytest.approx(per, abs=1e-12)
    assert euler(labels).tolist() == [1]
    assert convex(labels).tolist() == [n]
    region = crop_region(labels, 1)
    assert region.perimeter == pytest.approx(per, abs=1e-12)
    assert region.area_convex == n


def test_shallow_line_2d_matches_skimage():
    """A 1-pixel-thick line of slope 2/7 (steps of different lengths): a hull with many
    pixel centres near its edges; all three features equal skimage on the crop."""
    labels = np.zeros((6, 16), np.int32)
    cols = np.arange(15)
    labels[(2 * cols) // 7 + 1, cols] = 1
    region = crop_region(labels, 1)
    assert perimeter(labels)[1] == pytest.approx(region.perimeter, abs=1e-12)
    assert euler(labels).tolist() == [region.euler_number] == [1]
    assert convex(labels).tolist() == [region.area_convex]
    assert region.area_convex > 15  # not a diagonal: the hull holds more than the line


def test_border_objects_do_not_wrap_2d():
    """Objects on opposite image borders, adjacent in the flat (raster) array but not in the
    image, stay apart: one label on the first and last columns of a 4x5 image is two vertical
    lines (perimeter 2 * (4 - 2) = 4, Euler 2, hull = the whole image, 20); the last pixel of
    row 0 and the first of row 1 are two components (Euler 2, perimeter 0)."""
    sides = np.zeros((4, 5), np.int32)
    sides[:, 0] = sides[:, -1] = 1
    assert perimeter(sides)[1] == pytest.approx(4.0, abs=1e-12)
    assert euler(sides).tolist() == [2]
    assert convex(sides).tolist() == [20]

    ends = np.zeros((4, 5), np.int32)
    ends[0, -1] = ends[1, 0] = 1
    assert perimeter(ends)[1] == 0
    assert euler(ends).tolist() == [2]
    assert convex(ends).tolist() == [crop_region(ends, 1).area_convex]

    full = np.ones((4, 6), np.int32)  # the whole image: 2 (4 - 1) + 2 (6 - 1) = 16
    assert perimeter(full)[1] == pytest.approx(16.0, abs=1e-12)
    assert euler(full).tolist() == [1]
    assert convex(full).tolist() == [24]


def test_border_objects_do_not_wrap_3d():
    """In 3-D too: opposite faces along x or along y of a 3x4x5 volume are two components
    (Euler 2) whose hull is the whole volume (60); the whole volume is one object (Euler 1)."""
    for axis in (1, 2):
        faces = np.zeros((3, 4, 5), np.int32)
        index = [slice(None)] * 3
        for end in (0, -1):
            index[axis] = end
            faces[tuple(index)] = 1
        assert euler(faces).tolist() == [2]
        assert convex(faces).tolist() == [60]
    full = np.ones((3, 4, 5), np.int32)
    assert euler(full).tolist() == [1]
    assert convex(full).tolist() == [60]


PLANES = [
    # (plane, its 2-D Euler number, its hand-counted convex area; see KNOWN_2D)
    pytest.param(grid("#...", "#...", "#...", "####"), 1, 10, id="L-4"),
    pytest.param(grid("###", "#.#", "###"), 0, 9, id="ring"),
    pytest.param(grid("#..", "..#"), 2, 4, id="centres-on-hull"),
    pytest.param(grid("#####"), 1, 5, id="line"),
    pytest.param(grid("#"), 1, 1, id="voxel"),
]


@pytest.mark.parametrize("offset", [0, 1], ids=["at-border", "inside"])
@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize(("plane", "eul", "area_convex"), PLANES)
def test_planar_3d_object_gets_its_planar_convex_area(plane, eul, area_convex, axis, offset):
    """A 3-D object lying in one plane normal to any axis: its convex volume is the plane's
    2-D convex area (hand value, and skimage's 2-D ``area_convex`` of the plane), so its
    solidity is the true planar one in (0, 1] -- the documented deviation from skimage, whose
    3-D hull of a planar object is empty (solidity inf). Its 3-D Euler number is the 2-D one
    (a hole in the plane is a tunnel in 3-D)."""
    volume = np.expand_dims(plane, axis)
    pad = [(0, 0)] * 3
    pad[axis] = (offset, 1)
    labels = np.pad(volume, pad)
    assert convex(labels).tolist() == [area_convex]
    assert crop_region(plane, 1).area_convex == area_convex
    assert 0 < plane.sum() / convex(labels)[0] <= 1
    assert euler(labels).tolist() == [eul]
    assert crop_region(labels, 1).euler_number == eul


@pytest.mark.parametrize(
    ("coords", "volume_convex"),
    [
        # voxels (i, i, i): the hull is the points within L1 distance 1/2 of the segment; any
        # other voxel centre is at distance >= 1 -> only the 4 voxels
        pytest.param([(i, i, i) for i in range(4)], 4, id="space-diagonal"),
        # two voxels sharing a corner (26-connected), collinear
        pytest.param([(0, 0, 0), (1, 1, 1)], 2, id="corner-pair"),
        # the square {(z, s, s)} in the diagonal plane y = x; a voxel centre off it, e.g.
        # (0, 1, 0), is at L1 distance |1 - s| + |s| >= 1 > 1/2 -> only the 4 voxels
        pytest.param([(0, 0, 0), (0, 1, 1), (1, 0, 0), (1, 1, 1)], 4, id="diagonal-plane"),
    ],
)
def test_degenerate_3d_objects_not_in_an_axis_plane(coords, volume_convex):
    """Collinear or coplanar voxels off the axis planes (qhull cannot take their centres
    alone): still one 26-connected object (Euler 1) with the hand-counted convex volume."""
    labels = np.zeros((5, 5, 5), np.int32)
    labels[tuple(np.array(coords).T)] = 1
    assert euler(labels).tolist() == [1]
    assert convex(labels).tolist() == [volume_convex]
    assert crop_region(labels, 1).euler_number == 1
