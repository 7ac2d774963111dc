"""The image reader: per-image errors for bad files, accepted layouts."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from hpcseg.data.reader import read_image
from hpcseg.errors import ImageError


@pytest.fixture
def bad_files(tmp_path):
    good = np.arange(64 * 80, dtype=np.uint16).reshape(64, 80)
    tifffile.imwrite(tmp_path / "good.tif", good)
    data = (tmp_path / "good.tif").read_bytes()
    (tmp_path / "truncated.tif").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.tif").write_bytes(b"this is not a tiff at all" * 10)
    tifffile.imwrite(tmp_path / "float.tif", good.astype(np.float32))
    tifffile.imwrite(tmp_path / "stack.tif", np.stack([good, good, good]), photometric="minisblack")
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((64, 80, 3), np.uint8), photometric="rgb")
    tifffile.imwrite(tmp_path / "complex.tif", good.astype(np.complex64))
    tifffile.imwrite(tmp_path / "singleton.tif", good[None])
    return tmp_path


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("truncated.tif", "cannot read TIFF"),
        ("garbage.tif", "cannot read TIFF"),
        ("missing.tif", "file not found"),
        ("float.tif", "floating point"),
        ("stack.tif", "expected a 2-D image"),
        ("rgb.tif", "expected a 2-D image"),
        ("complex.tif", "not a grey-level number type"),
    ],
)
def test_bad_images_raise_image_error(bad_files, name, reason):
    with pytest.raises(ImageError, match=reason):
        read_image(str(bad_files / name), max_pixels=10**6)


def test_pixel_cap_and_accepted_layouts(bad_files):
    with pytest.raises(ImageError, match=r"exceed dataset\.max_pixels=1000"):
        read_image(str(bad_files / "good.tif"), max_pixels=1000)
    assert read_image(str(bad_files / "singleton.tif"), 10**6).shape == (64, 80)
    assert (
        read_image(str(bad_files / "float.tif"), 10**6, require_integer=False).dtype == np.float32
    )
