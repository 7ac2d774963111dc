"""``dataset=tiff_glob``: a glob of TIFFs, masks matched by file name, metadata from names."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from hpcseg.config.schemas import TiffGlobDatasetConfig
from hpcseg.data.records import (
    Dataset,
    ImageRecord,
    glob_files,
    image_id_of,
    matches_nothing,
    metadata_pattern,
    refuse_shared_id,
    require_match,
)

SCHEMA = TiffGlobDatasetConfig


def resolve(cfg: TiffGlobDatasetConfig) -> Dataset:
    paths = glob_files(cfg.path)
    if not paths:
        raise matches_nothing("dataset.path", cfg.path)
    masks: dict[str, str] = {}
    if cfg.masks:
        mask_paths = glob_files(cfg.masks)
        if not mask_paths:
            raise matches_nothing("dataset.masks", cfg.masks)
        masks = {image_id_of(p): p for p in mask_paths}
    pattern, columns = metadata_pattern(cfg.metadata_regex, "dataset.metadata_regex")
    records, seen = [], {}
    for path in paths:
        image_id = image_id_of(path)
        refuse_shared_id(seen, image_id, path, "file names without extension")
        meta: tuple[tuple[str, str | None], ...] = ()
        if pattern is not None:
            m = pattern.search(os.path.basename(path))
            meta = tuple((c, m.group(c) if m else None) for c in columns)
        records.append(ImageRecord(image_id, str(Path(path).resolve()), masks.get(image_id), meta))
    return Dataset(records, columns)


def check(cfg: TiffGlobDatasetConfig) -> None:
    """The globs match something and the regex compiles (before anything is written)."""
    require_match("dataset.path", cfg.path)
    require_match("dataset.masks", cfg.masks)
    metadata_pattern(cfg.metadata_regex, "dataset.metadata_regex")


def glob_root(pattern: str) -> Path:
    """The deepest folder of a glob pattern that has no wildcard in it."""
    parts = Path(os.path.expanduser(pattern)).parts
    fixed = []
    for part in parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    root = Path(*fixed) if fixed else Path.cwd()
    return (
        root if root.is_dir() or not fixed or len(fixed) < len(parts) else root.parent
    ).absolute()


def folders(cfg: TiffGlobDatasetConfig) -> list[Path]:
    """The fixed folders of the image and mask globs."""
    return [glob_root(p) for p in (cfg.path, cfg.masks) if p]
