"""One sweep point's end, whatever it is, recorded in its folder; the sweep's exit code and
summary from those records."""

from __future__ import annotations

import pytest

from hpcseg.config.compose import load_config
from hpcseg.config.sweep_points import CurrentPoint
from hpcseg.errors import UserError
from hpcseg.results.points import read_point
from hpcseg.run.job import JobResult
from hpcseg.run.signals import IOFailure
from hpcseg.run.sweep import NO_SCORE, SweepStopped, run_point, sweep_outcome


def _point(tmp_path, num=0, in_process=True) -> CurrentPoint:
    folder = tmp_path / str(num)
    folder.mkdir(parents=True, exist_ok=True)
    return CurrentPoint(num, [f"pipeline.smooth.sigma={num}"], str(folder), in_process)


def _cfg():
    return load_config(["sweep.objective=f1_70"])


def test_a_finished_point_records_and_returns_its_objective(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "41")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    monkeypatch.setenv("SLURM_JOB_ID", "44")
    said = []
    value = run_point(_point(tmp_path), _cfg, lambda cfg: JobResult(0, {}, 0.75), said.append)
    assert value == 0.75 and said == []
    record = read_point(tmp_path / "0")
    assert (record.status, record.exit_code, record.objective) == ("ok", 0, 0.75)
    assert (record.objective_name, record.job_id, record.slurm_job_id) == ("f1_70", "41_3", "44")
    assert record.overrides == ["pipeline.smooth.sigma=0"] and record.error is None
    assert record.output_dir == str((tmp_path / "0").absolute()) and record.wall_seconds >= 0


def test_a_refused_or_crashing_point_is_recorded_and_scores_nothing(tmp_path):
    def refuse():
        raise UserError("pipeline.smooth.sigma=-1.0 is out of range")

    said = []
    assert run_point(_point(tmp_path, 1), refuse, None, said.append) == NO_SCORE == 0.0
    record = read_point(tmp_path / "1")
    assert (record.status, record.exit_code) == ("error", 2)
    assert record.error == "pipeline.smooth.sigma=-1.0 is out of range"
    assert said == ["multirun point #1: pipeline.smooth.sigma=-1.0 is out of range"]

    def crash(cfg):
        raise ZeroDivisionError("division by zero")

    assert run_point(_point(tmp_path, 2), _cfg, crash, said.append) == NO_SCORE
    record = read_point(tmp_path / "2")
    assert (record.status, record.exit_code) == ("crashed", -1)
    assert record.error == "ZeroDivisionError: division by zero"

    def disk_full(cfg):
        raise IOFailure("cannot write x: No space left on device")

    run_point(_point(tmp_path, 3), _cfg, disk_full, said.append)
    record = read_point(tmp_path / "3")
    assert (record.status, record.exit_code) == ("failed", 1)
    assert record.error.startswith("cannot write x: No space left on device; free space")


def test_a_point_with_failed_images_has_no_objective(tmp_path):
    result = JobResult(1, {"images_failed": 2}, 0.9)
    assert run_point(_point(tmp_path), _cfg, lambda cfg: result, print) == NO_SCORE
    record = read_point(tmp_path / "0")
    assert (record.status, record.objective) == ("failed", None)
    assert record.error.startswith("2 image(s) failed")


def test_a_signal_ends_an_in_process_sweep_but_not_a_job_of_its_own(tmp_path):
    stopped = JobResult(130, {}, None)
    with pytest.raises(SweepStopped) as info:
        run_point(_point(tmp_path, 0), _cfg, lambda cfg: stopped, print)
    assert info.value.exit_code == 130 and read_point(tmp_path / "0").status == "stopped"
    assert run_point(_point(tmp_path, 1, False), _cfg, lambda cfg: stopped, print) == NO_SCORE


def test_the_sweep_exit_code_comes_from_the_point_records(tmp_path):
    for num in (0, 1):
        run_point(_point(tmp_path, num), _cfg, lambda cfg: JobResult(0, {}, 0.5), print)
    assert sweep_outcome(tmp_path, 2) == (0, [f"hpcseg: sweep of 2 point(s) in {tmp_path}: 2 ok"])
    code, lines = sweep_outcome(tmp_path, 4)  # two points never started
    assert code == 1 and lines[0].endswith("2 ok, 2 pending")
    (tmp_path / "2" / ".hydra").mkdir(parents=True)  # started, no record: running or killed
    run_point(_point(tmp_path, 3), _cfg, lambda cfg: JobResult(1, {"images_failed": 1}), print)
    code, lines = sweep_outcome(tmp_path, 4)
    assert code == 1
    assert lines == [
        f"hpcseg: sweep of 4 point(s) in {tmp_path}: 2 ok, 1 failed, 1 unfinished",
        "  #2 unfinished: did not finish: still running, or killed (see its cli.log)",
        "  #3 failed: 1 image(s) failed (see the `error` column of its images rows)",
    ]
    # a folder of an earlier, larger sweep in the same place is not this sweep's
    run_point(_point(tmp_path, 7), _cfg, lambda cfg: JobResult(2), print)
    assert sweep_outcome(tmp_path, 4)[1][0].startswith(f"hpcseg: sweep of 4 point(s) in {tmp_path}")


def test_a_point_killed_after_it_started_is_not_taken_for_its_last_record(tmp_path):
    """A resumed point writes `unfinished` as it starts: if it is killed (SIGKILL, walltime),
    the last run's `ok` does not stand in for it."""
    run_point(_point(tmp_path), _cfg, lambda cfg: JobResult(0, {}, 0.5), print)

    def killed(cfg):
        assert read_point(tmp_path / "0").status == "unfinished"  # what a kill would leave
        raise SystemExit(137)

    with pytest.raises(SystemExit):
        run_point(_point(tmp_path), _cfg, killed, print)
    record = read_point(tmp_path / "0")
    assert (record.status, record.exit_code, record.objective) == ("unfinished", None, None)
    assert sweep_outcome(tmp_path, 1)[0] == 1
