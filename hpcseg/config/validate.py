"""Checks of a composed config that its types alone cannot express: ranges, formats (codecs,
memory sizes, wall times), cross-field rules, and (:func:`check_folder`) whether a folder the
run will create can be created.

:func:`validate` is pure functions on the schema dataclasses (no Hydra, no files), run once
before anything starts; each failure is a :class:`hpcseg.errors.UserError` naming the key and
the fix.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
import re
import typing
from pathlib import Path
from typing import Any

import pyarrow as pa
from dask.utils import parse_bytes, parse_timedelta

from hpcseg.config.keys import allows_none
from hpcseg.config.schemas import (
    Config,
    GpuJobQueueClusterConfig,
    JobQueueClusterConfig,
    LocalClusterConfig,
    LocalGpuClusterConfig,
    PBSClusterConfig,
)
from hpcseg.errors import UserError
from hpcseg.pipeline import diameter, gpu

# the codecs pyarrow.parquet.write_table accepts (case-insensitive), 'none' = uncompressed
PARQUET_CODECS = ("none", "snappy", "gzip", "brotli", "lz4", "lz4_raw", "zstd")
# local worker processes per core this process may use, at most
WORKERS_PER_CORE = 4
# SLURM's and PBS's [[D-]HH:]MM:SS (PBS: no days)
WALLTIME = re.compile(
    r"(?:(?:(?P<days>\d+)-)?(?P<hours>\d+):)?(?P<minutes>\d+):(?P<seconds>[0-5]\d)"
)


def validate(cfg: Config) -> Config:
    """Raise UserError for the first rule ``cfg`` breaks; return it unchanged otherwise."""
    check_strings(cfg, "")
    check_ranges(cfg, "")
    _check_geometry(cfg)
    _check_pipeline(cfg)
    _check_mode(cfg)
    _check_output(cfg)
    _check_cluster(cfg)
    _check_sweep(cfg)
    return cfg


def check_strings(obj: Any, prefix: str) -> None:
    """No string field is empty: ``key=`` on the command line gives '' (a path '' would be
    the current folder), which is never what is meant."""
    if not dataclasses.is_dataclass(obj):
        return
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            check_strings(value, f"{key}.")
        elif isinstance(value, str) and not isinstance(value, enum.Enum) and not value.strip():
            doc = f.metadata.get("doc", "")
            none = f", or {key}=null for none" if allows_none(hints[f.name]) else ""
            raise UserError(f"{key} is empty: give it a value{none} ({doc})")


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
    try:
        diameter.parse(p.diameter, cfg.dataset.pixel_size)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if p.refine.window is not None and p.refine.window % 2 == 0:
        raise UserError(f"pipeline.refine.window={p.refine.window} must be odd (or null)")
    th = p.threshold
    if th.block_size is not None and th.block_size % 2 == 0:
        raise UserError(
            f"pipeline.threshold.block_size={th.block_size} must be odd (or null for the frame)"
        )
    if str(p.refine.method) == "objects" and str(p.split.method) == "none":
        raise UserError(
            "pipeline.refine.method=objects refines the objects of a first split, but "
            "pipeline.split.method=none: use pipeline.refine.method=components (or none), or "
            "pipeline.split.method=watershed"
        )
    local = cfg.cluster.name in ("local", "local_gpu") and cfg.container.name == "none"
    if str(p.backend) == "cupy" and local:
        gpu.backend()  # the workers run here, in this Python: CuPy and a GPU must be here


# what the tiled mode cannot do yet, and why
NOT_TILED = {
    ("threshold", "method", "li"): "Li's threshold iterates over the whole image",
    ("split", "landscape", "intensity"): "only the distance landscape is tiled",
    ("split", "landscape", "distance_intensity"): "only the distance landscape is tiled",
}


def _check_mode(cfg: Config) -> None:
    """mode=tiled/auto: the pipeline settings it supports; dataset=zarr needs it."""
    mode = cfg.mode.name
    if mode == "images":
        if cfg.dataset.name == "zarr":
            raise UserError("dataset=zarr is read chunk by chunk: add mode=tiled (or mode=auto)")
        return
    p = cfg.pipeline
    if str(p.backend) == "cupy":
        raise UserError(
            f"pipeline.backend=cupy is not available with mode={mode} (the tiled passes run on "
            "NumPy); use mode=images, or pipeline.backend=auto (GPUs for the whole images)"
        )
    for (stage, key, value), why in NOT_TILED.items():
        if str(getattr(getattr(p, stage), key)) == value:
            raise UserError(
                f"pipeline.{stage}.{key}={value} is not available with mode={mode} ({why}); "
                "use mode=images or another setting"
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


def _check_output(cfg: Config) -> None:
    codec = cfg.output.compression
    name = codec.lower()
    if name not in PARQUET_CODECS:
        raise UserError(
            f"output.compression={codec} is not a Parquet codec: use one of "
            f"{', '.join(PARQUET_CODECS)}"
        )
    if name != "none" and not _codec_available(name):
        raise UserError(
            f"output.compression={codec} is not available in this pyarrow build: use one of "
            f"{', '.join(c for c in PARQUET_CODECS if c == 'none' or _codec_available(c))}"
        )


def _codec_available(name: str) -> bool:
    try:
        return bool(pa.Codec.is_available(name))
    except ValueError:
        return False


def usable_cores() -> int:
    """The CPU cores this process may run on: its affinity mask, and in a SLURM allocation
    no more than its SLURM_CPUS_PER_TASK (SLURM does not always bind tasks to cores)."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        cores = max(1, os.cpu_count() or 1)
    allocated = os.environ.get("SLURM_CPUS_PER_TASK", "")
    return min(cores, int(allocated)) if allocated.isdigit() and int(allocated) > 0 else cores


def _check_cluster(cfg: Config) -> None:
    c = cfg.cluster
    if isinstance(c, LocalClusterConfig):
        _check_memory_limit(c.memory_limit)
        cores = usable_cores()
        bound = WORKERS_PER_CORE * cores
        if c.n_workers is not None and c.n_workers > bound:
            raise UserError(
                f"cluster.n_workers={c.n_workers} is more than {WORKERS_PER_CORE} x the {cores} "
                f"CPU core(s) this process may use: at most {bound} local workers; "
                "cluster.n_workers=null starts one per core"
            )
    if isinstance(c, LocalGpuClusterConfig):
        _check_memory_limit(c.memory_limit)
        if c.devices is not None and not any(str(d).strip() for d in c.devices):
            raise UserError(
                "cluster.devices=[] selects no GPU: list them, e.g. cluster.devices=[0,1], or "
                "cluster.devices=null for every GPU"
            )
    if isinstance(c, GpuJobQueueClusterConfig):
        _check_gpu_jobs(c)
    if isinstance(c, JobQueueClusterConfig):
        _check_job_memory(c.memory)
        _check_walltime(c.walltime, days=not isinstance(c, PBSClusterConfig))
        if c.worker_lifetime is not None:
            _check_duration("cluster.worker_lifetime", c.worker_lifetime, positive=True)
        _check_duration("cluster.lifetime_stagger", c.lifetime_stagger, positive=False)
        if c.adapt and c.min_jobs > c.max_jobs:
            raise UserError(
                f"cluster.min_jobs={c.min_jobs} is more than cluster.max_jobs={c.max_jobs}: "
                "adapt scales between them"
            )


def _check_gpu_jobs(c: GpuJobQueueClusterConfig) -> None:
    """What dask-cuda's worker command cannot do: retire (no --lifetime), or run other than one
    worker per GPU."""
    if c.worker_lifetime is not None:
        raise UserError(
            f"cluster.worker_lifetime={c.worker_lifetime} is not available with "
            f"cluster={c.name}: dask-cuda's worker has no --lifetime; leave it null (a job "
            "ends at cluster.walltime)"
        )
    if c.processes != 1:
        raise UserError(
            f"cluster.processes={c.processes} does not apply to cluster={c.name}: dask-cuda "
            "starts one worker per GPU; set cluster.gpus instead"
        )
    if c.cores < c.gpus:
        raise UserError(
            f"cluster.cores={c.cores} is fewer than cluster.gpus={c.gpus}: each GPU's worker "
            "needs a core of the job"
        )


def _check_memory_limit(value: str) -> None:
    """``distributed``'s memory_limit: 'auto'; a number: 0 = no limit, up to 1 a fraction of
    this machine's memory, above 1 bytes; or a size such as '4GiB' (parse_bytes, > 0)."""
    text = value.strip()
    if text == "auto":
        return
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        if math.isfinite(number) and number >= 0:
            return
    elif _bytes(text) > 0:
        return
    raise UserError(
        f"cluster.memory_limit={value} is not a memory limit: use auto (a share of this "
        "machine's memory), a size per worker such as 4GiB or 500MB, a fraction of the "
        "machine's memory such as 0.5, or 0 for no limit"
    )


def _check_job_memory(value: str) -> None:
    if _bytes(value.strip()) <= 0:
        raise UserError(
            f"cluster.memory={value} is not a memory size: use the memory per job, "
            "e.g. cluster.memory=4GiB or 500MB"
        )


def _bytes(text: str) -> int:
    """``dask.utils.parse_bytes(text)``; -1 when it is not a size."""
    try:
        return int(parse_bytes(text))
    except (ValueError, TypeError):
        return -1


def _check_walltime(value: str, days: bool, key: str = "cluster.walltime") -> None:
    m = WALLTIME.fullmatch(value.strip())
    ok = m is not None and (days or m["days"] is None)
    if ok and m["hours"] is not None:  # HH:MM:SS: the minutes are 00-59
        ok = re.fullmatch(r"[0-5]\d", m["minutes"]) is not None
    if not ok:
        form = "[[D-]HH:]MM:SS, e.g. 01:30:00 or 2-00:00:00" if days else "HH:MM:SS, e.g. 01:30:00"
        raise UserError(f"{key}={value} is not a wall time: use {form}")


def walltime_minutes(value: str) -> int:
    """A checked wall time ([[D-]HH:]MM:SS) in whole minutes, rounded up (submitit's unit)."""
    m = WALLTIME.fullmatch(value.strip())
    if m is None:
        raise UserError(f"{value} is not a wall time: use [[D-]HH:]MM:SS, e.g. 01:30:00")
    days, hours = int(m["days"] or 0), int(m["hours"] or 0)
    seconds = ((days * 24 + hours) * 60 + int(m["minutes"])) * 60 + int(m["seconds"])
    return max(1, math.ceil(seconds / 60))


def memory_gib(value: str) -> int:
    """A memory size ('4GiB', '500MB') in whole GiB, rounded up (submitit's mem_gb: SLURM's G
    is 1024 M)."""
    n = _bytes(value.strip())
    if n <= 0:
        raise UserError(f"{value} is not a memory size: use e.g. 4GiB or 500MB")
    return max(1, math.ceil(n / 2**30))


def _check_sweep(cfg: Config) -> None:
    s = cfg.sweep
    if _bytes(s.memory.strip()) <= 0:
        raise UserError(
            f"sweep.memory={s.memory} is not a memory size: use the memory per point job, "
            "e.g. sweep.memory=4GiB or 500MB"
        )
    _check_walltime(s.walltime, days=True, key="sweep.walltime")


def _check_duration(key: str, value: str, positive: bool) -> None:
    try:
        seconds = parse_timedelta(value.strip())
    except (KeyError, ValueError, TypeError):
        seconds = None
    if seconds is None or seconds < 0 or (positive and seconds == 0):
        raise UserError(
            f"{key}={value} is not a duration: use e.g. 55m, 2h or 3600s"
            + (" (more than 0)" if positive else "")
        )


def check_folder(key: str, path: str | os.PathLike) -> None:
    """Refuse (UserError) a folder the run would create or write that cannot be: ``path`` is
    a file (or under one), or the nearest folder that exists is not writable by this process
    (or on a read-only file system). Reads only; relative paths are from the current folder."""
    target = Path(path).absolute()
    try:
        if target.is_symlink() and not target.exists():
            raise UserError(f"{key}={path} is a link to nothing: remove it or choose another {key}")
        if target.exists() and not target.is_dir():
            raise UserError(f"{key}={path} is a file, not a folder: choose another {key}")
        existing = target
        while not existing.exists():
            existing = existing.parent
    except OSError as exc:
        raise UserError(f"{key}={path} cannot be checked ({exc.strerror})") from None
    if not existing.is_dir():
        raise UserError(f"{key}={path} cannot be created: {existing} is a file, not a folder")
    if not _writable(existing):
        verb = "written" if existing == target else "created"
        raise UserError(
            f"{key}={path} cannot be {verb}: {existing} is not writable here (read-only, or "
            "not yours); use a folder you may write"
        )


def _writable(folder: Path) -> bool:
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return not read_only and os.access(folder, os.W_OK | os.X_OK)
