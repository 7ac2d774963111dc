"""Checks of a composed config that its types alone cannot express: ranges and cross-field rules.

Pure functions on the schema dataclasses (no Hydra), run once before anything starts; each
failure is a :class:`hpcseg.errors.UserError` naming the key and the fix.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hpcseg.config.schemas import Config
from hpcseg.errors import UserError


def validate(cfg: Config) -> Config:
    """Raise UserError for the first rule ``cfg`` breaks; return it unchanged otherwise."""
    check_ranges(cfg, "")
    _check_geometry(cfg)
    _check_pipeline(cfg)
    return cfg


def check_ranges(obj: Any, prefix: str) -> None:
    """Every numeric field within its declared inclusive [ge, le] (``param`` metadata)."""
    if not dataclasses.is_dataclass(obj):
        return
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}.{f.name}" if prefix else f.name
        if dataclasses.is_dataclass(value):
            check_ranges(value, key)
            continue
        ge, le = f.metadata.get("ge"), f.metadata.get("le")
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if ge is not None and value < ge:
            raise UserError(f"{key}={value} is out of range: must be >= {ge} ({f.metadata['doc']})")
        if le is not None and value > le:
            raise UserError(f"{key}={value} is out of range: must be <= {le} ({f.metadata['doc']})")


def _check_pipeline(cfg: Config) -> None:
    p = cfg.pipeline
    th = p.threshold
    if th.block_size is not None and th.block_size % 2 == 0:
        raise UserError(
            f"pipeline.threshold.block_size={th.block_size} must be odd (or null for the frame)"
        )
    if p.refine.method == "objects" and p.split.method == "none":
        raise UserError(
            "pipeline.refine.method=objects refines the objects of a first split, but "
            "pipeline.split.method=none: use pipeline.refine.method=components (or none), or "
            "pipeline.split.method=watershed"
        )


def _check_geometry(cfg: Config) -> None:
    """Pixel size, plane step and the µm filters must fit the dataset's dimensionality."""
    ds, clean = cfg.dataset, cfg.pipeline.clean
    for key, value in (
        ("min_area_um2", clean.min_area_um2),
        ("min_volume_um3", clean.min_volume_um3),
    ):
        if value is not None and not ds.pixel_size:
            raise UserError(
                f"pipeline.clean.{key} needs dataset.pixel_size (micrometres per pixel)"
            )
    if ds.ndim == 3 and clean.min_area_um2 is not None:
        raise UserError(
            "pipeline.clean.min_area_um2 is for 2-D frames; z-stacks use "
            "pipeline.clean.min_volume_um3"
        )
    if ds.ndim == 2 and clean.min_volume_um3 is not None:
        raise UserError(
            "pipeline.clean.min_volume_um3 is for z-stacks (dataset.ndim=3); frames use "
            "min_area_um2"
        )
    if ds.z_step is not None and ds.ndim != 3:
        raise UserError("dataset.z_step is the plane step of z-stacks: set dataset.ndim=3 too")
    if ds.z_step is not None and not ds.pixel_size:
        raise UserError(
            "dataset.z_step needs dataset.pixel_size: the voxel shape is z_step / pixel_size"
        )
