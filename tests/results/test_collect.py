"""`hpcseg collect`: a sweep folder built by hand becomes one typed table, a ranking and a plot."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from hpcseg.errors import UserError
from hpcseg.results.collect import (
    FIXED_COLUMNS,
    collect,
    main,
    parse_value,
    swept_keys,
    typed_column,
)
from hpcseg.results.points import PointRecord, SweepRecord, write_point, write_sweep

SWEPT = ["pipeline.smooth.sigma", "pipeline.threshold.method", "pipeline"]


def overrides_of(sigma, method, pipeline="nuclei") -> list[str]:
    return [
        f"pipeline={pipeline}",
        f"pipeline.smooth.sigma={sigma}",
        f"pipeline.threshold.method={method}",
        "dataset.n_images=4",
    ]


def accuracy(f1_avg: float) -> dict:
    return {
        "f1_50": f1_avg + 0.1,
        "f1_70": f1_avg,
        "f1_90": f1_avg - 0.2,
        "f1_avg": f1_avg,
        "merges": 3,
        "splits": 1,
        "n_true": 40,
        "n_pred": 41,
        "images_scored": 4,
    }


def make_point(
    sweep: Path,
    num: int,
    overrides: list[str],
    *,
    record: dict | None = None,
    run: dict | None = None,
    hydra: bool = True,
) -> Path:
    """A point folder as a sweep leaves it: .hydra/overrides.yaml, point.json, run.json."""
    folder = sweep / str(num)
    folder.mkdir(parents=True)
    if hydra:
        (folder / ".hydra").mkdir()
        (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if record is not None:
        fields = {"num": num, "overrides": overrides, "output_dir": str(folder), **record}
        write_point(folder, PointRecord(**fields))
    if run is not None:
        (folder / "run.json").write_text(json.dumps(run))
    return folder


def run_json(folder_sigma: float, method: str, acc: dict, ips: float = 2.5, name="nuclei"):
    config = {
        "pipeline": {
            "name": name,
            "smooth": {"sigma": folder_sigma},
            "threshold": {"method": method},
        },
        "dataset": {"name": "synthetic", "n_images": 4},
    }
    summary = {
        "accuracy": acc,
        "images_in_dataset": 4,
        "images_ok": 4,
        "images_failed": 0,
        "objects": 41,
        "wall_seconds": 9.5,
        "compute_seconds": 1.6,
        "images_per_second": ips,
    }
    return {"config": config, "summary": summary}


def ok(objective: float | None, **extra) -> dict:
    return {
        "exit_code": 0,
        "status": "ok",
        "objective_name": "f1_avg",
        "objective": objective,
        "wall_seconds": 12.0,
        "job_id": "77_0",
        "slurm_job_id": "78",
        **extra,
    }


@pytest.fixture
def sweep(tmp_path) -> Path:
    """Six points: three ok (scored), one failed validation, one running, one pending."""
    root = tmp_path / "multirun"
    planned = [
        overrides_of(0.5, "otsu"),
        overrides_of(1, "otsu"),
        overrides_of(2.0, "li"),
        overrides_of(3, "otsu", "blog2021"),
        overrides_of(4.0, "li"),
        overrides_of(5.0, "li"),
    ]
    write_sweep(
        root,
        SweepRecord(
            "basic", "basic", "f1_avg", SWEPT, "2025-01-01T00:00:00", planned, ["hpcseg", "-m"]
        ),
    )
    make_point(root, 0, planned[0], record=ok(0.70), run=run_json(0.5, "otsu", accuracy(0.70), 4.0))
    make_point(root, 1, planned[1], record=ok(0.80), run=run_json(1.0, "otsu", accuracy(0.80), 1.0))
    make_point(root, 2, planned[2], record=ok(0.60), run=run_json(2.0, "li", accuracy(0.60), 3.0))
    failed = {"exit_code": 2, "status": "error", "error": "pipeline.smooth.sigma: 3 is too large"}
    make_point(root, 3, planned[3], record=failed)
    make_point(root, 4, planned[4])  # running or killed: .hydra/ only
    return root


def test_columns_and_their_types(sweep):
    table = collect(sweep).table
    expected = [
        ("point", pa.int64()),
        ("pipeline.smooth.sigma", pa.float64()),
        ("pipeline.threshold.method", pa.string()),
        ("pipeline", pa.string()),
        *FIXED_COLUMNS,
    ]
    assert [(f.name, f.type) for f in table.schema] == expected
    assert table.column_names[-1] == "overrides" and table.column_names[4] == "status"
    assert table.column("point").to_pylist() == [0, 1, 2, 3, 4, 5]
    assert pq.read_table(sweep / "sweep.parquet").schema == table.schema


def test_typed_values_from_run_json_and_from_overrides(sweep):
    rows = collect(sweep).table.to_pylist()
    # run.json's resolved config: sigma "1" in the override is the float 1.0 there
    assert [r["pipeline.smooth.sigma"] for r in rows] == [0.5, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert [r["pipeline.threshold.method"] for r in rows] == [
        "otsu",
        "otsu",
        "li",
        "otsu",
        "li",
        "li",
    ]
    assert [r["pipeline"] for r in rows] == [
        "nuclei",
        "nuclei",
        "nuclei",
        "blog2021",
        "nuclei",
        "nuclei",
    ]
    assert rows[1]["f1_avg"] == pytest.approx(0.80) and rows[1]["f1_50"] == pytest.approx(0.90)
    assert rows[1]["merges"] == 3 and rows[1]["splits"] == 1
    assert (rows[1]["images"], rows[1]["images_ok"], rows[1]["objects"]) == (4, 4, 41)
    assert rows[1]["images_per_second"] == 1.0 and rows[1]["wall_seconds"] == 12.0
    assert (rows[1]["job_id"], rows[1]["slurm_job_id"]) == ("77_0", "78")
    assert rows[1]["overrides"] == " ".join(overrides_of(1, "otsu"))


def test_a_config_group_takes_its_name_from_run_json(tmp_path):
    root = tmp_path / "s"
    make_point(
        root,
        0,
        ["pipeline=blog2021"],
        record=ok(0.5),
        run=run_json(1.0, "local_gaussian", accuracy(0.5), name="blog2021"),
    )
    make_point(
        root,
        1,
        ["pipeline=nuclei"],
        record=ok(0.6),
        run=run_json(1.0, "otsu", accuracy(0.6), name="nuclei-renamed"),
    )
    table = collect(root).table
    assert table.column("pipeline").to_pylist() == ["blog2021", "nuclei-renamed"]


def test_ints_only_stay_int_and_mixed_types_become_text():
    assert typed_column([1, None, 3]).type == pa.int64()
    assert typed_column([1, 2.5]).to_pylist() == [1.0, 2.5]
    assert typed_column([True, False]).type == pa.bool_()
    assert typed_column([None, None]).type == pa.string()
    mixed = typed_column([1, "otsu", True, None, [1, 2]])
    assert mixed.type == pa.string()
    assert mixed.to_pylist() == ["1", "otsu", "true", None, "[1,2]"]


def test_override_values_are_read_as_hydra_reads_them():
    assert parse_value("0.5") == 0.5 and parse_value("3") == 3 and parse_value("1e-3") == 0.001
    assert parse_value("otsu") == "otsu" and parse_value("'3'") == "3"
    assert parse_value("true") is True and parse_value("null") is None
    assert parse_value("on") == "on" and parse_value("2024-01-01") == "2024-01-01"
    assert math.isnan(parse_value("nan")) and parse_value("[1, 2]") == [1, 2]
    assert parse_value(None) is None and parse_value("") == ""


def test_a_failed_point_has_its_error_and_no_scores(sweep):
    row = collect(sweep).table.to_pylist()[3]
    assert row["status"] == "error" and row["exit_code"] == 2
    assert row["error"] == "pipeline.smooth.sigma: 3 is too large"
    assert all(row[k] is None for k in ("objective", "f1_avg", "f1_50", "merges", "images"))
    assert row["pipeline.smooth.sigma"] == 3.0  # from its override (no run.json)
    assert row["output_dir"] == str(sweep / "3")


def test_an_unfinished_and_a_pending_point(sweep):
    rows = collect(sweep).table.to_pylist()
    running, pending = rows[4], rows[5]
    assert running["status"] == "unfinished" and running["exit_code"] is None
    assert running["pipeline.threshold.method"] == "li" and running["output_dir"] == str(
        sweep / "4"
    )
    assert pending["status"] == "pending" and pending["output_dir"] is None
    assert pending["pipeline.smooth.sigma"] == 5.0 and pending["objective"] is None
    assert pending["overrides"] == " ".join(overrides_of(5.0, "li"))


def test_summary_line_counts_every_status(sweep, capsys):
    assert main([str(sweep)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == (
        f"hpcseg: sweep {sweep}: 6 points: 3 ok, 1 error, 1 unfinished, 1 pending; "
        f"table: {sweep / 'sweep.parquet'} (and .csv), plot: {sweep / 'sweep.png'}"
    )


def test_best_points_by_f1_avg(sweep, capsys):
    result = collect(sweep, "f1_avg", top=2)
    assert result.metric == "f1_avg"
    assert [r["point"] for r in result.best] == [1, 0]
    assert result.lines()[1] == (
        f"#1  f1_avg=0.8000  pipeline.smooth.sigma=1.0 pipeline.threshold.method=otsu "
        f"pipeline=nuclei  ({sweep / '1'})"
    )
    assert main([str(sweep), "--metric", "f1_avg", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "#1  f1_avg=0.8000" in out and "#0  " not in out


def test_best_points_by_a_custom_metric(sweep):
    result = collect(sweep, "images_per_second", top=5)
    assert [r["point"] for r in result.best] == [0, 2, 1]
    assert result.lines()[1].startswith("#0  images_per_second=4.0000  ")


def test_objective_falls_back_to_f1_avg_and_nan_is_not_ranked(tmp_path):
    root = tmp_path / "s"
    for num, f1 in enumerate([0.4, 0.9, math.nan]):
        make_point(
            root,
            num,
            [f"pipeline.smooth.sigma={num}"],
            record=ok(None),
            run=run_json(float(num), "otsu", accuracy(f1)),
        )
    result = collect(root)
    assert result.metric == "f1_avg"
    assert [r["point"] for r in result.best] == [1, 0]


def test_no_ground_truth_means_no_best_and_no_plot(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    (root / "sweep.png").write_bytes(b"\x89PNG stale")
    for num in range(2):
        make_point(
            root,
            num,
            [f"pipeline.smooth.sigma={num}"],
            record=ok(None),
            run=run_json(float(num), "otsu", {}),
        )
    result = collect(root)
    assert result.best == [] and result.plot_path is None
    assert not (root / "sweep.png").exists()
    assert (
        "hpcseg: no finished point has an objective or f1_avg (no ground truth?)"
        in (result.lines()[0])
    )
    assert result.summary.endswith("no plot")
    assert result.table.column("f1_avg").to_pylist() == [None, None]
    assert result.table.schema.field("f1_avg").type == pa.float64()


def test_unknown_metric_is_one_line_error(sweep, capsys):
    with pytest.raises(UserError, match=r"unknown metric 'speed'.*objective, f1_avg"):
        collect(sweep, "speed")
    assert main([str(sweep), "--metric", "speed"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hpcseg: error: unknown metric 'speed'") and err.count("\n") == 1
    assert not (sweep / "sweep.parquet").exists()


def test_empty_or_missing_folder_exits_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "7").mkdir()  # a numbered folder that is no point
    assert main([str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err == (
        f"hpcseg: error: {tmp_path / 'empty'} holds no sweep (no point folders, no sweep.json)\n"
    )
    assert main([str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.startswith(f"hpcseg: error: {tmp_path / 'nowhere'} is not")


def test_plot_is_a_png(sweep):
    result = collect(sweep, "f1_avg")
    assert result.plot_path == sweep / "sweep.png"
    data = result.plot_path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
    assert not list(sweep.glob(".*.tmp"))


def test_csv_has_the_same_rows(sweep):
    result = collect(sweep, "f1_avg")
    with open(sweep / "sweep.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == result.table.column_names
    table = result.table.to_pylist()
    assert [int(r["point"]) for r in rows] == [r["point"] for r in table]
    assert [r["status"] for r in rows] == [r["status"] for r in table]
    assert [r["error"] for r in rows] == [r["error"] or "" for r in table]
    assert float(rows[1]["f1_avg"]) == pytest.approx(0.8) and rows[3]["f1_avg"] == ""


def test_swept_keys_without_sweep_json(tmp_path):
    points = [
        ["+pipeline.smooth.sigma=1", "dataset.n_images=4", "pipeline=nuclei"],
        ["+pipeline.smooth.sigma=2", "dataset.n_images=4", "pipeline=nuclei"],
        ["+pipeline.smooth.sigma=3", "dataset.n_images=4", "pipeline=nuclei", "~output.report"],
    ]
    assert swept_keys(None, points) == ["pipeline.smooth.sigma", "output.report"]
    assert swept_keys(["++a.b", "~c"], points) == ["a.b", "c"]
    root = tmp_path / "s"
    make_point(root, 0, points[0], record=ok(0.5))
    make_point(root, 1, points[1])
    table = collect(root).table
    assert table.column_names[:2] == ["point", "pipeline.smooth.sigma"]
    assert table.column("pipeline.smooth.sigma").to_pylist() == [1, 2]
    assert table.schema.field("pipeline.smooth.sigma").type == pa.int64()
