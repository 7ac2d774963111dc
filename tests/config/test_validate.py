"""Cross-field rules and ranges, on the schema dataclasses themselves (no Hydra)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed.worker_memory import parse_memory_limit

from hpcseg.config.schemas import (
    Config,
    ContainerConfig,
    ImagesModeConfig,
    LocalClusterConfig,
    PBSClusterConfig,
    SlurmClusterConfig,
    SyntheticDatasetConfig,
    schema_fields,
)
from hpcseg.config.validate import (
    check_folder,
    memory_gib,
    usable_cores,
    validate,
    walltime_minutes,
)
from hpcseg.errors import UserError


def _config() -> Config:
    return Config(
        dataset=SyntheticDatasetConfig(),
        cluster=LocalClusterConfig(),
        container=ContainerConfig(),
        mode=ImagesModeConfig(),
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


# ------------------------------------------------------- formats, bounds, empty strings (no Hydra)
def _slurm() -> Config:
    return Config(
        dataset=SyntheticDatasetConfig(),
        cluster=SlurmClusterConfig(),
        container=ContainerConfig(),
        mode=ImagesModeConfig(),
    )


@pytest.mark.parametrize(
    ("make", "path", "value", "message"),
    [
        (_config, "output.compression", "banana", r"output\.compression=banana is not a Parquet"),
        (_config, "output.compression", "lzo", "lzo is not a Parquet codec"),
        (_config, "cluster.memory_limit", "banana", r"cluster\.memory_limit=banana is not a"),
        (_config, "cluster.memory_limit", "-1GiB", r"memory_limit=-1GiB .* 0 for no limit"),
        (_config, "cluster.memory_limit", "0GiB", "memory_limit=0GiB"),
        (_config, "cluster.memory_limit", "-0.5", "memory_limit=-0.5"),
        (_slurm, "cluster.memory", "banana", r"cluster\.memory=banana is not a memory size"),
        (_slurm, "cluster.memory", "0", r"cluster\.memory=0 is not a memory size"),
        (_slurm, "cluster.walltime", "banana", r"walltime=banana .* \[\[D-\]HH:\]MM:SS"),
        (_slurm, "cluster.walltime", "1:60:00", "walltime=1:60:00"),
        (_slurm, "cluster.walltime", "60", "walltime=60"),
        (_slurm, "cluster.worker_lifetime", "soon", r"worker_lifetime=soon is not a duration"),
        (_slurm, "cluster.worker_lifetime", "0s", r"worker_lifetime=0s .*more than 0"),
        (_slurm, "cluster.lifetime_stagger", "later", "lifetime_stagger=later"),
        (_config, "output.dir", "", r"output\.dir is empty: give it a value \("),
        (_config, "output.dir", "  ", r"output\.dir is empty"),
        (_config, "pipeline.name", "", r"pipeline\.name is empty"),
        (
            _config,
            "dataset.cache_dir",
            "",
            r"dataset\.cache_dir is empty: .* dataset\.cache_dir=null",
        ),
        (_slurm, "cluster.queue", "", r"cluster\.queue is empty: .* or cluster\.queue=null"),
    ],
)
def test_formats_and_empty_strings_are_config_errors(make, path, value, message):
    cfg = make()
    *parents, name = path.split(".")
    node = cfg
    for part in parents:
        node = getattr(node, part)
    setattr(node, name, value)
    with pytest.raises(UserError, match=message):
        validate(cfg)


@pytest.mark.parametrize("codec", ["none", "NONE", "snappy", "gzip", "brotli", "lz4", "zstd"])
def test_every_parquet_codec_pyarrow_writes_is_accepted(codec, tmp_path):
    cfg = _config()
    cfg.output.compression = codec
    validate(cfg)
    pq.write_table(pa.table({"a": [1]}), tmp_path / "t.parquet", compression=codec)


@pytest.mark.parametrize("value", ["auto", "0", "0.5", "1", "4GiB", "500MB", "2 GB", "4000000000"])
def test_memory_limits_distributed_accepts_are_accepted(value):
    cfg = _config()
    cfg.cluster.memory_limit = value
    validate(cfg)
    assert parse_memory_limit(value, 1, 1, logger=logging.getLogger("test")) != -1


@pytest.mark.parametrize("walltime", ["01:00:00", "100:00:00", "2-00:00:00", "30:00", "90:00"])
def test_slurm_walltimes(walltime):
    cfg = _slurm()
    cfg.cluster.walltime = walltime
    validate(cfg)


def test_pbs_walltime_has_no_days():
    cfg = Config(
        dataset=SyntheticDatasetConfig(),
        cluster=PBSClusterConfig(),
        container=ContainerConfig(),
        mode=ImagesModeConfig(),
    )
    cfg.cluster.walltime = "48:00:00"
    validate(cfg)
    cfg.cluster.walltime = "2-00:00:00"
    with pytest.raises(UserError, match="use HH:MM:SS"):
        validate(cfg)


def test_adapt_needs_min_jobs_at_most_max_jobs():
    cfg = _slurm()
    cfg.cluster.min_jobs, cfg.cluster.max_jobs = 5, 2
    validate(cfg)  # not adaptive: the bounds are not used
    cfg.cluster.adapt = True
    with pytest.raises(UserError, match=r"cluster\.min_jobs=5 is more than cluster\.max_jobs=2"):
        validate(cfg)


def test_local_workers_are_bounded_by_the_usable_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert usable_cores() == 3
    cfg = _config()
    cfg.cluster.n_workers = 12
    validate(cfg)
    cfg.cluster.n_workers = 13
    with pytest.raises(UserError, match=r"n_workers=13 is more than 4 x the 3 CPU .* at most 12"):
        validate(cfg)


# ----------------------------------------------------------------------------- check_folder
def test_check_folder_accepts_new_and_existing_folders(tmp_path):
    check_folder("output.dir", tmp_path)
    check_folder("output.dir", tmp_path / "new" / "deeper")
    assert list(tmp_path.iterdir()) == []  # it only looks


def test_check_folder_refuses_files_and_paths_under_files(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match=r"output\.dir=.*/f is a file, not a folder"):
        check_folder("output.dir", tmp_path / "f")
    with pytest.raises(UserError, match=r"cannot be created: .*/f is a file, not a folder"):
        check_folder("output.dir", tmp_path / "f" / "out")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(UserError, match="is a link to nothing"):
        check_folder("output.dir", tmp_path / "dangling")


def test_check_folder_refuses_a_parent_it_may_not_write(tmp_path, monkeypatch):
    # tests may run as root, for whom every folder is writable: the permission check itself
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
    with pytest.raises(UserError, match=r"output\.dir=.*/out/x cannot be created: .* not writable"):
        check_folder("output.dir", tmp_path / "out" / "x")
    with pytest.raises(UserError, match=r"cannot be written: .* not writable"):
        check_folder("output.dir", tmp_path)


# ------------------------------------------------------------------------------------ sweep
@pytest.mark.parametrize(
    ("walltime", "minutes"),
    [("00:00:01", 1), ("00:30:00", 30), ("01:00:30", 61), ("1-00:00:00", 1440), ("45:00", 45)],
)
def test_walltimes_in_whole_minutes_rounded_up(walltime, minutes):
    assert walltime_minutes(walltime) == minutes


@pytest.mark.parametrize(("memory", "gib"), [("4GiB", 4), ("3.5GiB", 4), ("500MB", 1), ("4GB", 4)])
def test_memory_in_whole_gib_rounded_up(memory, gib):
    assert memory_gib(memory) == gib


def test_sweep_resources_are_checked(make_config):
    with pytest.raises(UserError, match=r"^sweep.memory=lots is not a memory size"):
        make_config("sweep.memory=lots")
    with pytest.raises(UserError, match=r"^sweep.walltime=90 is not a wall time"):
        make_config("sweep.walltime=90")
    with pytest.raises(UserError, match=r"^sweep.cores=0 is out of range"):
        make_config("sweep.cores=0")


def test_a_slurm_allocation_bounds_the_usable_cores(monkeypatch):
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    mine = usable_cores()
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert usable_cores() == 1
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4096")  # never more than this process may use
    assert usable_cores() == mine
