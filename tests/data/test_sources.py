"""Dataset kinds resolve to image records; bad settings are one clear error."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from hpcseg.data import sources
from hpcseg.errors import UserError


def test_synthetic_dataset_records_have_masks(make_config):
    data = sources.resolve(make_config("dataset.n_images=3").dataset)
    assert [r.image_id for r in data.records] == [f"synthetic-s0-{i:05d}" for i in range(3)]
    for r in data.records:
        assert tifffile.imread(r.mask_path).shape == (520, 696)


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


def write_tiffs(folder, names, shape=(32, 40)):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        tifffile.imwrite(folder / name, np.ones(shape, np.uint16))
