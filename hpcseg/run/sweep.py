"""One point of a sweep, and how a sweep ends: its exit code and its summary lines.

A point is an ordinary hpcseg job whose output folder is its own folder under the sweep
folder. Whatever happens to it (done, images failed, a configuration its validation refuses,
a crash) is written to its ``point.json`` and the sweep goes on; what it returns to the sweeper
is its objective, or :data:`NO_SCORE` (0.0, the worst F1) when it has none, so an optimising
sweeper learns to avoid it and goes on (Optuna ends a study on a NaN). Only a signal (Ctrl-C,
SIGTERM) to a sweep whose points run in this process ends the whole sweep.

No Hydra here: :mod:`hpcseg.config.sweep_points` reads Hydra's state and calls these.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from hpcseg.cluster.core import error_line
from hpcseg.cluster.pool import shared_clusters
from hpcseg.config.schemas import Config
from hpcseg.config.sweep_points import CurrentPoint, SweepPlan, make_sweep_dir
from hpcseg.data import sources
from hpcseg.errors import UserError
from hpcseg.results import points as records
from hpcseg.results.collect import collect
from hpcseg.results.points import PointRecord, SweepRecord
from hpcseg.run.job import JobResult
from hpcseg.run.signals import IOFailure

log = logging.getLogger("hpcseg")

STOP_CODES = (130, 143)
NO_SCORE = 0.0  # what a point without an objective returns: every objective is an F1 in [0, 1]


class SweepStopped(BaseException):
    """A signal stopped a point run in the driver's process: the sweep ends there at once.
    (Hydra's run_job catches an Exception of a task and the launcher starts the next point;
    a BaseException leaves the launcher at once.)"""

    def __init__(self, exit_code: int):
        super().__init__(exit_code)
        self.exit_code = exit_code


def run_point(
    info: CurrentPoint,
    load: Callable[[], Config],
    job: Callable[[Config], JobResult],
    report: Callable[[str], None],
) -> float:
    """Run one point: ``load()`` gives its validated config (with output.dir = its folder),
    ``job`` runs it; ``report`` prints a one-line error. Writes ``point.json`` as it starts
    (``unfinished``: a point killed later is not mistaken for the record of an earlier run) and
    as it ends; returns the objective (:data:`NO_SCORE` without one). Raises
    :class:`SweepStopped` after a signal in-process."""
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    cfg: Config | None = None
    error: str | None = None
    folder = Path(info.folder)
    where = {
        "job_id": _scheduler_job_id(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "output_dir": str(folder.absolute()),
    }
    folder.mkdir(parents=True, exist_ok=True)
    records.write_point(folder, PointRecord(info.num, info.overrides, None, records.UNFINISHED,
                                            started=started.isoformat(), **where))  # fmt: skip
    try:
        cfg = load()
        result = job(cfg)
    except UserError as exc:
        result, error = JobResult(2), str(exc)
    except IOFailure as exc:
        result, error = JobResult(1), str(exc)
    except Exception as exc:  # a bug must not end the sweep: the point is recorded as crashed
        log.error("point #%d crashed:\n%s", info.num, traceback.format_exc())
        result, error = JobResult(-1), f"{type(exc).__name__}: {exc}"
    except KeyboardInterrupt:  # Ctrl-C before the job's own handler was up (while loading)
        result = JobResult(130)
    if error:
        report(f"multirun point #{info.num}: {error}")
    elif result.exit_code == 1:
        error = _failed_images(result)
    objective = result.objective if result.exit_code == 0 else None
    record = PointRecord(
        num=info.num,
        overrides=info.overrides,
        exit_code=result.exit_code,
        status=records.status_of(result.exit_code),
        error=error,
        objective_name=cfg.sweep.objective.value if cfg else None,
        objective=objective,
        started=started.isoformat(),
        finished=datetime.now(UTC).isoformat(),
        wall_seconds=round(time.perf_counter() - t0, 3),
        **where,
    )
    records.write_point(folder, record)
    if info.in_process and result.exit_code in STOP_CODES:
        raise SweepStopped(result.exit_code)
    return NO_SCORE if objective is None or math.isnan(objective) else float(objective)


def _failed_images(result: JobResult) -> str | None:
    summary = result.summary or {}
    n = summary.get("images_failed")
    return f"{n} image(s) failed (see the `error` column of its images rows)" if n else None


def _silent(status: str) -> str:
    """Why a point that is not ok has no error text."""
    if status == "stopped":
        return "stopped by a signal (run the sweep again to resume it)"
    if status == records.UNFINISHED:
        return "did not finish: still running, or killed (see its cli.log)"
    return "see its cli.log"


def _scheduler_job_id() -> str | None:
    """The point's job id as the batch system shows it (SLURM arrays: ``<array>_<task>``)."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID") or os.environ.get("PBS_JOBID")


def require_ground_truth(cfg: Config) -> None:
    """An optimising sweep needs scores: refuse a dataset without ground truth up front."""
    dataset = sources.resolve(cfg.dataset)
    if not any(r.mask_path for r in dataset.records):
        raise UserError(
            f"an optimising sweeper maximises sweep.objective={cfg.sweep.objective.value}, a "
            f"score against ground truth, but dataset '{cfg.dataset.name}' has no masks (e.g. "
            "set dataset.masks for tiff_glob); use the basic sweeper (hpcseg -m key=a,b) instead"
        )


def dry_run_sweep(plan: SweepPlan, dry_run: Callable[[Config], int]) -> int:
    """What each point of a grid would do in its folder, changing nothing."""
    if plan.points is None:
        raise UserError(
            "--dry-run lists a grid's points; an optimising sweeper's trials are only known as "
            "it runs them"
        )
    for num in range(len(plan.points)):
        print(f"hpcseg: {plan.label(num)}:", flush=True)
        if num in plan.invalid:
            print(f"hpcseg:   would fail: {plan.invalid[num]}", flush=True)
        else:
            dry_run(plan.configs[num])
    return 0


def sweep_outcome(sweep_dir: Path, expected: int) -> tuple[int, list[str]]:
    """The sweep's exit code (0 every point ok, 1 otherwise) and a summary line per problem,
    from the point records in ``sweep_dir`` (``expected``: the points this sweep runs, numbered
    from 0; folders of an earlier, larger sweep in the same folder are not counted)."""
    found = {n: f for n, f in records.point_folders(sweep_dir).items() if n < expected}
    counts: dict[str, int] = {}
    problems: list[str] = []
    for num, folder in found.items():
        point = records.read_point(folder)
        status = point.status if point else records.UNFINISHED
        counts[status] = counts.get(status, 0) + 1
        if status != "ok":
            why = point.error if point and point.error else _silent(status)
            problems.append(f"  #{num} {status}: {why}")
    missing = max(0, expected - len(found))
    if missing:
        counts[records.PENDING] = missing
    total = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda kv: (kv[0] != "ok", kv[0]))
    parts = ", ".join(f"{n} {status}" for status, n in ordered)
    lines = [f"hpcseg: sweep of {total} point(s) in {sweep_dir}: {parts}", *problems]
    ok = counts.get("ok", 0) == total and total > 0
    return (0 if ok else 1), lines


def drive(
    plan: SweepPlan, launch: Callable[[], None], report: Callable[[str], None], argv: list[str]
) -> int:
    """Run a checked sweep (``launch()`` runs every point), then summarise it from the points'
    records and write its table; return the exit code (0 every point ok, 1 some failed or the
    launcher failed, 2 the batch system refused every job, 130/143 stopped by a signal)."""
    for why in plan.invalid.values():
        print(f"hpcseg: warning: {why}; this point is recorded as failed, the others run",
              file=sys.stderr, flush=True)  # fmt: skip
    make_sweep_dir(plan)
    records.write_sweep(
        plan.sweep_dir,
        SweepRecord(
            sweeper=plan.sweeper,
            launcher=plan.launcher,
            objective_name=plan.objective,
            swept=plan.swept,
            started=datetime.now(UTC).isoformat(),
            points=plan.points,
            command=["hpcseg", *argv],
        ),
    )
    print(f"hpcseg: sweep of {plan.expected} point(s) into {plan.sweep_dir}", flush=True)
    shared = plan.in_process and plan.reuse_cluster
    code = None
    with shared_clusters() if shared else contextlib.nullcontext():
        try:
            launch()
        except SweepStopped as stop:
            code = stop.exit_code
        except KeyboardInterrupt:  # Ctrl-C between points
            code = 130
        except Exception as exc:  # the sweeper or launcher failed (a point's errors never do)
            code = _launch_failed(plan, exc, report)
    outcome, lines = sweep_outcome(plan.sweep_dir, plan.expected)
    for line in lines:
        print(line, flush=True)
    try:
        for line in collect(plan.sweep_dir).lines():
            print(line, flush=True)
    except UserError as exc:  # nothing to tabulate (no point started)
        report(f"no sweep table: {exc}")
    except Exception as exc:  # the table is a convenience: the exit code still stands
        report(f"could not write the sweep table: {type(exc).__name__}: {exc}")
    if code in STOP_CODES:
        report(
            "the sweep was stopped; run the same command with "
            f"hydra.sweep.dir={plan.sweep_dir} to resume it (finished points are kept)"
        )
        return code
    return max(outcome, code or 0)


def _launch_failed(plan: SweepPlan, exc: Exception, report: Callable[[str], None]) -> int:
    """One line for a sweeper or launcher failure; 2 when the batch system took no job at all
    (submitit's FailedJobError before any job folder exists), else 1."""
    submitted = (plan.sweep_dir / ".submitit").is_dir()
    if type(exc).__name__ == "FailedJobError" and not submitted:
        report(f"the batch system refused the sweep's jobs: {_exception_line(exc)}")
        return 2
    more = "; point jobs may still be running (squeue --me)" if plan.on_slurm else ""
    report(f"the sweep failed: {_exception_line(exc)}{more}")
    return 1


def _exception_line(exc: BaseException) -> str:
    return error_line(str(exc)) or type(exc).__name__
