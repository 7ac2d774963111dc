"""The image reader: per-image errors for bad files, accepted layouts, channels, the file's pixel
size, the values it refuses."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import tifffile

from hpcseg.config.compose import load_config
from hpcseg.data.reader import read_image
from hpcseg.data.records import ImageRecord
from hpcseg.errors import ImageError
from hpcseg.run.worker import BatchJob, _process_one

GOOD = np.arange(64 * 80, dtype=np.uint16).reshape(64, 80)


@pytest.fixture
def bad_files(tmp_path):
    tifffile.imwrite(tmp_path / "good.tif", GOOD)
    data = (tmp_path / "good.tif").read_bytes()
    (tmp_path / "truncated.tif").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.tif").write_bytes(b"this is not a tiff at all" * 10)
    tifffile.imwrite(tmp_path / "float.tif", GOOD.astype(np.float32))
    tifffile.imwrite(tmp_path / "stack.tif", np.stack([GOOD, GOOD, GOOD]), photometric="minisblack")
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((64, 80, 3), np.uint8), photometric="rgb")
    tifffile.imwrite(tmp_path / "complex.tif", GOOD.astype(np.complex64))
    tifffile.imwrite(tmp_path / "singleton.tif", GOOD[None])
    return tmp_path


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("truncated.tif", "cannot read TIFF"),
        ("garbage.tif", "cannot read TIFF"),
        ("missing.tif", "file not found"),
        ("float.tif", "floating point"),
        ("stack.tif", r"got 3 pages .*if these pages are z-planes.*set dataset\.ndim=3"),
        ("rgb.tif", r"^has 3 channels \(axes YXS\); choose one with dataset\.channel=<0\.\.2>$"),
        ("complex.tif", "not a grey-level number type"),
    ],
)
def test_bad_images_raise_image_error(bad_files, name, reason):
    with pytest.raises(ImageError, match=reason):
        read_image(str(bad_files / name), max_pixels=10**6)


def test_pixel_cap_and_accepted_layouts(bad_files):
    with pytest.raises(ImageError, match=r"exceed dataset\.max_pixels=1000"):
        read_image(str(bad_files / "good.tif"), max_pixels=1000)
    assert read_image(str(bad_files / "singleton.tif"), 10**6).pixels.shape == (64, 80)
    read = read_image(str(bad_files / "float.tif"), 10**6, require_integer=False)
    assert read.pixels.dtype == np.float32 and read.pixel_size is None


# --------------------------------------------------------------------------------- channels
def test_an_rgb_file_needs_a_channel_and_is_never_a_volume(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    path = str(tmp_path / "rgb.tif")
    # the old hint said ndim=3, which then read the colours as 3 z-planes
    with pytest.raises(ImageError, match=r"has 3 channels \(axes YXS\)"):
        read_image(path, 10**6, ndim=3)
    for channel in ("1", 1):
        np.testing.assert_array_equal(read_image(path, 10**6, channel=channel).pixels, rgb[..., 1])
    with pytest.raises(
        ImageError, match=r"dataset\.channel=3 but the image has 3 channels.*0\.\.2"
    ):
        read_image(path, 10**6, channel="3")
    with pytest.raises(ImageError, match=r"channels have no names.*use an index 0\.\.2"):
        read_image(path, 10**6, channel="red")
    # planar RGB (axes SYX) is the same image
    tifffile.imwrite(tmp_path / "planar.tif", rgb.transpose(2, 0, 1), photometric="rgb")
    planar = read_image(str(tmp_path / "planar.tif"), 10**6, channel=2).pixels
    np.testing.assert_array_equal(planar, rgb[..., 2])


def test_ome_channels_by_index_or_name_and_the_cap_on_one_channel(tmp_path):
    data = np.stack([GOOD, GOOD + 7])
    meta = {"axes": "CYX", "Channel": {"Name": ["DAPI", "GFP"]}}
    tifffile.imwrite(tmp_path / "two.ome.tif", data, metadata=meta, ome=True)
    path = str(tmp_path / "two.ome.tif")
    with pytest.raises(ImageError, match=r"has 2 channels \(DAPI, GFP\) \(axes CYX\).*<0\.\.1>"):
        read_image(path, 10**6)
    np.testing.assert_array_equal(read_image(path, 10**6, channel="GFP").pixels, data[1])
    np.testing.assert_array_equal(read_image(path, 10**6, channel="0").pixels, data[0])
    with pytest.raises(ImageError, match=r"'RFP': no channel of that name.*are DAPI, GFP"):
        read_image(path, 10**6, channel="RFP")
    # max_pixels counts the channel read, not every channel of the file
    assert read_image(path, 64 * 80, channel="GFP").pixels.shape == (64, 80)
    with pytest.raises(ImageError, match=r"5120 pixels exceed dataset\.max_pixels=5119"):
        read_image(path, 64 * 80 - 1, channel="GFP")


def test_multichannel_stacks_give_one_channel_as_a_volume(tmp_path):
    data = np.arange(2 * 5 * 16 * 24, dtype=np.uint16).reshape(2, 5, 16, 24)
    tifffile.imwrite(tmp_path / "czyx.ome.tif", data, metadata={"axes": "CZYX"}, ome=True)
    tifffile.imwrite(
        tmp_path / "ij.tif", data.transpose(1, 0, 2, 3), imagej=True, metadata={"axes": "ZCYX"}
    )
    for name in ("czyx.ome.tif", "ij.tif"):
        path = str(tmp_path / name)
        np.testing.assert_array_equal(read_image(path, 10**6, ndim=3, channel=1).pixels, data[1])
        # a real Z axis: the ndim=3 hint is right here
        with pytest.raises(ImageError, match=r"got a z-stack of 5 planes.*set dataset\.ndim=3"):
            read_image(path, 10**6, channel=1)


def test_axes_the_reader_cannot_explain_are_errors(tmp_path):
    tifffile.imwrite(tmp_path / "t.ome.tif", np.zeros((4, 16, 24), np.uint16),
                     metadata={"axes": "TYX"}, ome=True)  # fmt: skip
    tifffile.imwrite(
        tmp_path / "qq.tif", np.zeros((2, 3, 16, 24), np.uint16), photometric="minisblack"
    )
    tifffile.imwrite(tmp_path / "frame.tif", GOOD)
    for ndim in (2, 3):
        with pytest.raises(ImageError, match=r"axes TYX; its time \(T\) axis is not one"):
            read_image(str(tmp_path / "t.ome.tif"), 10**6, ndim=ndim)
        with pytest.raises(ImageError, match=r"axes QQYX.*other \(Q\), other \(Q\) axes are not"):
            read_image(str(tmp_path / "qq.tif"), 10**6, ndim=ndim)
    with pytest.raises(ImageError, match=r"dataset\.channel=1 but the image has 1 channel"):
        read_image(str(tmp_path / "frame.tif"), 10**6, channel=1)
    assert read_image(str(tmp_path / "frame.tif"), 10**6, channel=0).pixels.shape == (64, 80)


def test_layout_errors_come_from_the_header(tmp_path, monkeypatch):
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((64, 80, 3), np.uint8), photometric="rgb")
    tifffile.imwrite(tmp_path / "two.ome.tif", np.stack([GOOD, GOOD]), metadata={"axes": "CYX"},
                     ome=True)  # fmt: skip

    def no_decoding(*args, **kwargs):
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(tifffile.TiffPageSeries, "asarray", no_decoding)
    with pytest.raises(ImageError, match="has 3 channels"):
        read_image(str(tmp_path / "rgb.tif"), 10**6)
    with pytest.raises(ImageError, match=r"exceed dataset\.max_pixels=100"):
        read_image(str(tmp_path / "two.ome.tif"), 100, channel=1)


def test_dataset_channel_is_a_config_key():
    assert load_config([]).dataset.channel is None
    assert load_config(["dataset.channel=1"]).dataset.channel == "1"
    assert load_config(["dataset.channel=GFP"]).dataset.channel == "GFP"


# ------------------------------------------------------------------- files of many images
def _shaped_tiny_pages(path, n_pages: int) -> None:
    """What ``TiffWriter.write`` in a loop of ``n_pages`` 2x2 uint8 frames writes: a page per
    call, each with its own shaped description (so each a series), built directly with numpy
    because tifffile takes ~100 µs a page to write it."""
    description = b'{"shape": [2, 2]}\0'
    entry = np.dtype([("tag", "<u2"), ("type", "<u2"), ("count", "<u4"), ("value", "<u4")])
    block = np.dtype([("n", "<u2"), ("entries", entry, 10), ("next", "<u4"),
                      ("description", f"S{len(description)}"), ("pixels", "u1", 4)])  # fmt: skip
    blocks = np.zeros(n_pages, block)
    start = 8 + np.arange(n_pages, dtype=np.int64) * block.itemsize
    description_at = start + block.fields["description"][1]
    pixels_at = start + block.fields["pixels"][1]
    blocks["n"] = 10
    tags = [(256, 3, 1, 2), (257, 3, 1, 2), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
            (270, 2, len(description), 0), (273, 4, 1, 0), (277, 3, 1, 1), (278, 3, 1, 2),
            (279, 4, 1, 4)]  # fmt: skip
    for i, tag in enumerate(tags):
        blocks["entries"][:, i] = tag
    blocks["entries"]["value"][:, 5] = description_at
    blocks["entries"]["value"][:, 6] = pixels_at
    blocks["next"][:-1] = start[1:]
    blocks["description"] = description
    path.write_bytes(b"II*\0" + np.uint32(8).tobytes() + blocks.tobytes())


def test_a_file_of_many_tiny_images_fails_fast(tmp_path):
    _shaped_tiny_pages(tmp_path / "few.tif", 40)
    with tifffile.TiffFile(tmp_path / "few.tif") as tif:  # the helper writes what tifffile would
        assert tif.is_shaped and len(tif.series) == 40 and tif.series[0].shape == (2, 2)
    _shaped_tiny_pages(tmp_path / "many.tif", 20_000)  # tifffile: ~110 s to list its series
    t0 = time.perf_counter()
    with pytest.raises(ImageError, match=r"more than one image \(the first has 1 of its 20000"):
        read_image(str(tmp_path / "many.tif"), 10**6)
    assert time.perf_counter() - t0 < 1.0


def test_no_image_is_read_in_part(tmp_path):
    with tifffile.TiffWriter(tmp_path / "three.tif") as tif:  # three images, one file
        for _ in range(3):
            tif.write(GOOD)
    with pytest.raises(ImageError, match=r"more than one image \(the first has 1 of its 3 pages"):
        read_image(str(tmp_path / "three.tif"), 10**6)
    # plain TIFFs (no shape in the description): pages of two sizes, or of many
    with tifffile.TiffWriter(tmp_path / "two.tif") as tif:
        tif.write(GOOD, metadata=None)
        tif.write(GOOD[:10, :10], metadata=None)
    with pytest.raises(ImageError, match=r"TIFF holds 2 images"):
        read_image(str(tmp_path / "two.tif"), 10**6)
    with tifffile.TiffWriter(tmp_path / "sizes.tif") as tif:
        for width in range(1, 41):
            tif.write(GOOD[:2, :width], metadata=None)
    with pytest.raises(ImageError, match=r"40 pages of more than 16 different shapes"):
        read_image(str(tmp_path / "sizes.tif"), 10**6)
    # a plain multi-page stack of one shape is one image
    with tifffile.TiffWriter(tmp_path / "plain.tif") as tif:
        for _ in range(20):
            tif.write(GOOD, metadata=None)
    assert read_image(str(tmp_path / "plain.tif"), 10**6, ndim=3).pixels.shape == (20, 64, 80)


# ------------------------------------------------------------------------------ pixel size
def test_pixel_size_from_ome_tiff_and_imagej_tags(tmp_path):
    def written(name, **kwargs):
        tifffile.imwrite(tmp_path / name, GOOD, **kwargs)
        return read_image(str(tmp_path / name), 10**6).pixel_size

    ome = {"axes": "YX", "PhysicalSizeX": 0.325, "PhysicalSizeY": 0.5}
    assert written("a.ome.tif", ome=True, metadata=ome) == pytest.approx(0.325)
    ome = {"axes": "YX", "PhysicalSizeX": 650, "PhysicalSizeXUnit": "nm"}
    assert written("b.ome.tif", ome=True, metadata=ome) == pytest.approx(0.65)
    assert written("c.tif", resolution=(20000, 20000), resolutionunit="CENTIMETER") == 0.5
    assert written("d.tif", resolution=(101600, 101600), resolutionunit="INCH") == 0.25
    ij = {"unit": "um"}
    assert written("e.tif", imagej=True, resolution=(1 / 0.65,) * 2, metadata=ij) == (
        pytest.approx(0.65, rel=1e-6)
    )
    assert written("f.tif") is None  # tifffile's default 1 pixel per (no) unit
    assert written("g.tif", resolution=None) is None


def _job(tmp_path, pipeline):
    return BatchJob(
        pipeline=pipeline,
        max_pixels=2**28,
        out_dir=str(tmp_path),
        fingerprint="f",
        metadata_columns=(),
        file_metadata={},
    )


def test_the_worker_records_the_files_pixel_size(tmp_path):
    frame = np.full((64, 80), 100, np.uint16)
    frame[20:40, 20:40] = 1000
    ome = {"axes": "YX", "PhysicalSizeX": 0.325}
    tifffile.imwrite(tmp_path / "a.ome.tif", frame, ome=True, metadata=ome)
    tifffile.imwrite(tmp_path / "b.tif", frame)
    job = _job(tmp_path, load_config([]).pipeline)
    row, _ = _process_one(ImageRecord("a", str(tmp_path / "a.ome.tif"), None, ()), job)
    assert row["status"] == "ok" and row["file_pixel_size"] == pytest.approx(0.325)
    row, _ = _process_one(ImageRecord("b", str(tmp_path / "b.tif"), None, ()), job)
    assert row["status"] == "ok" and row["file_pixel_size"] is None


# ---------------------------------------------------------------------------------- values
def test_non_finite_and_negative_pixels_are_refused(tmp_path):
    image = GOOD.astype(np.float32)
    image[0, :3] = [np.nan, np.inf, -np.inf]
    tifffile.imwrite(tmp_path / "nan.tif", image)
    with pytest.raises(ImageError, match=r"^3 of 5120 pixels are NaN or infinite"):
        read_image(str(tmp_path / "nan.tif"), 10**6, require_integer=False)
    for dtype in (np.int32, np.float32):
        tifffile.imwrite(tmp_path / "neg.tif", (-1 - GOOD.astype(np.int32)).astype(dtype))
        with pytest.raises(ImageError, match=r"^5120 of 5120 pixels are negative.*counts are >= 0"):
            read_image(str(tmp_path / "neg.tif"), 10**6, require_integer=False)
    signed = GOOD.astype(np.int16)
    signed[5, 5] = -2
    tifffile.imwrite(tmp_path / "one.tif", signed)
    with pytest.raises(ImageError, match=r"1 of 5120 pixels are negative \(minimum -2\).*offset"):
        read_image(str(tmp_path / "one.tif"), 10**6)
    tifffile.imwrite(tmp_path / "ok.tif", GOOD.astype(np.int16))  # signed but >= 0 is fine
    assert read_image(str(tmp_path / "ok.tif"), 10**6).pixels.dtype == np.int16


@pytest.mark.parametrize("preset", ["nuclei", "nuclei_refined", "blog2021"])
def test_every_pipeline_fails_nan_and_negative_images_clearly(tmp_path, preset):
    pipeline = dataclasses.replace(load_config([f"pipeline={preset}"]).pipeline,
                                   require_integer_input=False)  # fmt: skip
    nan = np.full((64, 80), 100, np.float32)
    nan[30:40, 30:40] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", nan)
    tifffile.imwrite(tmp_path / "neg.tif", np.full((64, 80), -5, np.int32))
    job = _job(tmp_path, pipeline)
    for name, reason in (("nan", "100 of 5120 pixels are NaN"), ("neg", "are negative")):
        row, objects = _process_one(ImageRecord(name, str(tmp_path / f"{name}.tif"), None, ()), job)
        assert row["status"] == "failed" and reason in row["error"] and objects == {}
