"""Resolve a dataset config into image records (id, path, optional mask, file-name metadata)."""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from hpcseg.config import (
    BBBC039DatasetConfig,
    DatasetConfig,
    SyntheticDatasetConfig,
    TiffGlobDatasetConfig,
)
from hpcseg.data import synthetic
from hpcseg.errors import UserError

TIFF_SUFFIXES = (".ome.tiff", ".ome.tif", ".tiff", ".tif")
RESERVED_COLUMNS = frozenset(
    {"image_id", "path", "mask_path", "status", "error", "n_objects", "label", "area"}
)


@dataclass(frozen=True)
class ImageRecord:
    """One image to segment; ``image_id`` is its file name without the extension."""

    image_id: str
    path: str
    mask_path: str | None = None
    metadata: tuple[tuple[str, str | None], ...] = ()


@dataclass
class Dataset:
    records: list[ImageRecord]
    metadata_columns: list[str] = field(default_factory=list)


def image_id_of(path: str) -> str:
    """The file name without its (TIFF) extension."""
    name = os.path.basename(path)
    for suffix in TIFF_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return os.path.splitext(name)[0]


def _glob(pattern: str) -> list[str]:
    return sorted(
        p for p in glob.glob(os.path.expanduser(pattern), recursive=True) if os.path.isfile(p)
    )


def resolve(cfg: DatasetConfig) -> Dataset:
    """Image records for ``cfg``; generates synthetic frames if needed. Raises UserError."""
    if isinstance(cfg, SyntheticDatasetConfig):
        return _synthetic(cfg)
    if isinstance(cfg, TiffGlobDatasetConfig):
        return _tiff_glob(cfg)
    if isinstance(cfg, BBBC039DatasetConfig):
        return _bbbc039(cfg)
    raise UserError(f"dataset={cfg.name}: unknown dataset kind")


def _synthetic(cfg: SyntheticDatasetConfig) -> Dataset:
    shape = (cfg.height, cfg.width) if cfg.ndim == 2 else (cfg.depth, cfg.height, cfg.width)
    z_ratio = cfg.z_step / cfg.pixel_size if cfg.z_step and cfg.pixel_size else 1.0
    folder = synthetic.synthetic_folder(cfg.cache_dir, cfg.seed, shape, z_ratio)
    try:
        paths = synthetic.ensure_frames(folder, cfg.seed, cfg.n_images, shape, z_ratio)
    except OSError as exc:
        raise UserError(
            f"cannot write synthetic frames to {folder} ({exc.strerror}); "
            "set dataset.cache_dir or HPCSEG_CACHE_DIR to a writable folder"
        ) from None
    records = [
        ImageRecord(image_id_of(str(p)), str(p), str(folder / "masks" / p.name)) for p in paths
    ]
    return Dataset(records)


def _tiff_glob(cfg: TiffGlobDatasetConfig) -> Dataset:
    paths = _glob(cfg.path)
    if not paths:
        raise UserError(
            f"dataset.path='{cfg.path}' matches no file; check the glob (quote it so the shell "
            "does not expand it) and that the folder is mounted"
        )
    masks: dict[str, str] = {}
    if cfg.masks:
        mask_paths = _glob(cfg.masks)
        if not mask_paths:
            raise UserError(f"dataset.masks='{cfg.masks}' matches no file; check the glob")
        masks = {image_id_of(p): p for p in mask_paths}
    pattern, columns = _metadata_pattern(cfg.metadata_regex)
    records, seen = [], {}
    for path in paths:
        image_id = image_id_of(path)
        if image_id in seen:
            raise UserError(
                f"two images share the id '{image_id}': {seen[image_id]} and {path}; image ids "
                "are file names without extension and must be unique (narrow dataset.path)"
            )
        seen[image_id] = path
        meta: tuple[tuple[str, str | None], ...] = ()
        if pattern is not None:
            m = pattern.search(os.path.basename(path))
            meta = tuple((c, m.group(c) if m else None) for c in columns)
        records.append(ImageRecord(image_id, str(Path(path).resolve()), masks.get(image_id), meta))
    return Dataset(records, columns)


BBBC039_SPLITS = ("training", "validation", "test")
# e.g. IXMtest_A02_s1_w1051DAE7F-7B5F-4A52-9D0C-9C6E5B1FB9B0.tif: well A02, site 1
BBBC039_NAME = re.compile(r"_(?P<well>[A-P]\d{2})_s(?P<site>\d+)_")


def _bbbc039_root(cfg: BBBC039DatasetConfig) -> Path:
    root = Path(cfg.root).expanduser()
    if not (root / "images").is_dir():
        raise UserError(
            f"dataset.root={cfg.root} has no images/ folder; point it at the unzipped BBBC039 "
            "set (images/*.tif, masks/*.png, metadata/*.txt)"
        )
    if cfg.split != "all" and not (root / "metadata" / f"{cfg.split}.txt").is_file():
        raise UserError(
            f"dataset.split={cfg.split} needs {root / 'metadata' / f'{cfg.split}.txt'} "
            "(the set's split files); use dataset.split=all without them"
        )
    return root


def _bbbc039(cfg: BBBC039DatasetConfig) -> Dataset:
    """BBBC039's own layout: masks matched by name, the split and the well/site as columns."""
    root = _bbbc039_root(cfg).resolve()
    split_of: dict[str, str] = {}
    for split in BBBC039_SPLITS:
        listing = root / "metadata" / f"{split}.txt"
        if listing.is_file():  # one mask file name per line
            split_of.update({image_id_of(n): split for n in listing.read_text().split()})
    records = []
    for path in sorted((root / "images").iterdir()):
        if not path.name.lower().endswith((".tif", ".tiff")):
            continue
        image_id = image_id_of(path.name)
        split = split_of.get(image_id)
        if cfg.split != "all" and split != cfg.split:
            continue
        mask = root / "masks" / f"{image_id}.png"
        name = BBBC039_NAME.search(path.name)
        meta = (
            ("split", split),
            ("well", name["well"] if name else None),
            ("site", name["site"] if name else None),
        )
        records.append(
            ImageRecord(image_id, str(path), str(mask) if mask.is_file() else None, meta)
        )
    if not records:
        raise UserError(f"dataset.root={cfg.root}: no images/*.tif in dataset.split={cfg.split}")
    return Dataset(records, ["split", "well", "site"])


def _metadata_pattern(regex: str | None) -> tuple[re.Pattern | None, list[str]]:
    if not regex:
        return None, []
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise UserError(f"dataset.metadata_regex is not a valid regex: {exc}") from None
    columns = list(pattern.groupindex)
    if not columns:
        raise UserError(
            "dataset.metadata_regex has no named groups; use e.g. '(?P<well>[A-P][0-9]{2})'"
        )
    clash = RESERVED_COLUMNS.intersection(columns)
    if clash:
        raise UserError(f"dataset.metadata_regex group names {sorted(clash)} clash with columns")
    return pattern, columns


def check(cfg: DatasetConfig) -> None:
    """Cheap up-front checks (before anything is written): globs match, regex compiles,
    folders exist."""
    if isinstance(cfg, BBBC039DatasetConfig):
        _bbbc039_root(cfg)
    if isinstance(cfg, TiffGlobDatasetConfig):
        for key, pattern in (("path", cfg.path), ("masks", cfg.masks)):
            if (
                pattern
                and next(glob.iglob(os.path.expanduser(pattern), recursive=True), None) is None
            ):
                raise UserError(
                    f"dataset.{key}='{pattern}' matches no file; check the glob (quote it so the "
                    "shell does not expand it) and that the folder is mounted"
                )
        _metadata_pattern(cfg.metadata_regex)
