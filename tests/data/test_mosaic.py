"""The synthetic mosaic: any split into regions tiles exactly into the whole, the nuclei are
where the ground truth says, and every file kind it writes reads back pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr

from hpcseg.data.large import close_stores, open_large
from hpcseg.data.mosaic import mosaic_nuclei, mosaic_region, mosaic_truth, write_mosaic

SHAPE_2D = (300, 420)
SHAPE_3D = (14, 60, 72)


@pytest.fixture(autouse=True)
def _close_files():
    yield
    close_stores()


def assemble(render, shape, cuts, dtype):
    """The whole image from regions cut at ``cuts`` (one list of cut points per axis)."""
    out = np.zeros(shape, dtype)
    edges = [[0, *c, n] for c, n in zip(cuts, shape, strict=True)]
    for corner in np.ndindex(*(len(e) - 1 for e in edges)):
        region = tuple(slice(e[i], e[i + 1]) for e, i in zip(edges, corner, strict=True))
        out[region] = render(region)
    return out


@pytest.mark.parametrize(
    ("shape", "splits"),
    [
        (SHAPE_2D, ([[150], [210]], [[1, 77, 299], [128, 129, 400]])),
        (SHAPE_3D, ([[7], [30], [36]], [[1, 2, 9], [17, 59], [5, 64]])),
    ],
)
def test_regions_tile_exactly_into_the_whole(shape, splits):
    full = tuple(slice(None) for _ in shape)
    whole = mosaic_region(3, shape, full)
    truth = mosaic_truth(3, shape, full)
    assert whole.dtype == np.uint16 and truth.dtype == np.int32
    for cuts in splits:
        pixels = assemble(lambda r: mosaic_region(3, shape, r), shape, cuts, np.uint16)
        np.testing.assert_array_equal(pixels, whole)
        labels = assemble(lambda r: mosaic_truth(3, shape, r), shape, cuts, np.int32)
        np.testing.assert_array_equal(labels, truth)
    # the same seed gives the same mosaic, another seed another one
    np.testing.assert_array_equal(mosaic_region(3, shape, full), whole)
    assert not np.array_equal(mosaic_region(4, shape, full), whole)


def test_nuclei_are_bright_where_the_truth_is_and_as_dense_as_asked():
    full = (slice(None), slice(None))
    pixels, truth = mosaic_region(5, SHAPE_2D, full), mosaic_truth(5, SHAPE_2D, full)
    assert pixels[truth > 0].mean() > 1.5 * pixels[truth == 0].mean()
    sizes = np.bincount(truth.ravel())[1:]
    sizes = sizes[sizes > 0]
    assert 80 < np.median(sizes) < 600  # semi-axes 6-14 px
    # the truth's nuclei are those mosaic_nuclei lists (plus ones centred just outside)
    labels, centres = mosaic_nuclei(5, SHAPE_2D)
    assert set(labels) <= set(np.unique(truth)) and centres.shape == (len(labels), 2)
    # about 370 nuclei per million pixels, counted without rendering
    labels, _ = mosaic_nuclei(5, (4096, 4096))
    assert 330 < len(labels) / 4096**2 * 1e6 < 410
    assert len(mosaic_nuclei(5, (4096, 4096), density=100.0)[0]) < len(labels) / 3


def test_region_bounds_and_parameters_are_checked():
    assert mosaic_region(0, SHAPE_2D, (slice(5, 5), slice(0, 10))).shape == (0, 10)
    assert mosaic_region(0, SHAPE_2D, (slice(-3, None), slice(None))).shape == (3, 420)
    with pytest.raises(ValueError, match="step 1"):
        mosaic_region(0, SHAPE_2D, (slice(0, 10, 2), slice(None)))
    with pytest.raises(ValueError, match="2 slices"):
        mosaic_region(0, SHAPE_2D, (slice(None),))
    with pytest.raises(ValueError, match="radius"):
        mosaic_region(0, SHAPE_2D, (slice(None), slice(None)), radius=(5.0, 2.0))


@pytest.mark.parametrize(
    ("name", "kind", "extra", "pixel_size"),
    [
        ("m.tif", "tiff", {}, 0.65),
        ("m.ome.tif", "tiff", {}, 0.65),
        ("m.zarr", "zarr", {}, None),
        ("m4.ome.zarr", "ome-zarr", {"ome_version": "0.4"}, 0.65),
        ("m5.ome.zarr", "ome-zarr", {"ome_version": "0.5"}, 0.65),
    ],
)
def test_write_mosaic_reads_back_identical_pixels(tmp_path, name, kind, extra, pixel_size):
    shape = (200, 264)
    path = write_mosaic(tmp_path / name, shape, 9, chunk=128, tile=64, kind=kind, workers=2,
                        **extra)  # fmt: skip
    image = open_large(path)
    assert (image.shape, image.chunks, image.pixel_size) == (shape, (64, 64), pixel_size)
    np.testing.assert_array_equal(image.read(()), mosaic_region(9, shape, (slice(None),) * 2))
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary left behind


@pytest.mark.parametrize(("name", "kind"), [("v.ome.tif", "tiff"), ("v.ome.zarr", "ome-zarr")])
def test_write_mosaic_volumes_with_their_z_step(tmp_path, name, kind):
    path = write_mosaic(tmp_path / name, SHAPE_3D, 2, chunk=64, tile=32, kind=kind,
                        pixel_size=0.5, z_ratio=2.0)  # fmt: skip
    image = open_large(path, ndim=3)
    assert (image.shape, image.pixel_size, image.z_step) == (SHAPE_3D, 0.5, 1.0)
    np.testing.assert_array_equal(image.read(()), mosaic_region(2, SHAPE_3D, (slice(None),) * 3))


def test_write_mosaic_replaces_a_store_but_nothing_else(tmp_path):
    first = write_mosaic(tmp_path / "m.zarr", (64, 64), 0, tile=32)
    write_mosaic(first, (96, 64), 1, tile=32)
    assert zarr.open_array(first, mode="r").shape == (96, 64)
    (tmp_path / "notes.zarr").mkdir()
    (tmp_path / "notes.zarr" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a Zarr store"):
        write_mosaic(tmp_path / "notes.zarr", (64, 64), tile=32)
    assert (tmp_path / "notes.zarr" / "keep.txt").exists()


def test_a_mosaic_written_by_two_workers_equals_its_regions(tmp_path):
    shape = (1024, 1536)
    path = write_mosaic(tmp_path / "big.tif", shape, 0, kind="tiff", workers=2, chunk=512)
    region = (slice(400, 700), slice(1400, 1536))
    np.testing.assert_array_equal(tifffile.imread(path)[region], mosaic_region(0, shape, region))
