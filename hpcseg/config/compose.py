"""Hydra's side of the config: the schemas in its ConfigStore, composing once, running a job.

``hpcseg key=value ...`` is composed here exactly once, turned into the schema dataclasses and
validated once; then Hydra's own job machinery (run folder, its log, ``.hydra/``) runs the task
on that already-validated config. Sweeps (``-m``) are :mod:`hpcseg.config.sweep_points`,
``--cfg`` and ``--help`` :mod:`hpcseg.config.show`. Only ``hpcseg.config`` (and
:mod:`hpcseg.cli`) imports Hydra: workers never do.
"""

from __future__ import annotations

import copy
import errno
from collections.abc import Callable
from typing import Any

from hydra import __version__ as hydra_version
from hydra._internal.callbacks import Callbacks
from hydra._internal.hydra import Hydra
from hydra._internal.utils import create_config_search_path
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ValueType
from hydra.core.utils import JobReturn, run_job
from hydra.types import HydraContext, RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from hpcseg.config.hydra_errors import one_line, unknown_key_message
from hpcseg.config.keys import is_string_key, unknown_key
from hpcseg.config.schemas import SCHEMAS, Config
from hpcseg.config.validate import (
    check_folder,
    memory_gib,
    validate,
    walltime_minutes,
)
from hpcseg.errors import UserError

CONFIG_MODULE = "hpcseg.conf"
CONFIG_NAME = "config"
# Hydra names its log file after the task: "cli" as when hydra.main decorates hpcseg/cli.py
TASK_NAME = "cli"
HYDRA_VERSION = hydra_version
# why a folder cannot be created that the configuration decides (a path, its permissions)
FOLDER_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR,
                 errno.EEXIST, errno.EISDIR, errno.ENAMETOOLONG}  # fmt: skip
# characters of a value that is more than a plain word or a simple comma-separated sweep
_NOT_SIMPLE = set("'\"[]{}()\\$=")


# resolvers of hpcseg's launcher preset (conf/hydra/launcher/slurm.yaml): hpcseg's names and
# units (sweep.memory=4GiB, sweep.walltime=01:00:00) as submitit's (mem_gb, timeout_min)
RESOLVERS = {"hpcseg.gib": memory_gib, "hpcseg.minutes": walltime_minutes}


def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore (conf/*.yaml extend them) and hpcseg's resolvers
    in OmegaConf; once per process (the store is a singleton, and converting the schemas costs
    as much as a fifth of a composition)."""
    for name, function in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)
    cs = ConfigStore.instance()
    if "hpcseg_schema.yaml" in cs.repo:
        return
    cs.store(name="hpcseg_schema", node=Config)
    for group, options in SCHEMAS.items():
        for name, schema in options.items():
            cs.store(group=f"schema/{group}", name=name, node=schema)


def as_strings(overrides: list[str]) -> list[str]:
    """``overrides`` with the values of string keys quoted where Hydra's grammar would read a
    bool or a number: ``container.executable=true`` means the command ``true`` (not 'True'),
    ``output.dir=1e3`` the folder ``1e3`` (not '1000.0'). Other overrides are unchanged."""
    parser = OverridesParser.create()
    out = []
    for line in overrides:
        try:
            override = parser.parse_override(line)
        except Exception:  # composing reports it, as one line
            out.append(line)
            continue
        value = override.value()
        if override.is_delete() or not is_string_key(override.key_or_group):
            out.append(line)
            continue
        raw = override.get_value_string()
        head = line[: len(line) - len(raw)]
        if override.value_type == ValueType.ELEMENT and _is_primitive(value):
            simple = not _NOT_SIMPLE & set(raw)  # not a cast such as int(3)
            out.append(f"{head}'{raw.strip()}'" if simple else line)
        elif (
            override.value_type == ValueType.SIMPLE_CHOICE_SWEEP
            and not _NOT_SIMPLE & set(raw)
            and len(raw.split(",")) == len(value.list)
        ):
            words = [w.strip() for w in raw.split(",")]
            pairs = zip(words, value.list, strict=True)
            out.append(head + ",".join(f"'{w}'" if _is_primitive(v) else w for w, v in pairs))
        else:
            out.append(line)
    return out


def _is_primitive(value: Any) -> bool:
    return isinstance(value, bool | int | float)


def job_part(cfg: DictConfig) -> DictConfig:
    """``cfg`` without Hydra's own ``hydra`` node (present when composed for a run)."""
    if "hydra" not in cfg:
        return cfg
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def check_keys(cfg: DictConfig) -> None:
    """Refuse a key the schemas do not declare (``+dataset.pathh=x`` adds one that would be
    silently ignored), naming it and the keys valid next to it."""
    data = OmegaConf.to_container(job_part(cfg), resolve=False, throw_on_missing=False)
    found = unknown_key(data)
    if found:
        raise UserError(unknown_key_message(*found))


def to_config(cfg: DictConfig) -> Config:
    """A composed config as validated schema dataclasses (interpolations resolved; Hydra's
    own ``hydra`` node, present when composed for a run, is left out as Hydra does)."""
    cfg = job_part(cfg)
    for key in ("dataset", "cluster", "container"):
        if OmegaConf.is_missing(cfg, key):
            raise UserError(f"no {key} selected: add {key}=<option> (see `hpcseg --help`)")
    check_keys(cfg)
    try:
        obj: Config = OmegaConf.to_object(cfg)  # resolves interpolations, fills dataclasses
    except Exception as exc:  # a MISSING value or a bad interpolation
        raise UserError(one_line(exc)) from None
    return validate(obj)


def load_config(overrides: list[str]) -> Config:
    """Compose and validate without Hydra's job machinery (nothing is written)."""
    try:
        _, composed = compose_for(overrides, RunMode.RUN)
    finally:
        GlobalHydra.instance().clear()
    return to_config(composed)


def compose_for(overrides: list[str], mode: RunMode) -> tuple[Hydra, DictConfig]:
    """A Hydra instance and the config it composes for ``overrides`` (with its hydra node)."""
    register_configs()
    GlobalHydra.instance().clear()
    search_path = create_config_search_path(f"pkg://{CONFIG_MODULE}")
    hydra = Hydra.create_main_hydra2(task_name=TASK_NAME, config_search_path=search_path)
    try:
        composed = hydra.compose_config(
            config_name=CONFIG_NAME, overrides=as_strings(overrides), run_mode=mode
        )
    except Exception as exc:
        raise UserError(one_line(exc)) from None
    return hydra, composed


def hydra_context(hydra: Hydra, cfg: DictConfig) -> HydraContext:
    return HydraContext(config_loader=hydra.config_loader, callbacks=Callbacks(cfg))


def check_hydra_folder(cfg: DictConfig, key: str) -> None:
    """Hydra's own folder ``key`` (its log, ``.hydra/``) can be created."""
    try:
        folder = OmegaConf.select(cfg, key)
    except Exception as exc:
        raise UserError(one_line(exc)) from None
    check_folder(key, str(folder))


def run_once(
    overrides: list[str], task: Callable[[Config], Any], before: Callable[[Config], Any]
) -> Any:
    """Compose ``overrides`` once, validate, check the output folder and Hydra's run folder,
    call ``before(cfg)`` (checks that touch nothing; what it returns, if not None, is the answer
    without a job: a dry run), then run ``task(cfg)`` as a Hydra job (its run folder and log);
    return what it returns."""
    hydra, composed = compose_for(overrides, RunMode.RUN)
    cfg = to_config(composed)
    check_folder("output.dir", cfg.output.dir)
    check_hydra_folder(composed, "hydra.run.dir")
    answer = before(cfg)
    if answer is not None:
        return answer
    composed.hydra.mode = RunMode.RUN
    try:
        ret: JobReturn = run_job(
            hydra_context=hydra_context(hydra, composed),
            task_function=lambda _: task(cfg),
            config=composed,
            job_dir_key="hydra.run.dir",
            job_subdir_key=None,
            configure_logging=True,
        )
    except OSError as exc:  # Hydra's folder, log or .hydra/ (the task's errors are in ret)
        if exc.errno not in FOLDER_ERRNOS:  # a full disk is no configuration error
            raise
        raise UserError(folder_error("hydra.run.dir", composed, exc)) from None
    return ret.return_value  # re-raises what the task raised


def folder_error(key: str, composed: DictConfig, exc: OSError) -> str:
    choose = "an output.dir (or hydra.run.dir)" if key == "hydra.run.dir" else f"a {key}"
    return (
        f"cannot create Hydra's folder {key}={OmegaConf.select(composed, key)} "
        f"({exc.strerror or exc}): choose {choose} you may write"
    )
