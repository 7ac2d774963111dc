"""``hpcseg -m``: a sweep planned and checked before the first point runs, then run by Hydra's
configured sweeper and launcher; and, inside each point, what Hydra knows of that point.

Every point writes into its own folder ``<hydra.sweep.dir>/<n>/`` (its ``output.dir``); an
``output.dir=X`` given with ``-m`` names the sweep folder itself. For a grid (Hydra's basic
sweeper) every point is composed and validated first: a typo or a missing option refuses the
whole sweep (one line, exit 2); a value that one point's validation refuses is only that
point's failure (recorded in its folder, the others run). For an optimising sweeper (Optuna)
the base config is checked, the dataset must have ground truth and the direction must be
``maximize``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.hydra import Hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from hpcseg.config.compose import (
    FOLDER_ERRNOS,
    check_hydra_folder,
    compose_for,
    folder_error,
    hydra_context,
    to_config,
)
from hpcseg.config.hydra_errors import one_line
from hpcseg.config.schemas import Config
from hpcseg.config.validate import check_folder
from hpcseg.errors import UserError
from hpcseg.results.points import point_folders as records_of

BASIC_SWEEPER = f"{BasicSweeper.__module__}.{BasicSweeper.__name__}"
BASIC_LAUNCHER = f"{BasicLauncher.__module__}.{BasicLauncher.__name__}"
OUTPUT_DIR = "output.dir"
SWEEP_DIR = "hydra.sweep.dir"


@dataclass
class SweepPlan:
    """A checked sweep, ready to launch."""

    hydra: Hydra
    composed: DictConfig  # the sweep's config (its hydra node; the points' shared values)
    sweep_dir: Path
    sweeper: str  # the sweeper's class path
    launcher: str  # the launcher's class path
    swept: list[str]  # the keys the points vary
    objective: str  # sweep.objective
    reuse_cluster: bool  # sweep.reuse_cluster
    points: list[list[str]] | None = None  # a grid's points' overrides by number; else None
    configs: dict[int, Config] = field(default_factory=dict)  # the grid's valid points
    composed_points: dict[tuple[str, ...], DictConfig] = field(default_factory=dict)
    invalid: dict[int, str] = field(default_factory=dict)  # the grid's refused points: why
    n_trials: int | None = None  # an optimising sweeper's trials
    launcher_options: dict = field(default_factory=dict)  # hydra.launcher, resolved

    @property
    def in_process(self) -> bool:
        """The points run one after another in this process (Hydra's basic launcher)."""
        return self.launcher == BASIC_LAUNCHER

    @property
    def on_slurm(self) -> bool:
        """The points are SLURM jobs (hydra-submitit-launcher's SLURM launcher)."""
        return self.launcher.endswith(".SlurmLauncher")

    @property
    def expected(self) -> int:
        return len(self.points) if self.points is not None else int(self.n_trials or 0)

    def label(self, num: int) -> str:
        return _label(num, self.points[num], self.swept) if self.points else f"point #{num}"


def _user_error_in(exc: BaseException | None) -> UserError | None:
    """The UserError an OmegaConf resolver raised, under the errors OmegaConf wraps it in."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, UserError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


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


def output_dir_names_sweep(overrides: list[str]) -> list[str]:
    """``output.dir=X`` with ``-m`` names the sweep folder (``hydra.sweep.dir=X``) unless
    ``hydra.sweep.dir`` is given too; it is dropped from the points' overrides (each point's
    output.dir is its own folder). Sweeping ``output.dir`` itself is refused."""
    keys = {line.split("=", 1)[0].lstrip("+~"): line for line in overrides if "=" in line}
    line = keys.get(OUTPUT_DIR)
    if line is None:
        return overrides
    rest = [o for o in overrides if "=" not in o or o.split("=", 1)[0].lstrip("+~") != OUTPUT_DIR]
    try:
        is_sweep = OverridesParser.create().parse_override(line).is_sweep_override()
    except Exception as exc:
        raise UserError(one_line(exc)) from None
    if is_sweep:
        raise UserError(
            f"{line}: under -m every point writes into its own folder <hydra.sweep.dir>/<n>; "
            "give output.dir=<folder> once (it names the sweep folder), not a list"
        )
    if SWEEP_DIR in keys:
        return rest
    return [*rest, f"{SWEEP_DIR}={line.split('=', 1)[1]}"]


# the overrides that can make a command a sweep without -m (presets set hydra.mode: MULTIRUN)
MODE_KEYS = ("experiment", "hparams_search", "hydra.mode")


def wants_multirun(overrides: list[str]) -> bool:
    """Whether ``overrides`` select a sweep without ``-m``: an ``experiment=`` or
    ``hparams_search=`` preset (or ``hydra.mode=MULTIRUN``) that sets ``hydra.mode``. Composed
    as Hydra does to decide (in multirun mode, so the preset's sweeps may have a,b values)."""
    keys = {o.split("=", 1)[0].lstrip("+~") for o in overrides if "=" in o}
    if not keys & set(MODE_KEYS):
        return False
    _, composed = compose_for(overrides, RunMode.MULTIRUN)
    return str(composed.hydra.get("mode")) == str(RunMode.MULTIRUN)


def plan_sweep(
    overrides: list[str],
    check: Callable[[Config], None] = lambda cfg: None,
    check_objective: Callable[[Config], None] = lambda cfg: None,
) -> SweepPlan:
    """Compose a multirun and check it (module docstring); ``check`` runs on every valid point
    (or the base config of an optimising sweep), ``check_objective`` on an optimising sweep's
    base config (its dataset must have ground truth)."""
    hydra, composed = compose_for(output_dir_names_sweep(overrides), RunMode.MULTIRUN)
    check_hydra_folder(composed, SWEEP_DIR)
    sweep_dir = Path(str(OmegaConf.select(composed, SWEEP_DIR)))
    plan = SweepPlan(
        hydra=hydra,
        composed=composed,
        sweep_dir=sweep_dir,
        sweeper=str(composed.hydra.sweeper.get("_target_")),
        launcher=str(composed.hydra.launcher.get("_target_")),
        swept=[],
        objective=str(composed.sweep.objective),
        reuse_cluster=bool(composed.sweep.reuse_cluster),
    )
    try:
        plan.launcher_options = OmegaConf.to_container(composed.hydra.launcher, resolve=True)
    except Exception as exc:  # hpcseg's resolvers: sweep.memory, sweep.walltime
        cause = _user_error_in(exc)
        where = getattr(exc, "full_key", "hydra.launcher")
        raise UserError(f"{where}: {cause}" if cause else one_line(exc)) from None
    if plan.sweeper == BASIC_SWEEPER:
        _check_grid(plan, check)
    else:
        _check_optimiser(plan, check, check_objective)
    return plan


def _point_folder(point_cfg: DictConfig, num: int) -> str:
    """The folder Hydra gives point ``num`` (``hydra.sweep.dir/hydra.sweep.subdir``)."""
    with open_dict(point_cfg):
        point_cfg.hydra.job.num = num
        point_cfg.hydra.job.id = num
    sub = OmegaConf.select(point_cfg, "hydra.sweep.subdir")
    return str(Path(str(OmegaConf.select(point_cfg, SWEEP_DIR))) / str(sub))


def point_config(point_cfg: DictConfig, folder: str) -> Config:
    """A point's composed config validated, with ``output.dir`` its own folder."""
    with open_dict(point_cfg):
        point_cfg.output.dir = folder
    return to_config(point_cfg)


def _check_grid(plan: SweepPlan, check: Callable[[Config], None]) -> None:
    points, plan.swept = _points(plan.hydra, plan.composed)
    plan.points = points
    folders: dict[str, int] = {}
    for num, point in enumerate(points):
        label = plan.label(num)
        try:
            point_cfg = plan.hydra.config_loader.load_sweep_config(plan.composed, point)
        except Exception as exc:
            raise UserError(f"{label}: {one_line(exc)}") from None
        folder = _point_folder(point_cfg, num)
        plan.composed_points[tuple(point)] = point_cfg
        if folder in folders:
            raise UserError(
                f"{plan.label(folders[folder])} and {label} would both write {folder}: keep "
                "hydra.sweep.subdir=${hydra.job.num} (one folder per point)"
            )
        folders[folder] = num
        try:
            cfg = point_config(point_cfg, folder)
            check_folder(OUTPUT_DIR, cfg.output.dir)
            check(cfg)
        except UserError as exc:
            if _is_key_error(exc):  # a typo is every point's: refuse the sweep
                raise UserError(f"{label}: {exc}") from None
            plan.invalid[num] = f"{label}: {exc}"
            continue
        plan.configs[num] = cfg
    if points and len(plan.invalid) == len(points):  # nothing would run: say why up front
        raise UserError(plan.invalid[0])


def _is_key_error(exc: UserError) -> bool:
    return str(exc).startswith(("unknown config key", "no such key", "Could not"))


def _check_optimiser(
    plan: SweepPlan, check: Callable[[Config], None], check_objective: Callable[[Config], None]
) -> None:
    sweeper = plan.composed.hydra.sweeper
    params = OmegaConf.to_container(sweeper, resolve=False).get("params") or {}
    plan.swept = [str(k) for k in params]
    plan.n_trials = sweeper.get("n_trials")
    direction = sweeper.get("direction")
    if direction is not None and "maximize" not in str(direction):
        raise UserError(
            f"hydra.sweeper.direction={direction}: every sweep.objective "
            f"({plan.objective}) is a score where higher is better; set "
            "hydra.sweeper.direction=maximize (hparams_search=nuclei_optuna does)"
        )
    started = records_of(plan.sweep_dir)
    if started:
        raise UserError(
            f"hydra.sweep.dir={plan.sweep_dir} already holds {len(started)} point folder(s): an "
            "optimising sweeper starts its study from trial 0 and would ask other parameters "
            "for them; give the study a new folder (output.dir=... or hydra.sweep.dir=...)"
        )
    base = copy.deepcopy(plan.composed)
    cfg = point_config(base, _point_folder(base, 0))
    check_folder(OUTPUT_DIR, cfg.output.dir)
    check(cfg)
    check_objective(cfg)


def make_sweep_dir(plan: SweepPlan) -> None:
    """Create the sweep folder (the sweeper's first act): a folder error is one line."""
    try:
        plan.sweep_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno not in FOLDER_ERRNOS:
            raise
        raise UserError(folder_error(SWEEP_DIR, plan.composed, exc)) from None


def launch(plan: SweepPlan, task: Callable[[DictConfig], Any]) -> None:
    """Run the points with Hydra's configured sweeper and launcher; ``task`` is each point's
    Hydra task function (its composed config; :func:`current_point` tells where it runs)."""
    context = hydra_context(plan.hydra, plan.composed)
    if plan.in_process and plan.composed_points:  # a pickled job would carry every config
        context = replace(context, config_loader=CheckedPoints(context.config_loader, plan))
    sweeper = Plugins.instance().instantiate_sweeper(
        config=plan.composed, hydra_context=context, task_function=task
    )
    arguments = OmegaConf.to_container(plan.composed.hydra.overrides.task, resolve=False)
    sweeper.sweep(arguments=arguments)


class CheckedPoints:
    """Hydra's config loader, answering for the grid points :func:`plan_sweep` composed and
    checked already: Hydra's basic sweeper (validating a batch) and launcher would compose each
    point twice more, 0.3 s each (a third of a small point's time)."""

    def __init__(self, loader: Any, plan: SweepPlan):
        self._loader, self._planned = loader, plan.composed_points

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]):
        planned = self._planned.get(tuple(sweep_overrides))
        if planned is None:
            return self._loader.load_sweep_config(master_config, sweep_overrides)
        return copy.deepcopy(planned)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


@dataclass(frozen=True)
class CurrentPoint:
    """What Hydra knows of the point being run (read inside the task function)."""

    num: int
    overrides: list[str]
    folder: str
    in_process: bool


def current_point() -> CurrentPoint:
    hydra = HydraConfig.get()
    return CurrentPoint(
        num=int(hydra.job.num),
        overrides=[str(o) for o in hydra.overrides.task],
        folder=str(hydra.runtime.output_dir),
        in_process=str(hydra.launcher.get("_target_")) == BASIC_LAUNCHER,
    )
