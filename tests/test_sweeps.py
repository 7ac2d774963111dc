"""``hpcseg -m`` end to end with Hydra's basic launcher and with Optuna: one folder per point,
exit codes with a failing point, one shared cluster, the sweep table, the study's values."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import run_cli

from hpcseg.results.points import read_point

pytestmark = pytest.mark.slow
TINY = ("dataset.n_images=2", "dataset.height=128", "dataset.width=128", "cluster.n_workers=1")


def _run_json(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


def test_a_grid_runs_every_point_into_its_own_folder_and_exits_1_on_a_failure(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m", "pipeline.smooth.sigma=1,-1", "pipeline.threshold.method=otsu,li", *TINY,
        f"output.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "multirun point #2 (pipeline.smooth.sigma=-1 pipeline.threshold.method=otsu)" in (
        proc.stderr
    )
    records = {n: read_point(sweep / str(n)) for n in range(4)}
    assert [records[n].status for n in range(4)] == ["ok", "ok", "error", "error"]
    planned = json.loads((sweep / "sweep.json").read_text())["points"]
    assert [records[n].overrides for n in range(4)] == planned  # the points run = those planned
    assert planned[2] == ["pipeline.smooth.sigma=-1", "pipeline.threshold.method=otsu", *TINY]
    scores = {}
    for n in (0, 1):
        run = _run_json(sweep / str(n))
        assert run["config"]["output"]["dir"] == str(sweep / str(n))  # output.dir = its folder
        assert (sweep / str(n) / ".hydra" / "config.yaml").is_file()
        assert pq.read_table(sweep / str(n) / "objects").num_rows == run["summary"]["objects"]
        scores[n] = run["summary"]["accuracy"]["f1_avg"]
        assert records[n].objective == scores[n]
    assert [_run_json(sweep / str(n))["config"]["pipeline"]["threshold"]["method"]
            for n in (0, 1)] == ["otsu", "li"]  # fmt: skip
    assert (
        proc.stdout.count("reusing the sweep's Dask cluster")
        + proc.stderr.count("reusing the sweep's Dask cluster")
        == 1
    )  # point 1 reused point 0's cluster
    # the table the driver wrote at the end
    table = pq.read_table(sweep / "sweep.parquet")
    assert table.column_names[:4] == [
        "point", "pipeline.smooth.sigma", "pipeline.threshold.method", "status"
    ]  # fmt: skip
    rows = table.to_pylist()
    assert [r["pipeline.smooth.sigma"] for r in rows] == [1.0, 1.0, -1.0, -1.0]
    assert [r["f1_avg"] for r in rows[:2]] == [scores[0], scores[1]]
    assert rows[2]["error"].startswith("pipeline.smooth.sigma=-1.0 is out of range")
    best = max(scores, key=scores.get)
    assert f"#{best}  objective={scores[best]:.4f}" in proc.stdout
    assert (sweep / "sweep.csv").read_text().count("\n") == 5
    assert (sweep / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    # `hpcseg collect` again, by another metric
    again = run_cli("collect", str(sweep), "--metric", "f1_50", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    by_f1_50 = max((0, 1), key=lambda n: _run_json(sweep / str(n))["summary"]["accuracy"]["f1_50"])
    assert again.stdout.splitlines()[1].startswith(f"#{by_f1_50}  f1_50=")
    # the same command again resumes: the done points are done, the sweep still exits 1
    rerun = run_cli(
        "-m", "pipeline.smooth.sigma=1,-1", "pipeline.threshold.method=otsu,li", *TINY,
        f"output.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert rerun.returncode == 1 and rerun.stdout.count("(0 processed now, 2 already done)") == 2


def test_an_experiment_preset_runs_as_written(tmp_path):
    proc = run_cli(
        "experiment=threshold_declump", "dataset.n_images=1", "dataset.height=128",
        "dataset.width=128", "cluster.n_workers=1", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (sweep,) = (tmp_path / "hpcseg-output" / "experiments" / "threshold_declump").iterdir()
    rows = pq.read_table(sweep / "sweep.parquet").to_pylist()
    assert [r["status"] for r in rows] == ["ok"] * 6
    assert {(r["pipeline.threshold.method"], r["pipeline.split.method"]) for r in rows} == {
        (t, s) for t in ("otsu", "log_otsu", "li") for s in ("none", "watershed")
    }


def test_an_optuna_study_maximises_the_points_scores_and_survives_a_failed_trial(tmp_path):
    """Trials whose sigma is -1 fail their checks: recorded, scored 0 for Optuna, the study goes
    on, and the sweep exits 1; the study's best value is the best point's run.json score."""
    sweep, storage = tmp_path / "study", f"sqlite:///{tmp_path}/study.db"
    proc = run_cli(
        "hparams_search=nuclei_optuna", "hydra.sweeper.n_trials=4",
        "pipeline.smooth.sigma=choice(-1.0,1.0)", f"hydra.sweeper.storage={storage}", *TINY,
        f"output.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    points = {n: read_point(sweep / str(n)) for n in range(4)}
    failed = [n for n, p in points.items() if p.status == "error"]
    assert failed and len(failed) < 4, [p.status for p in points.values()]
    scores = {}
    for n, point in points.items():
        if n in failed:
            assert point.error.startswith("pipeline.smooth.sigma=-1.0 is out of range")
            assert not (sweep / str(n) / "run.json").exists()
            continue
        scores[n] = _run_json(sweep / str(n))["summary"]["accuracy"]["f1_avg"]
        assert point.objective == scores[n]
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_value"] == max(scores.values())  # Optuna saw the scores
    best = max(scores, key=scores.get)
    overrides = read_point(sweep / str(best)).overrides
    key = "pipeline.split.min_distance="
    (split,) = [int(o.removeprefix(key)) for o in overrides if o.startswith(key)]
    assert results["best_params"]["pipeline.split.min_distance"] == split
    assert len(pq.read_table(sweep / "sweep.parquet")) == 4
    # the study is in its storage too (a later study may load it)
    import optuna

    study = optuna.load_study(study_name="nuclei", storage=storage)
    assert sorted(t.value for t in study.trials) == sorted([*scores.values(), *[0.0] * len(failed)])


def test_an_optuna_study_without_ground_truth_is_refused(tmp_path):
    import numpy as np
    import tifffile

    tifffile.imwrite(tmp_path / "a.tif", np.zeros((64, 64), np.uint16))
    proc = run_cli(
        "hparams_search=nuclei_optuna", "dataset=tiff_glob", f"dataset.path={tmp_path}/*.tif",
        f"output.dir={tmp_path}/study", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("hpcseg: error: an optimising sweeper maximises")
    assert len(proc.stderr.splitlines()) == 1 and not (tmp_path / "study").exists()


def test_a_point_whose_folder_another_process_writes_fails_alone(tmp_path):
    """A real second process holds point 0's folder lock: that point is refused (nothing of
    the other run is touched), point 1 runs, the sweep exits 1."""
    import subprocess
    import sys

    sweep = tmp_path / "sweep"
    hold = (
        "import time\nfrom hpcseg.results.lock import output_lock\n"
        f"with output_lock({str(sweep / '0')!r}):\n"
        "    print('held', flush=True)\n    time.sleep(600)"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = run_cli("-m", "pipeline.smooth.sigma=1,2", *TINY, f"output.dir={sweep}",
                       cwd=tmp_path)  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    refused, done = read_point(sweep / "0"), read_point(sweep / "1")
    assert (refused.status, done.status) == ("error", "ok")
    assert "is being written by another hpcseg run" in refused.error, refused.error
    assert not (sweep / "0" / "objects").exists()


def test_ctrl_c_ends_the_sweep_and_the_same_command_resumes_it(tmp_path):
    """SIGINT to the sweep's process group while point 0 runs: it stops gracefully (130), the
    next points do not start; the same command then finishes every point (nothing redone)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    sweep = tmp_path / "sweep"
    args = [sys.executable, "-m", "hpcseg", "-m", "pipeline.smooth.sigma=1,2",
            "dataset.n_images=20", "dataset.height=260", "dataset.width=348",
            "cluster.n_workers=1", "runner.batch_size=2", f"output.dir={sweep}"]  # fmt: skip
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not list((sweep / "0").glob("images/part-*.parquet")):  # point 0 is under way
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert read_point(sweep / "0").status == "stopped"
    assert not (sweep / "1").exists()
    assert f"run the same command with hydra.sweep.dir={sweep} to resume it" in err
    again = run_cli(*args[3:], cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert [read_point(sweep / str(n)).status for n in range(2)] == ["ok", "ok"]
    first = _run_json(sweep / "0")["this_run"]
    assert first["skipped_already_done"] > 0 and first["processed"] < 20  # resumed, not redone
    assert pq.read_table(sweep / "0" / "images").num_rows == 20


def test_a_dry_run_of_a_sweep_says_what_each_point_would_do_and_writes_nothing(tmp_path):
    sweep = tmp_path / "sweep"
    dry = run_cli("-m", "--dry-run", "pipeline.smooth.sigma=1,-1", *TINY, f"output.dir={sweep}",
                  cwd=tmp_path)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "multirun point #0 (pipeline.smooth.sigma=1):" in dry.stdout
    assert "2 image(s) would run" in dry.stdout and "would fail: multirun point #1" in dry.stdout
    assert list(tmp_path.iterdir()) == []


def test_hydras_own_entry_point_runs_one_job_into_output_dir(tmp_path):
    """`-cp/-cn` go through Hydra's main: a single run still writes output.dir."""
    out = tmp_path / "out"
    proc = run_cli("-cp", "pkg://hpcseg.conf", "-cn", "config", *TINY, f"output.dir={out}",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _run_json(out)["config"]["output"]["dir"] == str(out)
