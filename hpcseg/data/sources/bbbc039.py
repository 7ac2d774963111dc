"""``dataset=bbbc039``: the public BBBC039 set in its own layout (images/, masks/, metadata/)."""

from __future__ import annotations

import re
from pathlib import Path

from hpcseg.config.schemas import BBBC039DatasetConfig
from hpcseg.data.records import Dataset, ImageRecord, image_id_of
from hpcseg.errors import UserError

SCHEMA = BBBC039DatasetConfig
BBBC039_SPLITS = ("training", "validation", "test")
# e.g. IXMtest_A02_s1_w1051DAE7F-7B5F-4A52-9D0C-9C6E5B1FB9B0.tif: well A02, site 1
BBBC039_NAME = re.compile(r"_(?P<well>[A-P]\d{2})_s(?P<site>\d+)_")


def _root(cfg: BBBC039DatasetConfig) -> Path:
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


def resolve(cfg: BBBC039DatasetConfig) -> Dataset:
    """BBBC039's own layout: masks matched by name, the split and the well/site as columns."""
    root = _root(cfg).resolve()
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


def check(cfg: BBBC039DatasetConfig) -> None:
    """The folder has the set's layout (and the split file, when a split is chosen)."""
    _root(cfg)


def folders(cfg: BBBC039DatasetConfig) -> list[Path]:
    return [Path(cfg.root).expanduser().resolve()]
