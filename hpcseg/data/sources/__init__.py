"""Dataset kinds: each resolves its config into image records, one small module per kind.

A kind module has ``SCHEMA`` (its config class), ``resolve(cfg) -> Dataset``, ``check(cfg)``
(cheap checks before anything is written) and ``folders(cfg)`` (the folders a job reads, which a
container must bind). Adding a kind: its schema in :mod:`hpcseg.config.schemas`, a module here
and one line in :data:`KINDS`.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from hpcseg.config.schemas import DatasetConfig
from hpcseg.data.records import Dataset
from hpcseg.data.sources import bbbc039, synthetic, tiff_glob, zarr_store
from hpcseg.registry import Registry

KINDS: Registry[ModuleType] = Registry(
    "dataset", {kind.SCHEMA: kind for kind in (synthetic, tiff_glob, bbbc039, zarr_store)}
)


def resolve(cfg: DatasetConfig) -> Dataset:
    """Image records for ``cfg``; generates synthetic frames if needed. Raises UserError."""
    return KINDS.of(cfg).resolve(cfg)


def check(cfg: DatasetConfig) -> None:
    """Cheap up-front checks (before anything is written): globs match, regex compiles,
    folders exist."""
    KINDS.of(cfg).check(cfg)


def folders(cfg: DatasetConfig) -> list[Path]:
    """The folders the dataset's files are in."""
    return KINDS.of(cfg).folders(cfg)
