"""Cross-field rules and ranges, on the schema dataclasses themselves (no Hydra)."""

from __future__ import annotations

import pytest

from hpcseg.config.schemas import (
    Config,
    ContainerConfig,
    LocalClusterConfig,
    SyntheticDatasetConfig,
    schema_fields,
)
from hpcseg.config.validate import validate
from hpcseg.errors import UserError


def _config() -> Config:
    return Config(
        dataset=SyntheticDatasetConfig(), cluster=LocalClusterConfig(), container=ContainerConfig()
    )


def test_the_defaults_are_valid():
    cfg = _config()
    assert validate(cfg) is cfg


def test_refining_objects_without_a_split_is_a_config_error():
    cfg = _config()
    cfg.pipeline.refine.method = "objects"
    cfg.pipeline.split.method = "none"
    with pytest.raises(UserError, match=r"pipeline\.refine\.method=objects .* split"):
        validate(cfg)
    cfg.pipeline.refine.method = "components"
    validate(cfg)  # refining components needs no split


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("smooth.sigma", -1.0, r"pipeline\.smooth\.sigma=-1\.0 is out of range: must be >= 0"),
        ("split.min_distance", 501, r"pipeline\.split\.min_distance=501 .* <= 500"),
        ("threshold.block_size", 50, "must be odd"),
    ],
)
def test_ranges_name_the_key(key, value, message):
    cfg = _config()
    section, name = key.split(".")
    setattr(getattr(cfg.pipeline, section), name, value)
    with pytest.raises(UserError, match=message):
        validate(cfg)


def test_schema_fields_are_found_by_class_name():
    assert "min_distance" in schema_fields("SplitConfig")
    assert schema_fields("NoSuchConfig") == []
