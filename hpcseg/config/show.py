"""``hpcseg --cfg ...`` and ``hpcseg --help``: Hydra's texts, composed here so that a mistake
in them is the same one line as for a run."""

from __future__ import annotations

import copy
import string

from hydra._internal.hydra import Hydra
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.object_type import ObjectType
from hydra.types import RunMode
from omegaconf import Container, DictConfig, OmegaConf

from hpcseg.config.compose import check_keys, compose_for, job_part, to_config
from hpcseg.config.hydra_errors import one_line
from hpcseg.errors import UserError


def _check_shown(composed: DictConfig) -> None:
    """What --cfg and --help show is checked as a run would be, except that a config with
    values still to give (``???``) is shown as it is: showing them is the point."""
    job = job_part(composed)
    check_keys(job)
    if not OmegaConf.missing_keys(job):
        to_config(job)


def check_overrides(overrides: list[str]) -> None:
    """Compose ``overrides`` and check them as --cfg would, showing nothing (for the flags
    left to Hydra, so that a typo is still one line)."""
    try:
        _, composed = compose_for(overrides, RunMode.RUN)
        _check_shown(composed)
    finally:
        GlobalHydra.instance().clear()  # Hydra's entry point initializes it again


def show_config(
    overrides: list[str], cfg_type: str, package: str | None = None, resolve: bool = False
) -> str:
    """What ``hpcseg --cfg job|hydra|all [-p PACKAGE] [--resolve] overrides`` prints: the
    text of Hydra's own ``--cfg``, with its mistakes as one-line UserErrors."""
    hydra, composed = compose_for(overrides, RunMode.RUN)
    _check_shown(composed)
    HydraConfig.instance().set_config(composed)
    OmegaConf.set_readonly(composed.hydra, None)
    if resolve:  # against the whole config: hydra.* refers to job keys (${output.dir}, sweep.*)
        try:
            OmegaConf.resolve(composed)
        except Exception as exc:
            raise UserError(one_line(exc)) from None
    cfg = hydra.get_sanitized_cfg(composed, cfg_type)
    if package == "_global_":
        package = None
    try:
        ret = cfg if package is None else OmegaConf.select(cfg, package)
        if ret is None:
            top = ", ".join(str(k) for k in cfg)
            raise UserError(f"--package {package}: no such package in the config (top: {top})")
        if not isinstance(ret, Container):
            return f"{ret}\n"
        if resolve:
            OmegaConf.resolve(ret)
        head = f"# @package {package}\n" if package is not None else ""
        return head + OmegaConf.to_yaml(ret)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(one_line(exc)) from None


def _app_groups(hydra: Hydra, parent: str = "") -> list[str]:
    """hpcseg's config groups as Hydra's help lists them ("group: a, b"), without Hydra's own
    groups and the ``schema/`` ones behind the options (not options themselves)."""
    loader, lines = hydra.config_loader, []
    for name in sorted(loader.list_groups(parent)):
        group = f"{parent}/{name}" if parent else name
        if group in ("hydra", "schema"):
            continue
        options = loader.get_group_options(group, ObjectType.CONFIG)
        if options:
            lines.append(f"{group}: {', '.join(sorted(options))}")
        if loader.get_group_options(group, ObjectType.GROUP):
            lines += _app_groups(hydra, group)
    return lines


def help_text(overrides: list[str], resolve: bool = False) -> str:
    """What ``hpcseg --help [overrides]`` prints: ``hydra.help.template`` (conf/config.yaml)
    filled as Hydra fills it, except that $APP_CONFIG_GROUPS leaves out the ``schema/`` groups.
    (Hydra's $FLAGS_HELP and $HYDRA_CONFIG_GROUPS are filled only if the template has them.)"""
    hydra, composed = compose_for(overrides, RunMode.RUN)
    _check_shown(composed)
    HydraConfig.instance().set_config(composed)
    clean = hydra.get_sanitized_cfg(copy.deepcopy(composed), "job")
    try:
        template = composed.hydra.help.template
        fill = {
            "APP_CONFIG_GROUPS": "".join(f"{line}\n" for line in _app_groups(hydra)),
            "CONFIG": OmegaConf.to_yaml(clean, resolve=resolve),
        }
        if "FLAGS_HELP" in template:
            fill["FLAGS_HELP"] = Hydra.format_args_help(get_args_parser())
        if "HYDRA_CONFIG_GROUPS" in template:
            fill["HYDRA_CONFIG_GROUPS"] = hydra.format_config_groups(
                lambda group: group == "hydra" or group.startswith("hydra/")
            )
        return string.Template(template).substitute(fill)
    except Exception as exc:
        raise UserError(one_line(exc)) from None
