"""``dataset=zarr``: a glob of Zarr stores resolves to one record per store."""

from __future__ import annotations

import pytest
import zarr

from hpcseg.config.schemas import ZarrDatasetConfig
from hpcseg.data import sources
from hpcseg.data.large import open_large
from hpcseg.errors import UserError


def stores(root, names):
    for name in names:
        zarr.create_array(str(root / name), shape=(8, 8), dtype="uint16", fill_value=3)


def test_stores_resolve_to_records_named_without_zarr(make_config, tmp_path):
    stores(tmp_path, ["b.ome.zarr", "a.zarr", "c"])
    (tmp_path / "not-a-store").mkdir()
    (tmp_path / "file.tif").write_bytes(b"x")
    cfg = make_config(
        "dataset=zarr", "mode=tiled", f"dataset.path={tmp_path}/*", "dataset.array=null"
    )
    assert isinstance(cfg.dataset, ZarrDatasetConfig)
    data = sources.resolve(cfg.dataset)
    assert [r.image_id for r in data.records] == ["a", "b", "c"]
    assert data.records[0].path == str((tmp_path / "a.zarr").resolve())
    assert all(r.mask_path is None for r in data.records)
    assert sources.folders(cfg.dataset) == [tmp_path]
    assert open_large(data.records[1].path).read(()).sum() == 3 * 64


def test_a_recursive_glob_lists_stores_not_the_arrays_inside_them(tmp_path):
    group = zarr.open_group(str(tmp_path / "plate" / "x.ome.zarr"), mode="w")
    group.create_array("0", shape=(8, 8), dtype="uint16")
    group.create_array("labels/0", shape=(8, 8), dtype="uint16")
    stores(tmp_path / "plate", ["y.zarr"])
    data = sources.resolve(ZarrDatasetConfig(path=f"{tmp_path}/**"))
    assert [r.image_id for r in data.records] == ["x", "y"]


def test_bad_globs_and_clashing_ids_are_user_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="matches no file"):
        sources.check(ZarrDatasetConfig(path=f"{tmp_path}/*.zarr"))
    with pytest.raises(UserError, match="matches no Zarr store"):
        sources.resolve(ZarrDatasetConfig(path=f"{tmp_path}/*"))
    stores(tmp_path / "one", ["s.zarr"])
    stores(tmp_path / "two", ["s.ome.zarr"])
    with pytest.raises(UserError, match=r"share the id 's'"):
        sources.resolve(ZarrDatasetConfig(path=f"{tmp_path}/*/*"))
