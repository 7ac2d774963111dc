"""`hpcseg keys`: every key's type, default, range and doc reachable from the command line, and
the key lookups composing relies on (unknown keys, string keys)."""

from __future__ import annotations

import dataclasses

import pytest

from hpcseg.config.keys import describe, is_string_key, leaf_types, sections, unknown_key
from hpcseg.config.schemas import SCHEMAS, Config


def _every_key() -> list[tuple[str, dataclasses.Field]]:
    """(key, field) for every leaf field of every schema (group kinds: all of them)."""
    out = []

    def walk(cls, prefix):
        for f in dataclasses.fields(cls):
            tp = cls.__dataclass_fields__[f.name].default_factory
            if dataclasses.is_dataclass(tp):
                walk(tp, f"{prefix}{f.name}.")
            elif not (prefix.rstrip(".") in SCHEMAS and f.name == "name"):
                out.append((f"{prefix}{f.name}", f))

    for f in dataclasses.fields(Config):
        if f.name in SCHEMAS:
            for cls in SCHEMAS[f.name].values():
                walk(cls, f"{f.name}.")
        else:
            walk(f.default_factory, f"{f.name}.")
    return out


def test_every_key_is_described_with_its_doc_and_range():
    text = "\n".join(describe())
    keys = _every_key()
    assert len(keys) > 60
    for key, f in keys:
        assert f"\n{key}: " in f"\n{text}", key
        assert f.metadata["doc"] in text, key
        lines = describe(key)
        head = next(line for line in lines if line.startswith(f"{key}: "))
        if f.metadata.get("ge") is not None:
            assert ">=" in head or "in [" in head, head


def test_describe_a_prefix_and_a_kind():
    split = describe("pipeline.split")
    assert split[0] == "# pipeline:"
    assert "pipeline.split.min_distance: int | null = null, in [1, 500]" in split
    assert not any(line.startswith("pipeline.smooth") for line in split)
    tiff = describe("dataset=tiff_glob")
    assert tiff[0].startswith("# dataset=tiff_glob: A glob of TIFF files")
    assert "dataset.path: str = required" in tiff
    assert "dataset.masks: str | null = null" in tiff
    assert not any(line.startswith("dataset.n_images") for line in tiff)
    memory = describe("cluster.memory")  # the local limit and the jobqueue kinds' size
    assert "# cluster=local: A `distributed.LocalCluster` of worker processes on this machine." in (
        memory
    )
    assert "cluster.memory: str = 2GiB" in memory and "cluster.memory_limit: str = auto" in memory
    assert "pipeline.smooth.method: none | gaussian = gaussian" in describe("pipeline.smooth")
    assert describe("nope") == [] and describe("dataset=nope") == []
    assert sections() == [
        "dataset", "mode", "cluster", "container", "pipeline", "runner", "output", "sweep"
    ]  # fmt: skip


def test_unknown_keys_are_found_against_the_selected_kind():
    assert unknown_key({"dataset": {"name": "synthetic", "n_images": 3}}) is None
    key, valid = unknown_key({"dataset": {"name": "synthetic", "pathh": "x"}})
    assert key == "dataset.pathh" and "n_images" in valid and "path" not in valid
    assert unknown_key({"dataset": {"name": "tiff_glob", "path": "x"}}) is None
    assert unknown_key({"colour": "red"})[0] == "colour"
    assert unknown_key({"pipeline": {"smooth": {"sigmaa": 1}}})[0] == "pipeline.smooth.sigmaa"
    env = {"container": {"name": "apptainer", "env": {"ANY_NAME": "1"}}}
    assert unknown_key(env) is None  # a dict-valued key holds any key


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("container.executable", True),
        ("output.dir", True),
        ("dataset.path", True),
        ("dataset.masks", True),  # str | None
        ("cluster.memory_limit", True),
        ("cluster.walltime", True),
        ("dataset.n_images", False),
        ("output.resume", False),
        ("pipeline.smooth.method", False),  # an enum: Hydra's parse is right
        ("pipeline", False),
        ("dataset", False),
        ("no.such.key", False),
    ],
)
def test_string_keys(key, expected):
    assert is_string_key(key) is expected
    assert leaf_types("no.such") == []
