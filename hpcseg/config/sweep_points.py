"""``hpcseg -m``: every point of a sweep composed and checked before the first runs, then
Hydra's configured sweeper and launcher run them (each point validated on its own too)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.hydra import Hydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from hpcseg.config.compose import (
    FOLDER_ERRNOS,
    check_hydra_folder,
    compose_for,
    folder_error,
    hydra_context,
    to_config,
)
from hpcseg.config.hydra_errors import one_line
from hpcseg.config.schemas import SCHEMAS, Config
from hpcseg.config.validate import check_folder
from hpcseg.errors import UserError

BASIC_SWEEPER = f"{BasicSweeper.__module__}.{BasicSweeper.__name__}"


def _points(hydra: Hydra, composed: DictConfig) -> tuple[list[list[str]], list[str]]:
    """The basic sweeper's points, each as its list of overrides, in the order it runs them,
    and the keys that vary between them."""
    sweeper = OmegaConf.to_container(composed.hydra.sweeper, resolve=False)
    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    arguments = [*params, *OmegaConf.to_container(composed.hydra.overrides.task, resolve=False)]
    try:
        parsed = OverridesParser.create(config_loader=hydra.config_loader).parse_overrides(
            arguments
        )
        batches = BasicSweeper.split_arguments(parsed, None)
    except Exception as exc:
        raise UserError(one_line(exc)) from None
    swept = [o.get_key_element() for o in parsed if o.is_sweep_override()]
    return [list(point) for batch in batches for point in batch], swept


def _label(index: int, point: list[str], swept: list[str]) -> str:
    shown = [o for o in point if o.split("=", 1)[0] in swept] or point
    return f"multirun point #{index} ({' '.join(shown)})"


def check_points(
    overrides: list[str], check: Callable[[Config], None] = lambda cfg: None
) -> tuple[Hydra, DictConfig, list[Config] | None]:
    """Compose a multirun; when its sweeper is Hydra's basic one, compose, validate and
    ``check`` every point before any runs (a bad point: one line naming its overrides), and
    refuse points that would mix their results in one folder. Returns the Hydra instance, the
    sweep's composed config and the points' configs (None for another sweeper, whose points
    are only known as it runs them: each is then checked as it starts)."""
    hydra, composed = compose_for(overrides, RunMode.MULTIRUN)
    if composed.hydra.sweeper.get("_target_") != BASIC_SWEEPER:
        return hydra, composed, None
    points, swept = _points(hydra, composed)
    labels = [_label(i, point, swept) for i, point in enumerate(points)]
    configs: list[Config] = []
    for label, point in zip(labels, points, strict=True):
        try:
            point_cfg = hydra.config_loader.load_sweep_config(composed, point)
        except Exception as exc:
            raise UserError(f"{label}: {one_line(exc)}") from None
        try:
            cfg = to_config(point_cfg)
            check_folder("output.dir", cfg.output.dir)
            check(cfg)
        except UserError as exc:
            raise UserError(f"{label}: {exc}") from None
        configs.append(cfg)
    _distinct_outputs(labels, configs, swept)
    return hydra, composed, configs


def _distinct_outputs(labels: list[str], configs: list[Config], swept: list[str]) -> None:
    """Two points writing one output.dir must agree on the pipeline and the dataset: else the
    second is refused mid-sweep (another pipeline's folder), or mixes or skips images."""
    first: dict[Path, tuple[str, Any]] = {}
    for label, cfg in zip(labels, configs, strict=True):
        where = Path(cfg.output.dir).absolute()
        what = (cfg.pipeline, cfg.dataset)
        seen = first.setdefault(where, (label, what))
        if seen[1] != what:
            raise UserError(
                f"{seen[0]} and {label} would both write output.dir={where} with different "
                "pipeline or dataset settings; give each point its own folder, e.g. "
                f"'output.dir=sweep/{_folder_example(swept)}'"
            )


def _folder_example(swept: list[str]) -> str:
    """An output.dir tail that differs between the points: the swept keys' values."""
    parts = []
    for key in swept:
        key = key.lstrip("+~").split("@")[0]
        if key.startswith("hydra."):
            continue
        ref = f"{key}.name" if key in (*SCHEMAS, "pipeline") else key
        parts.append(f"{key.split('.')[-1]}${{{ref}}}")
    return "_".join(parts) or "${hydra:job.num}"


def run_sweep(
    overrides: list[str],
    task: Callable[[DictConfig], Any],
    check: Callable[[Config], None] = lambda cfg: None,
) -> list[Any]:
    """Run a multirun (``-m``): every point checked first (:func:`check_points`), then Hydra's
    configured sweeper and launcher call ``task`` once per point with that point's composed
    config; return the points' results in order."""
    hydra, composed, _ = check_points(overrides, check)
    check_hydra_folder(composed, "hydra.sweep.dir")
    try:  # the sweeper's first act (same folder: `now` is cached in the config)
        Path(str(OmegaConf.select(composed, "hydra.sweep.dir"))).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno not in FOLDER_ERRNOS:
            raise
        raise UserError(folder_error("hydra.sweep.dir", composed, exc)) from None
    sweeper = Plugins.instance().instantiate_sweeper(
        config=composed, hydra_context=hydra_context(hydra, composed), task_function=task
    )
    task_overrides = OmegaConf.to_container(composed.hydra.overrides.task, resolve=False)
    batches = sweeper.sweep(arguments=task_overrides) or []
    return [ret.return_value for batch in batches for ret in batch]
