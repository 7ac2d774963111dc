"""The `hpcseg` command: Hydra composes the config, we validate it, then run the job.

Exit codes: 0 all images ok, 1 some images failed, 2 a configuration or usage error (reported
as one line on stderr before any cluster starts or any result is written), 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from hpcseg import container
from hpcseg.config import ApptainerConfig, Config, SlurmRunnerConfig, register_configs, validate
from hpcseg.errors import UserError

CONFIG_MODULE = "hpcseg.conf"
# Hydra's own flags: with these, Hydra does what a Hydra user expects and we do not pre-check.
HYDRA_FLAGS = {
    "-h",
    "--help",
    "--hydra-help",
    "--version",
    "-c",
    "--cfg",
    "-i",
    "--info",
    "-p",
    "--package",
    "--resolve",
    "-sc",
    "--shell-completion",
    "-m",
    "--multirun",
    "-cp",
    "--config-path",
    "-cn",
    "--config-name",
    "-cd",
    "--config-dir",
    "--experimental-rerun",
}

_exit_codes: list[int] = []


def _fail(message: str) -> None:
    print(f"hpcseg: error: {message}", file=sys.stderr, flush=True)


def load_config(overrides: list[str]) -> Config:
    """Compose and validate without running Hydra's job machinery (nothing is written)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from hpcseg.config_errors import one_line
    from hpcseg.data.sources import check

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides)
    except Exception as exc:
        raise UserError(one_line(exc)) from None
    finally:
        GlobalHydra.instance().clear()
    obj = validate(cfg)
    check(obj.dataset)
    if isinstance(obj.container, ApptainerConfig) and not container.inside_container():
        container.check(obj.container)
    return obj


def _reexec_in_container(cfg: Config, args: list[str]) -> None:
    """Runner mode with a container: this rank continues as `hpcseg` inside the image."""
    if not isinstance(cfg.container, ApptainerConfig) or container.inside_container():
        return
    if not isinstance(cfg.cluster, SlurmRunnerConfig):
        return
    out = Path(cfg.output.dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    cmd = container.runner_reexec(cfg.container, container.derived_binds(cfg, out), args)
    sys.stdout.flush()
    os.execvp(cmd[0], cmd)


@hydra.main(config_path="pkg://" + CONFIG_MODULE, config_name="config", version_base="1.3")
def _hydra_task(cfg: DictConfig) -> int:
    from hpcseg.app import run_job
    from hpcseg.data.sources import check

    try:
        obj = validate(cfg)
        check(obj.dataset)
        code = run_job(obj)
    except UserError as exc:
        _fail(str(exc))
        code = 2
    _exit_codes.append(code)
    return code


def main() -> None:
    """Console-script entry point."""
    register_configs()
    args = sys.argv[1:]
    if args[:1] == ["report"]:  # `hpcseg report <output.dir>`: pictures of a finished run
        from hpcseg.report import main as report_main

        sys.exit(report_main(args[1:]))
    try:
        if not HYDRA_FLAGS.intersection(a.split("=")[0] for a in args):
            cfg = load_config([a for a in args if not a.lstrip("+~").startswith("hydra")])
            _reexec_in_container(cfg, args)
        _hydra_task()
    except UserError as exc:
        _fail(str(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        _fail("interrupted; run the same command again to resume where it stopped")
        sys.exit(130)
    sys.exit(max(_exit_codes, default=0))
