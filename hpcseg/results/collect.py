"""One table of a sweep: every point of a Hydra multirun folder, its swept values and scores.

    hpcseg collect SWEEP_DIR [--metric objective] [--top 5]

Reads each point folder's ``point.json``, ``run.json`` and ``.hydra/overrides.yaml`` and the
sweep's ``sweep.json`` (works on a partial sweep: running, failed and pending points are rows
too), writes ``<SWEEP_DIR>/sweep.parquet`` and ``sweep.csv`` (one row per point), prints the
best points by the metric and plots the metric against every swept key in ``sweep.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import yaml

from hpcseg.errors import UserError
from hpcseg.results.atomic import atomic_path
from hpcseg.results.points import (
    HYDRA_FOLDER,
    PENDING,
    UNFINISHED,
    PointRecord,
    point_folders,
    read_point,
    read_sweep,
    status_of,
)

TABLE_NAME = "sweep.parquet"
CSV_NAME = "sweep.csv"
PLOT_NAME = "sweep.png"
RUN_RECORD = "run.json"
OVERRIDES_FILE = "overrides.yaml"

# the columns after `point` and the swept keys, in order
FIXED_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("status", pa.string()),
    ("exit_code", pa.int64()),
    ("error", pa.string()),
    ("objective", pa.float64()),
    ("f1_50", pa.float64()),
    ("f1_70", pa.float64()),
    ("f1_90", pa.float64()),
    ("f1_avg", pa.float64()),
    ("merges", pa.int64()),
    ("splits", pa.int64()),
    ("images", pa.int64()),
    ("images_ok", pa.int64()),
    ("images_failed", pa.int64()),
    ("objects", pa.int64()),
    ("images_per_second", pa.float64()),
    ("wall_seconds", pa.float64()),
    ("job_id", pa.string()),
    ("slurm_job_id", pa.string()),
    ("output_dir", pa.string()),
    ("overrides", pa.string()),
)
FIXED_NAMES = frozenset(name for name, _ in FIXED_COLUMNS) | {"point"}
METRICS = ("objective", "f1_avg", "f1_50", "f1_70", "f1_90", "images_per_second")
STATUS_ORDER = ("ok", "failed", "error", "crashed", "stopped", UNFINISHED, PENDING)
_MISSING = object()
NAN_INF = ("nan", "inf")


@dataclass
class CollectResult:
    """What :func:`collect` wrote and found."""

    sweep_dir: Path
    table: pa.Table
    table_path: Path
    csv_path: Path
    plot_path: Path | None  # None: nothing to plot (see ``notes``)
    metric: str  # the metric ranked by (``objective`` falls back to ``f1_avg``)
    swept: list[str]
    best: list[dict[str, Any]]  # the best ok points' rows, best first
    notes: list[str] = field(default_factory=list)  # one line each: why no best or no plot
    summary: str = ""
    objective_name: str | None = None  # which score the objective is (sweep.objective)

    def lines(self) -> list[str]:
        """What ``hpcseg collect`` prints: the best points, the notes, the summary line."""
        best = [best_line(row, self.metric, self.swept) for row in self.best]
        if best:
            named = self.metric == "objective" and self.objective_name
            label = f"objective ({self.objective_name})" if named else self.metric
            best.insert(0, f"hpcseg: best {len(best)} point(s) by {label}:")
        return [*best, *(f"hpcseg: {note}" for note in self.notes), self.summary]


@dataclass
class _Point:
    """What is on disk for one point number."""

    num: int
    folder: Path | None
    record: PointRecord | None
    run: dict | None
    overrides: list[str]


# --- reading ---------------------------------------------------------------------------------


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_overrides(folder: Path) -> list[str] | None:
    try:
        data = yaml.safe_load((folder / HYDRA_FOLDER / OVERRIDES_FILE).read_text())
    except (OSError, yaml.YAMLError):
        return None
    return [str(o) for o in data] if isinstance(data, list) else None


def _points(sweep_dir: Path, planned: list[list[str]]) -> list[_Point]:
    """Every point number, started (a folder) or planned in sweep.json, in order."""
    folders = point_folders(sweep_dir)
    points = []
    for num in sorted(set(folders) | set(range(len(planned)))):
        folder = folders.get(num)
        record = read_point(folder) if folder else None
        run = _read_json(folder / RUN_RECORD) if folder else None
        overrides = (
            (record.overrides if record else None)
            or (_read_overrides(folder) if folder else None)
            or (planned[num] if num < len(planned) else [])
        )
        points.append(_Point(num, folder, record, run, list(overrides)))
    return points


# --- swept keys and their values -------------------------------------------------------------


def key_name(key: str) -> str:
    """A swept key as a column name: without Hydra's ``+``/``++``/``~`` and ``@package``."""
    return key.lstrip("+~").split("@", 1)[0]


def split_override(override: str) -> tuple[str, str | None]:
    """``"+a.b=1"`` -> ``("a.b", "1")``; a deletion without a value -> ``(key, None)``."""
    key, sep, value = override.partition("=")
    return key_name(key.strip()), (value if sep else None)


def _override_values(overrides: list[str]) -> dict[str, str | None]:
    return dict(split_override(o) for o in overrides)


def swept_keys(declared: list[str] | None, overrides: list[list[str]]) -> list[str]:
    """The declared swept keys (sweep.json), else the keys whose override value differs
    between points or that only some points override."""
    if declared is not None:
        return list(dict.fromkeys(key_name(k) for k in declared))
    per_point = [_override_values(o) for o in overrides]
    keys = list(dict.fromkeys(k for values in per_point for k in values))
    missing = object()
    return [k for k in keys if len({values.get(k, missing) for values in per_point}) > 1]


def parse_value(text: str | None) -> Any:
    """An override's value text as a typed value, read as YAML but as Hydra reads it: ``1e-3``
    and ``nan`` are floats, ``yes``/``on`` and dates stay text."""
    if text is None:
        return None
    bare = text.strip()
    if not bare:
        return ""
    try:
        value = yaml.safe_load(bare)
    except yaml.YAMLError:
        return bare
    if isinstance(value, bool) and bare.lower() not in ("true", "false"):
        return bare
    if value == bare and (any(c.isdigit() for c in bare) or bare.lower().lstrip("+-") in NAN_INF):
        try:
            return float(bare)
        except ValueError:
            return bare
    if not isinstance(value, str | int | float | list | dict | None):
        return bare
    return value


def config_value(config: dict | None, key: str) -> Any:
    """The value of a dotted key in a resolved config (a group: its ``name``), or _MISSING."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    if isinstance(node, dict) and "name" in node:
        return node["name"]
    return node


def _swept_value(point: _Point, key: str) -> Any:
    value = config_value((point.run or {}).get("config"), key)
    if value is not _MISSING:
        return value
    return parse_value(_override_values(point.overrides).get(key))


def _text(value: Any) -> str:
    """A value as text, as an override would write it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def typed_column(values: list[Any]) -> pa.Array:
    """One swept key's values as a typed column: bool, int, float (ints and floats mixed), or
    string (anything else, mixed types written as override text)."""
    present = [v for v in values if v is not None]
    kinds = {bool if isinstance(v, bool) else type(v) for v in present}
    if kinds == {bool}:
        return pa.array(values, pa.bool_())
    if kinds == {int}:
        return pa.array(values, pa.int64())
    if kinds and kinds <= {int, float}:
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    return pa.array([None if v is None else _text(v) for v in values], pa.string())


# --- rows and the table ----------------------------------------------------------------------


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if not (isinstance(value, float) and not value.is_integer()) else None


def _status(point: _Point) -> str:
    if point.record is not None:
        return point.record.status or status_of(point.record.exit_code)
    return UNFINISHED if point.folder is not None else PENDING


def _output_dir(point: _Point) -> str | None:
    if point.record is not None and point.record.output_dir:
        return point.record.output_dir
    configured = config_value((point.run or {}).get("config"), "output.dir")
    if isinstance(configured, str) and configured:
        return configured
    return str(point.folder) if point.folder is not None else None


def _row(point: _Point) -> dict[str, Any]:
    """The fixed columns of one point."""
    record = point.record
    summary = (point.run or {}).get("summary") or {}
    accuracy = summary.get("accuracy") or {}
    wall = record.wall_seconds if record else None
    return {
        "status": _status(point),
        "exit_code": record.exit_code if record else None,
        "error": record.error if record else None,
        "objective": _float(record.objective) if record else None,
        **{k: _float(accuracy.get(k)) for k in ("f1_50", "f1_70", "f1_90", "f1_avg")},
        **{k: _int(accuracy.get(k)) for k in ("merges", "splits")},
        "images": _int(summary.get("images_in_dataset")),
        **{k: _int(summary.get(k)) for k in ("images_ok", "images_failed", "objects")},
        "images_per_second": _float(summary.get("images_per_second")),
        "wall_seconds": _float(wall if wall is not None else summary.get("wall_seconds")),
        "job_id": _str(record.job_id) if record else None,
        "slurm_job_id": _str(record.slurm_job_id) if record else None,
        "output_dir": _output_dir(point),
        "overrides": " ".join(point.overrides),
    }


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def build_table(points: list[_Point], swept: list[str]) -> pa.Table:
    """The sweep table: ``point``, the swept keys, then :data:`FIXED_COLUMNS`."""
    rows = [_row(p) for p in points]
    columns: dict[str, pa.Array] = {"point": pa.array([p.num for p in points], pa.int64())}
    for key in swept:
        if key not in FIXED_NAMES:  # a key named like a fixed column would shadow it
            columns[key] = typed_column([_swept_value(p, key) for p in points])
    for name, dtype in FIXED_COLUMNS:
        columns[name] = pa.array([row[name] for row in rows], dtype)
    return pa.table(columns)


def write_tables(table: pa.Table, sweep_dir: Path) -> tuple[Path, Path]:
    """``sweep.parquet`` and ``sweep.csv``, each written atomically."""
    parquet, csv = sweep_dir / TABLE_NAME, sweep_dir / CSV_NAME
    with atomic_path(parquet) as tmp:
        pq.write_table(table, tmp)
    with atomic_path(csv) as tmp:
        pa_csv.write_csv(table, tmp)
    return parquet, csv


# --- best points -----------------------------------------------------------------------------


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise UserError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")


def _has(row: dict, metric: str) -> bool:
    value = row.get(metric)
    return value is not None and not math.isnan(value)


def ranked(table: pa.Table, metric: str) -> list[dict[str, Any]]:
    """The ok points that have ``metric`` (not null, not NaN), best (highest) first."""
    rows = [r for r in table.to_pylist() if r["status"] == "ok" and _has(r, metric)]
    return sorted(rows, key=lambda r: (-r[metric], r["point"]))


def best_line(row: dict[str, Any], metric: str, swept: list[str]) -> str:
    """``#3  f1_avg=0.8123  pipeline.smooth.sigma=1.0 ...  (output dir)``."""
    values = " ".join(f"{k}={_text(row[k])}" for k in swept if k in row) or row["overrides"]
    return f"#{row['point']}  {metric}={row[metric]:.4f}  {values}  ({row['output_dir']})"


def _no_metric(table: pa.Table, metric: str) -> str:
    """Why no point is ranked: none ended ok yet, or none has the metric."""
    if "ok" not in table.column("status").to_pylist():
        return "no point has finished ok yet: no best point, no plot"
    what = "an objective or f1_avg" if metric == "objective" else metric
    return f"no finished point has {what} (no ground truth?): no best point, no plot"


def _choose_metric(table: pa.Table, metric: str) -> str:
    """``objective`` falls back to ``f1_avg`` when no ok point has an objective."""
    if metric == "objective" and not ranked(table, metric) and ranked(table, "f1_avg"):
        return "f1_avg"
    return metric


# --- the plot --------------------------------------------------------------------------------


def _pyplot():
    """matplotlib with the file-only Agg backend, imported on first use (slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _panel(ax, key: str, rows: list[dict], dtype: pa.DataType, metric: str, best: dict) -> None:
    """The metric against one swept key: a scatter (numbers) or one tick per category."""
    numeric = pa.types.is_integer(dtype) or pa.types.is_floating(dtype)
    if numeric:
        rows = [r for r in rows if r[key] is not None]
        xs = [r[key] for r in rows]
        best_x = best[key]
    else:
        labels = sorted({_text(r[key]) for r in rows})
        xs = [labels.index(_text(r[key])) for r in rows]
        best_x = labels.index(_text(best[key]))
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.scatter(xs, [r[metric] for r in rows], s=30, alpha=0.7, color="tab:blue")
    if best_x is not None:
        ax.scatter([best_x], [best[metric]], s=160, marker="*", color="tab:red", zorder=3,
                   label=f"best #{best['point']}")  # fmt: skip
        ax.legend(loc="best", fontsize=8)
    ax.set(xlabel=key, ylabel=metric)
    ax.grid(alpha=0.3)


def write_plot(table: pa.Table, swept: list[str], metric: str, path: Path) -> Path:
    """``sweep.png``: one panel per swept key, the ok points' metric, the best point starred."""
    plt = _pyplot()
    rows = ranked(table, metric)
    keys = [k for k in swept if k in table.column_names]
    ncols = min(len(keys), 3)
    nrows = math.ceil(len(keys) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 4 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        _panel(ax, key, rows, table.schema.field(key).type, metric, rows[0])
    for ax in list(axes.flat)[len(keys) :]:
        ax.set_visible(False)
    best = rows[0]
    fig.suptitle(f"{metric} over {len(rows)} ok points (best #{best['point']}: "
                 f"{best[metric]:.4f})")  # fmt: skip
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


# --- the command -----------------------------------------------------------------------------


def _counts(statuses: list[str]) -> str:
    order = [*STATUS_ORDER, *sorted(set(statuses) - set(STATUS_ORDER))]
    parts = [f"{statuses.count(s)} {s}" for s in order if statuses.count(s) or s == "ok"]
    return ", ".join(parts)


def _load(sweep_dir: Path) -> tuple[list[_Point], list[str], str | None]:
    """The sweep's points and swept keys; UserError when the folder holds no sweep."""
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} is not a folder (give a sweep folder: hydra.sweep.dir)")
    sweep = read_sweep(sweep_dir)
    points = _points(sweep_dir, (sweep.points or []) if sweep else [])
    if not points and sweep is None:
        raise UserError(f"{sweep_dir} holds no sweep (no point folders, no sweep.json)")
    declared = sweep.swept if sweep is not None else None
    objective = sweep.objective_name if sweep is not None else None
    return points, swept_keys(declared, [p.overrides for p in points]), objective


def collect(sweep_dir: str | Path, metric: str = "objective", top: int = 5) -> CollectResult:
    """Read a sweep folder, write its table (Parquet and CSV) and plot, rank the ok points by
    ``metric``. Raises :class:`~hpcseg.errors.UserError` for an unknown metric or a folder
    that holds no sweep."""
    check_metric(metric)
    sweep_dir = Path(sweep_dir)
    points, swept, objective_name = _load(sweep_dir)
    table = build_table(points, swept)
    swept = [k for k in swept if k not in FIXED_NAMES]
    parquet, csv = write_tables(table, sweep_dir)
    metric = _choose_metric(table, metric)
    rows = ranked(table, metric)
    notes, plot = [], None
    if not rows:
        notes.append(_no_metric(table, metric))
    elif not swept:
        notes.append("nothing swept: no plot")
    else:
        plot = write_plot(table, swept, metric, sweep_dir / PLOT_NAME)
    if plot is None:
        (sweep_dir / PLOT_NAME).unlink(missing_ok=True)  # a stale plot would mislead
    statuses = table.column("status").to_pylist()
    where = f"table: {parquet} (and .csv), " + (f"plot: {plot}" if plot else "no plot")
    summary = f"hpcseg: sweep {sweep_dir}: {len(points)} points: {_counts(statuses)}; {where}"
    return CollectResult(sweep_dir, table, parquet, csv, plot, metric, swept, rows[: max(top, 0)],
                         notes, summary, objective_name)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hpcseg collect", description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir", metavar="SWEEP_DIR", help="a multirun folder (hydra.sweep.dir)")
    ap.add_argument("--metric", default="objective", help=f"rank by: {', '.join(METRICS)}")
    ap.add_argument("--top", type=int, default=5, metavar="N", help="best points to print")
    args = ap.parse_args(argv)
    try:
        result = collect(args.sweep_dir, args.metric, args.top)
    except UserError as exc:
        print(f"hpcseg: error: {exc}", file=sys.stderr)
        return 2
    for line in result.lines():
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
