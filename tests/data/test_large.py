"""Lazy large images: regions of BigTIFF, OME-TIFF, Zarr and OME-Zarr files equal the whole
file's pixels; axes, channels, pixel size and z step come from the metadata; bad inputs are
one-line errors that name the file."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import tifffile
import zarr

from hpcseg.data.large import LargeImage, close_stores, is_zarr_path, open_large
from hpcseg.errors import ImageError

RNG = np.random.default_rng(0)
FRAME = RNG.integers(0, 60000, (300, 420), dtype=np.uint16)
REGIONS = [
    (slice(None), slice(None)),
    (slice(0, 1), slice(0, 1)),
    (slice(17, 211), slice(63, 65)),
    (slice(250, 300), slice(100, 420)),
    (slice(299, None), slice(-5, None)),
    (slice(10, 10), slice(0, 5)),  # empty
]


@pytest.fixture(autouse=True)
def _close_files():
    yield
    close_stores()  # tmp_path files are removed; keep no handle open on them


def ome_zarr(path, data, axes, scale, *, version="0.4", units=None, labels=None, chunks=None):
    """Write a one-level OME-Zarr image (NGFF 0.4 on Zarr v2, 0.5 on Zarr v3)."""
    fmt = 2 if version == "0.4" else 3
    group = zarr.open_group(str(path), mode="w", zarr_format=fmt)
    extra = {"chunk_key_encoding": {"name": "v2", "separator": "/"}} if fmt == 2 else {}
    group.create_array("0", data=data, chunks=chunks or data.shape, **extra)
    units = units or {}
    kinds = {"t": "time", "c": "channel"}
    multiscale = {
        "axes": [
            {"name": a, "type": kinds.get(a, "space"), **({"unit": units[a]} if a in units else {})}
            for a in axes
        ],
        "datasets": [
            {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}
        ],
    }
    ome = {"multiscales": [multiscale]}
    if labels:
        ome["omero"] = {"channels": [{"label": name} for name in labels]}
    if fmt == 2:
        multiscale["version"] = "0.4"
        group.attrs.update(ome)
    else:
        group.attrs["ome"] = {"version": "0.5", **ome}
    return str(path)


def assert_regions_equal(image: LargeImage, whole: np.ndarray) -> None:
    assert image.shape == whole.shape
    for region in REGIONS:
        got = image.read(region[: whole.ndim])
        np.testing.assert_array_equal(got, whole[region[: whole.ndim]])
        assert got.dtype == whole.dtype and got.flags.c_contiguous


# --------------------------------------------------------------------------------------- TIFF
def test_bigtiff_tiled_and_striped_regions_equal_the_whole_file(tmp_path):
    tifffile.imwrite(tmp_path / "tiled.tif", FRAME, tile=(64, 128), bigtiff=True)
    tifffile.imwrite(tmp_path / "striped.tif", FRAME, rowsperstrip=16)
    for name, chunks in [("tiled.tif", (64, 128)), ("striped.tif", (16, 420))]:
        path = str(tmp_path / name)
        image = open_large(path)
        assert (image.dtype, image.chunks, image.pixel_size) == ("uint16", chunks, None)
        assert_regions_equal(image, tifffile.imread(path))


def test_ome_tiff_channel_z_stack_pixel_size_and_z_step(tmp_path):
    data = RNG.integers(0, 4000, (2, 6, 40, 56), dtype=np.uint16)
    meta = {"axes": "CZYX", "Channel": {"Name": ["DAPI", "GFP"]}, "PhysicalSizeX": 325,
            "PhysicalSizeXUnit": "nm", "PhysicalSizeZ": 2.0, "PhysicalSizeZUnit": "µm"}  # fmt: skip
    path = str(tmp_path / "czyx.ome.tif")
    tifffile.imwrite(path, data, metadata=meta, tile=(16, 16), ome=True)
    image = open_large(path, ndim=3, channel="GFP")
    assert (image.pixel_size, image.z_step, image.chunks) == (0.325, 2.0, (1, 16, 16))
    assert_regions_equal(image, data[1])
    np.testing.assert_array_equal(open_large(path, ndim=3, channel=0).read(()), data[0])


def test_tiff_pyramid_reads_level_0_and_resolution_tags_give_the_pixel_size(tmp_path):
    path = str(tmp_path / "pyramid.ome.tif")
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(FRAME, tile=(64, 64), subifds=1, metadata={"axes": "YX"})
        tif.write(FRAME[::2, ::2], tile=(64, 64), subfiletype=1)
    assert_regions_equal(open_large(path), FRAME)
    path = str(tmp_path / "resolution.tif")  # 20,000 pixels per cm: 0.5 µm
    tifffile.imwrite(path, FRAME, resolution=(2e4, 2e4), resolutionunit="CENTIMETER")
    assert open_large(path).pixel_size == pytest.approx(0.5)


def test_rgb_tiff_needs_a_channel(tmp_path):
    rgb = RNG.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    path = str(tmp_path / "rgb.tif")
    tifffile.imwrite(path, rgb, photometric="rgb", tile=(16, 16))
    with pytest.raises(ImageError, match=r"rgb\.tif: has 3 channels \(axes YXS\)"):
        open_large(path)
    assert_regions_equal(open_large(path, channel=2), rgb[..., 2])


# --------------------------------------------------------------------------------------- Zarr
def test_ome_zarr_0_4_channels_by_label_or_index_units_and_length_1_axes(tmp_path):
    data = RNG.integers(0, 4000, (1, 2, 5, 60, 70), dtype=np.uint16)
    path = ome_zarr(tmp_path / "img.ome.zarr", data, "tczyx", [1, 1, 1.5, 325, 325],
                    units={"z": "micrometer", "y": "nanometer", "x": "nanometer"},
                    labels=["DAPI", "GFP"], chunks=(1, 1, 2, 32, 32))  # fmt: skip
    image = open_large(path, ndim=3, channel="GFP")
    assert (image.pixel_size, image.z_step, image.chunks) == (0.325, 1.5, (2, 32, 32))
    assert_regions_equal(image, data[0, 1])
    assert_regions_equal(open_large(path, ndim=3, channel=0), data[0, 0])
    # the level named by hand: its axes and scale are still its image's
    assert open_large(path, ndim=3, channel=1, array="0").pixel_size == 0.325
    with pytest.raises(ImageError, match=r"has 2 channels \(DAPI, GFP\) \(axes CZYX\)"):
        open_large(path, ndim=3)
    with pytest.raises(ImageError, match=r"'RFP': no channel of that name.*DAPI, GFP"):
        open_large(path, ndim=3, channel="RFP")
    with pytest.raises(ImageError, match=r"got a z-stack of 5 planes.*set dataset\.ndim=3"):
        open_large(path, channel=1)


def test_ome_zarr_0_5_units_and_a_plane_of_a_volume(tmp_path):
    data = RNG.integers(0, 4000, (1, 60, 70), dtype=np.uint16)
    path = ome_zarr(tmp_path / "img.ome.zarr", data, "zyx", [3.0, 0.0005, 0.0005],
                    version="0.5", units={"z": "micrometer", "x": "millimeter"})  # fmt: skip
    image = open_large(path)  # one plane: a 2-D image
    assert (image.pixel_size, image.z_step) == (pytest.approx(0.5), None)
    assert_regions_equal(image, data[0])
    assert zarr.open_group(path, mode="r").metadata.zarr_format == 3
    # no unit: the scale's length is unknown
    path = ome_zarr(tmp_path / "nounit.ome.zarr", data[0], "yx", [0.4, 0.4], version="0.5")
    assert open_large(path).pixel_size is None


def test_plain_zarr_arrays_by_position_or_dimension_names(tmp_path):
    volume = RNG.integers(0, 4000, (1, 5, 40, 50), dtype=np.uint16)
    zarr.create_array(str(tmp_path / "v2.zarr"), data=volume, chunks=(1, 2, 16, 16), zarr_format=2)
    image = open_large(str(tmp_path / "v2.zarr"), ndim=3)
    assert image.chunks == (2, 16, 16) and image.pixel_size is None
    assert_regions_equal(image, volume[0])
    with pytest.raises(ImageError, match=r"got a z-stack of 5 planes"):
        open_large(str(tmp_path / "v2.zarr"))
    # Zarr v3 dimension names: here the channel axis is first
    zarr.create_array(
        str(tmp_path / "cyx.zarr"), data=volume[0, :3], dimension_names=["c", "y", "x"]
    )
    assert_regions_equal(open_large(str(tmp_path / "cyx.zarr"), channel=2), volume[0, 2])
    # an array inside a group, big-endian: read as native numbers
    group = zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    group.create_array("images/a", data=FRAME.astype(">u2"), chunks=(64, 64))
    image = open_large(str(tmp_path / "group.zarr"), array="images/a")
    assert image.dtype == "uint16"
    assert_regions_equal(image, FRAME)


def test_large_image_pickles_small_and_reads_after_unpickling(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", FRAME, tile=(64, 64), bigtiff=True)
    zarr.create_array(str(tmp_path / "a.zarr"), data=FRAME, chunks=(64, 64))
    for path in (tmp_path / "a.tif", tmp_path / "a.zarr"):
        image = open_large(str(path))
        blob = pickle.dumps(image)
        assert len(blob) < 1000
        close_stores()  # as on a fresh worker: read opens the store itself
        copy = pickle.loads(blob)
        assert copy == image
        np.testing.assert_array_equal(
            copy.read((slice(5, 77), slice(100, 300))), FRAME[5:77, 100:300]
        )
    with pytest.raises(ValueError, match="step 1"):
        image.read((slice(0, 10, 2), slice(None)))


def test_a_rewritten_file_is_reopened(tmp_path):
    path = str(tmp_path / "a.tif")
    tifffile.imwrite(path, FRAME, tile=(64, 64))
    image = open_large(path)
    image.read(())
    tifffile.imwrite(path + ".new", FRAME[::-1], tile=(64, 64))
    (tmp_path / "a.tif.new").replace(path)
    np.testing.assert_array_equal(image.read(()), FRAME[::-1])


# ------------------------------------------------------------------------------------- errors
def test_bad_inputs_are_one_line_errors_naming_the_file(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image\n" * 20)
    (tmp_path / "plain").mkdir()
    (tmp_path / "file.zarr").write_text("x")
    group = zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    group.create_array("raw", shape=(10, 10), dtype="uint8")
    group.create_array("labels", shape=(10, 10), dtype="uint8")
    zarr.create_array(str(tmp_path / "bool.zarr"), shape=(10, 10), dtype="bool")
    zarr.create_array(str(tmp_path / "text.zarr"), shape=(10, 10), dtype=str)
    zarr.create_array(str(tmp_path / "4d.zarr"), shape=(2, 3, 10, 10), dtype="uint8")
    zarr.create_array(str(tmp_path / "1d.zarr"), shape=(100,), dtype="uint8")
    tifffile.imwrite(tmp_path / "complex.tif", FRAME.astype(np.complex64))
    cases = [
        ("missing.tif", {}, "not found"),
        ("notes.txt", {}, r"not a TIFF \(TiffFileError"),
        ("plain", {}, r"not a Zarr store"),
        ("file.zarr", {}, r"is a file, not a Zarr store"),
        ("group.zarr", {}, r"group without OME-Zarr multiscales.*arrays \(labels, raw\)"),
        ("group.zarr", {"array": "nope"}, r"has no array or group 'nope' \(dataset\.array\)"),
        ("bool.zarr", {}, r"pixel type bool is not a grey-level number type"),
        ("text.zarr", {}, r"pixel type .* is not a grey-level number type"),
        ("complex.tif", {}, r"pixel type complex64 is not a grey-level number type"),
        ("4d.zarr", {}, r"shape \(2, 3, 10, 10\) without axis names; .*\(Y, X\) or \(Z, Y, X\)"),
        ("1d.zarr", {"ndim": 3}, r"shape \(100,\) without axis names"),
        ("complex.tif", {"array": "0"}, r"is a TIFF: dataset\.array='0' is for Zarr stores"),
    ]
    for name, kwargs, reason in cases:
        path = str(tmp_path / name)
        with pytest.raises(ImageError, match=reason) as info:
            open_large(path, **kwargs)
        message = str(info.value)
        assert message.startswith(f"{path}: ") and "\n" not in message, message


def test_a_lost_chunk_file_is_an_image_error_on_read(tmp_path):
    path = str(tmp_path / "a.tif")
    tifffile.imwrite(path, FRAME, tile=(64, 64))
    image = open_large(path)
    (tmp_path / "a.tif").write_bytes((tmp_path / "a.tif").read_bytes()[:2000])  # truncated
    with pytest.raises(ImageError, match=r"a\.tif: cannot read region"):
        image.read(())
    (tmp_path / "a.tif").unlink()
    with pytest.raises(ImageError, match=r"a\.tif: cannot read region .*FileNotFoundError"):
        image.read(())


def test_is_zarr_path(tmp_path):
    zarr.create_array(str(tmp_path / "array"), shape=(4, 4), dtype="uint8")
    (tmp_path / "folder").mkdir()
    assert is_zarr_path(tmp_path / "array") and is_zarr_path(str(tmp_path / "x.ome.zarr/"))
    assert not is_zarr_path(tmp_path / "folder") and not is_zarr_path(tmp_path / "a.tif")


def test_reads_decode_every_codec(tmp_path):
    """Plain and compressed TIFF tiles and Zarr chunks read back as written."""
    data = np.arange(64 * 80, dtype=np.uint16).reshape(64, 80)
    tifffile.imwrite(tmp_path / "plain.tif", data, tile=(32, 32))
    tifffile.imwrite(tmp_path / "zlib.tif", data, tile=(32, 32), compression="zlib")
    zarr.create_array(tmp_path / "zstd.zarr", data=data, chunks=(32, 32))  # zarr's default codec
    zarr.create_array(tmp_path / "raw.zarr", data=data, chunks=(32, 32), compressors=None)
    region = (slice(5, 40), slice(30, 70))  # across tiles and chunks
    for name in ("plain.tif", "zlib.tif", "zstd.zarr", "raw.zarr"):
        image = open_large(tmp_path / name)
        np.testing.assert_array_equal(image.read((slice(None),) * 2), data)
        np.testing.assert_array_equal(image.read(region), data[region])
