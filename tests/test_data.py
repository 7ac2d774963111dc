"""Synthetic generator, dataset resolution and the image reader's per-image errors."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from hpcseg.data import sources, synthetic
from hpcseg.data.reader import read_image
from hpcseg.errors import ImageError, UserError


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


def test_synthetic_dataset_records_have_masks(make_config):
    data = sources.resolve(make_config("dataset.n_images=3").dataset)
    assert [r.image_id for r in data.records] == [f"synthetic-s0-{i:05d}" for i in range(3)]
    for r in data.records:
        assert tifffile.imread(r.mask_path).shape == (520, 696)


def write_tiffs(folder, names, shape=(32, 40)):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        tifffile.imwrite(folder / name, np.ones(shape, np.uint16))


def test_tiff_glob_masks_by_name_and_metadata(make_config, tmp_path):
    write_tiffs(tmp_path / "img", ["P1_A01_s1.tif", "P1_B02_s2.tif", "P2_C03_s1.ome.tif"])
    write_tiffs(tmp_path / "gt", ["P1_A01_s1.tif", "P2_C03_s1.ome.tif"])
    cfg = make_config(
        "dataset=tiff_glob",
        f"dataset.path={tmp_path}/img/*.tif",
        f"dataset.masks={tmp_path}/gt/*.tif",
        r"dataset.metadata_regex='(?P<plate>P\d+)_(?P<well>[A-P]\d{2})_s(?P<site>\d+)'",
    )
    data = sources.resolve(cfg.dataset)
    assert data.metadata_columns == ["plate", "well", "site"]
    by_id = {r.image_id: r for r in data.records}
    assert set(by_id) == {"P1_A01_s1", "P1_B02_s2", "P2_C03_s1"}
    assert by_id["P1_A01_s1"].mask_path.endswith("gt/P1_A01_s1.tif")
    assert by_id["P1_B02_s2"].mask_path is None
    assert dict(by_id["P2_C03_s1"].metadata) == {"plate": "P2", "well": "C03", "site": "1"}


def test_duplicate_image_ids_are_refused(make_config, tmp_path):
    write_tiffs(tmp_path / "a", ["x.tif"])
    write_tiffs(tmp_path / "b", ["x.tif"])
    cfg = make_config("dataset=tiff_glob", f"dataset.path={tmp_path}/**/*.tif")
    with pytest.raises(UserError, match=r"share the id 'x'"):
        sources.resolve(cfg.dataset)


def test_metadata_regex_without_groups_is_refused(make_config, tmp_path):
    write_tiffs(tmp_path, ["x.tif"])
    with pytest.raises(UserError, match="named groups"):
        make_config(
            "dataset=tiff_glob", f"dataset.path={tmp_path}/*.tif", "dataset.metadata_regex=x"
        )


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
