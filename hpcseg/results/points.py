"""The records of a sweep on disk: one ``point.json`` per point folder, one ``sweep.json`` per
sweep folder.

A sweep folder (Hydra's ``hydra.sweep.dir``) holds one folder per point (``0/``, ``1/``, ...),
each a complete hpcseg output folder (``objects/``, ``images/``, ``run.json``, Hydra's
``.hydra/``) plus ``point.json``: how the point ended, written by the point itself as it ends,
on every launcher (in this process or in a SLURM job). ``sweep.json`` is written by the driver
before the first point starts: the sweeper, the objective and, for a grid, every point's
overrides (so a partial sweep shows what is still pending). Readers are
:mod:`hpcseg.results.collect` and the driver's exit code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

from hpcseg.results.atomic import atomic_path

POINT_RECORD = "point.json"
SWEEP_RECORD = "sweep.json"
HYDRA_FOLDER = ".hydra"

# a point's status from its exit code (the exit codes of `hpcseg`)
STATUS_OF_EXIT = {0: "ok", 1: "failed", 2: "error", 130: "stopped", 143: "stopped"}
CRASHED = "crashed"  # the point raised (a bug): its record holds the exception's line
UNFINISHED = "unfinished"  # started, not ended (running or killed): no record, or its first
PENDING = "pending"  # listed in sweep.json, not started
R = TypeVar("R")


def status_of(exit_code: int) -> str:
    return STATUS_OF_EXIT.get(exit_code, CRASHED)


@dataclass
class PointRecord:
    """How one sweep point ended (``point.json``)."""

    num: int
    overrides: list[str]
    exit_code: int | None  # None while it runs
    status: str
    error: str | None = None
    objective_name: str | None = None
    objective: float | None = None  # None: no ground truth, or the point did not end ok
    started: str | None = None
    finished: str | None = None
    wall_seconds: float | None = None
    job_id: str | None = None  # the scheduler's job id of the point (SLURM: 12_3 in an array)
    slurm_job_id: str | None = None  # SLURM_JOB_ID of the point's own allocation
    output_dir: str | None = None


@dataclass
class SweepRecord:
    """What the driver knew of a sweep before it ran (``sweep.json``)."""

    sweeper: str
    launcher: str
    objective_name: str
    swept: list[str]  # the keys the sweep varies
    started: str
    points: list[list[str]] | None = None  # a grid's points' overrides, by number; None: Optuna
    command: list[str] = field(default_factory=list)


def _write(path: Path, record: PointRecord | SweepRecord) -> Path:
    """A record as JSON at ``path``, atomically (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(asdict(record), indent=2) + "\n")
    return path


def _read(path: Path, kind: type[R]) -> R | None:
    """The record at ``path``; None when there is none (yet) or it cannot be read."""
    try:
        return kind(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def write_point(folder: Path, record: PointRecord) -> Path:
    return _write(Path(folder) / POINT_RECORD, record)


def read_point(folder: Path) -> PointRecord | None:
    return _read(Path(folder) / POINT_RECORD, PointRecord)


def write_sweep(folder: Path, record: SweepRecord) -> Path:
    return _write(Path(folder) / SWEEP_RECORD, record)


def read_sweep(folder: Path) -> SweepRecord | None:
    return _read(Path(folder) / SWEEP_RECORD, SweepRecord)


def point_folders(sweep_dir: Path) -> dict[int, Path]:
    """The started points of a sweep folder by number: its sub-folders named by a number that
    hold Hydra's ``.hydra/`` or a ``point.json``."""
    found: dict[int, Path] = {}
    if not Path(sweep_dir).is_dir():
        return found
    for child in Path(sweep_dir).iterdir():
        if not (child.is_dir() and child.name.isdigit()):
            continue
        if (child / HYDRA_FOLDER).is_dir() or (child / POINT_RECORD).is_file():
            found[int(child.name)] = child
    return dict(sorted(found.items()))
