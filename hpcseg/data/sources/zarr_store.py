"""``dataset=zarr``: a glob of Zarr stores (Zarr v2/v3 arrays, OME-Zarr images), one image each,
read lazily by :mod:`hpcseg.data.large` (``dataset.array`` picks the array inside a store)."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from hpcseg.config.schemas import ZarrDatasetConfig
from hpcseg.data.large import is_zarr_path
from hpcseg.data.records import Dataset, ImageRecord, refuse_shared_id, require_match
from hpcseg.data.sources.tiff_glob import glob_root
from hpcseg.errors import UserError

SCHEMA = ZarrDatasetConfig

ZARR_SUFFIXES = (".ome.zarr", ".zarr")


def store_id(path: str) -> str:
    """The store's folder name without .ome.zarr / .zarr."""
    name = os.path.basename(os.path.normpath(path))
    for suffix in ZARR_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def store_paths(pattern: str) -> list[str]:
    """The Zarr stores (folders) ``pattern`` matches, sorted; folders inside a matched store
    (its arrays, chunk folders, which ``**`` also matches) are not stores of their own."""
    found = sorted(
        os.path.normpath(p)
        for p in glob.glob(os.path.expanduser(pattern), recursive=True)
        if os.path.isdir(p) and is_zarr_path(p)
    )
    stores: list[str] = []
    for path in found:  # sorted: a store comes before the folders inside it
        if not stores or not path.startswith(stores[-1].rstrip(os.sep) + os.sep):
            stores.append(path)
    return stores


def resolve(cfg: ZarrDatasetConfig) -> Dataset:
    paths = store_paths(cfg.path)
    if not paths:
        raise UserError(
            f"dataset.path='{cfg.path}' matches no Zarr store (a folder with .zarray, .zgroup "
            "or zarr.json, or named *.zarr); check the glob (quote it so the shell does not "
            "expand it) and that the folder is mounted"
        )
    records, seen = [], {}
    for path in paths:
        image_id = store_id(path)
        refuse_shared_id(seen, image_id, path, "store names without .zarr")
        records.append(ImageRecord(image_id, str(Path(path).resolve())))
    return Dataset(records)


def check(cfg: ZarrDatasetConfig) -> None:
    """The glob matches something (cheap: stops at the first match)."""
    require_match("dataset.path", cfg.path)


def folders(cfg: ZarrDatasetConfig) -> list[Path]:
    """The fixed folder of the stores' glob."""
    return [glob_root(cfg.path)]
