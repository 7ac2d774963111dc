"""Hydra's side of the config: the schemas in its ConfigStore, composing once, running a job.

``hpcseg key=value ...`` is composed here exactly once, turned into the schema dataclasses and
validated once; then Hydra's own job machinery (run folder, its log, ``.hydra/``) runs the task
on that already-validated config. ``-m`` runs Hydra's sweeper the same way and hands back every
point's result. Only this module (and :mod:`hpcseg.cli`) imports Hydra: workers never do.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from hydra import compose, initialize_config_module
from hydra._internal.callbacks import Callbacks
from hydra._internal.hydra import Hydra
from hydra._internal.utils import create_config_search_path
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, run_job
from hydra.types import HydraContext, RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from hpcseg.config.hydra_errors import one_line
from hpcseg.config.schemas import SCHEMAS, Config
from hpcseg.config.validate import validate
from hpcseg.errors import UserError

CONFIG_MODULE = "hpcseg.conf"
CONFIG_NAME = "config"
# Hydra names its log file after the task: "cli" as when hydra.main decorates hpcseg/cli.py
TASK_NAME = "cli"


def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore (conf/*.yaml extend them)."""
    cs = ConfigStore.instance()
    cs.store(name="hpcseg_schema", node=Config)
    for group, options in SCHEMAS.items():
        for name, schema in options.items():
            cs.store(group=f"schema/{group}", name=name, node=schema)


def to_config(cfg: DictConfig) -> Config:
    """A composed config as validated schema dataclasses (interpolations resolved; Hydra's
    own ``hydra`` node, present when composed for a run, is left out as Hydra does)."""
    if "hydra" in cfg:
        cfg = copy.deepcopy(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
    for key in ("dataset", "cluster", "container"):
        if OmegaConf.is_missing(cfg, key):
            raise UserError(f"no {key} selected: add {key}=<option> (see `hpcseg --help`)")
    try:
        obj: Config = OmegaConf.to_object(cfg)  # resolves interpolations, fills dataclasses
    except Exception as exc:  # a MISSING value or a bad interpolation
        raise UserError(one_line(exc)) from None
    return validate(obj)


def load_config(overrides: list[str]) -> Config:
    """Compose and validate without Hydra's job machinery (nothing is written)."""
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            cfg = compose(config_name=CONFIG_NAME, overrides=overrides)
    except Exception as exc:
        raise UserError(one_line(exc)) from None
    finally:
        GlobalHydra.instance().clear()
    return to_config(cfg)


def _compose(overrides: list[str], mode: RunMode) -> tuple[Hydra, DictConfig]:
    """A Hydra instance and the config it composes for ``overrides`` (with its hydra node)."""
    register_configs()
    GlobalHydra.instance().clear()
    search_path = create_config_search_path(f"pkg://{CONFIG_MODULE}")
    hydra = Hydra.create_main_hydra2(task_name=TASK_NAME, config_search_path=search_path)
    try:
        composed = hydra.compose_config(config_name=CONFIG_NAME, overrides=overrides, run_mode=mode)
    except Exception as exc:
        raise UserError(one_line(exc)) from None
    return hydra, composed


def _context(hydra: Hydra, cfg: DictConfig) -> HydraContext:
    return HydraContext(config_loader=hydra.config_loader, callbacks=Callbacks(cfg))


def run_once(
    overrides: list[str], task: Callable[[Config], Any], before: Callable[[Config], None]
) -> Any:
    """Compose ``overrides`` once, validate, call ``before(cfg)`` (checks that touch nothing),
    then run ``task(cfg)`` as a Hydra job (its run folder and log); return what it returns."""
    hydra, composed = _compose(overrides, RunMode.RUN)
    cfg = to_config(composed)
    before(cfg)
    composed.hydra.mode = RunMode.RUN
    ret: JobReturn = run_job(
        hydra_context=_context(hydra, composed),
        task_function=lambda _: task(cfg),
        config=composed,
        job_dir_key="hydra.run.dir",
        job_subdir_key=None,
        configure_logging=True,
    )
    return ret.return_value  # re-raises what the task raised


def run_sweep(overrides: list[str], task: Callable[[DictConfig], Any]) -> list[Any]:
    """Run a multirun (``-m``): Hydra's configured sweeper and launcher call ``task`` once per
    point with that point's composed config; return the points' results in order."""
    hydra, composed = _compose(overrides, RunMode.MULTIRUN)

    sweeper = Plugins.instance().instantiate_sweeper(
        config=composed, hydra_context=_context(hydra, composed), task_function=task
    )
    task_overrides = OmegaConf.to_container(composed.hydra.overrides.task, resolve=False)
    batches = sweeper.sweep(arguments=task_overrides) or []
    return [ret.return_value for batch in batches for ret in batch]
