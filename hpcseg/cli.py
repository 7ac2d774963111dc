"""The `hpcseg` command: ``hpcseg [overrides]`` runs the job, ``hpcseg -m ...`` a sweep,
``hpcseg keys [PREFIX]`` documents the keys, ``hpcseg report DIR`` draws a finished run.

The command line is read with Hydra's own flags. The config is composed and validated once
(:mod:`hpcseg.config.compose`), the cheap checks run (:func:`hpcseg.run.job.preflight`), then
Hydra's job machinery runs :func:`hpcseg.run.job.run_job`. ``-m`` composes and checks every
point of the sweep before the first runs. ``--help``, ``--cfg`` (with ``-p``, ``--resolve``) and
``--version`` are answered here; Hydra's other flags (``--hydra-help``, ``--info``,
``--shell-completion``, ``-cp``/``-cn``/``-cd``, ``--experimental-rerun``) are left to Hydra.

``--dry-run`` (= ``runner.dry_run=true``) says what a run would do in its folder, changing
nothing (not even Hydra's log folder).

Exit codes: 0 all images ok, 1 some images failed (or the run's own I/O failed: disk full),
2 a configuration or usage error (reported as one line on stderr before any cluster starts or
any result is written), 130 interrupted (SIGINT, Ctrl-C), 143 terminated (SIGTERM); after 1,
130 or 143 the same command resumes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra._internal.utils import get_args_parser
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from hpcseg import __version__
from hpcseg.cluster import cluster_kind, container_kind
from hpcseg.cluster.slurm import check_submission
from hpcseg.config.compose import (
    CONFIG_MODULE,
    CONFIG_NAME,
    HYDRA_VERSION,
    register_configs,
    run_once,
    to_config,
)
from hpcseg.config.keys import describe, sections
from hpcseg.config.schemas import Config
from hpcseg.config.show import check_overrides, help_text, show_config
from hpcseg.config.sweep_points import (
    current_point,
    launch,
    plan_sweep,
    point_config,
    wants_multirun,
)
from hpcseg.errors import UserError
from hpcseg.results.collect import main as collect_main
from hpcseg.results.report import main as report_main
from hpcseg.run.job import JobResult, dry_run, preflight, run_job
from hpcseg.run.signals import IOFailure
from hpcseg.run.sweep import (
    SweepStopped,
    drive,
    dry_run_sweep,
    require_ground_truth,
    run_point,
)

VERSION = f"hpcseg {__version__} (Hydra {HYDRA_VERSION})"
# Hydra's flags that hpcseg leaves to Hydra (argparse's names)
HYDRA_ONLY = ("hydra_help", "info", "shell_completion", "config_path", "config_name",
              "config_dir", "experimental_rerun")  # fmt: skip
# of those, the ones after which the overrides are not hpcseg's config (another config, a
# shell-completion command): they are not checked here first
OTHER_CONFIG = ("shell_completion", "config_path", "config_name", "config_dir",
                "experimental_rerun", "hydra_help")  # fmt: skip
KEYS_USAGE = (
    "usage: hpcseg keys [PREFIX]   every config key under PREFIX (e.g. pipeline.split, "
    "cluster.mem, dataset=tiff_glob) with its type, default, range and doc"
)


def _fail(message: str) -> None:
    print(f"hpcseg: error: {message}", file=sys.stderr, flush=True)


def _job(cfg: Config) -> JobResult:
    """Run one validated job; a user error found while running is one line and exit code 2."""
    try:
        return run_job(cfg)
    except UserError as exc:
        _fail(str(exc))
        return JobResult(2)


def sweep_point(composed: DictConfig) -> float:
    """The task of one multirun point, wherever the launcher runs it (here, a SLURM job): its
    config validated and checked on its own, output.dir its own folder; its end is recorded in
    its folder; returns its objective for an optimising sweeper (NaN if it has none)."""
    point = current_point()

    def load() -> Config:
        cfg = point_config(composed, point.folder)
        preflight(cfg)
        return cfg

    return run_point(point, load, run_job, _fail)


def _once_per_inputs(check: Callable[[Config], None]) -> Callable[[Config], None]:
    """``check`` run once per distinct dataset and container: a grid's points mostly share
    them, and checking a dataset globs its files."""
    passed: set[str] = set()

    def once(cfg: Config) -> None:
        key = repr((cfg.dataset, cfg.container))
        if key not in passed:
            check(cfg)  # a refusal raises, so the next point with these inputs is refused too
            passed.add(key)

    return once


def _sweep(overrides: list[str], argv: list[str]) -> int:
    """``hpcseg -m``: plan and check the sweep, run it (or, with --dry-run, say what each
    point would do), summarise it."""
    plan = plan_sweep(overrides, check=_once_per_inputs(preflight),
                      check_objective=require_ground_truth)  # fmt: skip
    if plan.composed.runner.dry_run:
        return dry_run_sweep(plan, dry_run)
    if plan.on_slurm:
        check_submission(plan.launcher_options)
    return drive(plan, lambda: launch(plan, sweep_point), _fail, argv)


def _reexec_in_container(cfg: Config, argv: list[str]) -> None:
    """Runner mode with a container: this rank continues as `hpcseg` inside the image."""
    if not cluster_kind(cfg.cluster).whole_process_in_container:
        return
    out = Path(cfg.output.dir).absolute()
    cmd = container_kind(cfg.container).reexec(cfg, out, argv)
    if cmd is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    os.execvp(cmd[0], cmd)


@hydra.main(config_path="pkg://" + CONFIG_MODULE, config_name=CONFIG_NAME, version_base="1.3")
def _hydra_main(composed: DictConfig) -> JobResult | float:
    """Hydra's own entry point, for the flags left to Hydra (``-cd``, ``--experimental-rerun``):
    one job, or with ``-m`` one sweep point."""
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        return sweep_point(composed)
    try:
        cfg = to_config(composed)
        preflight(cfg)
    except UserError as exc:
        _fail(str(exc))
        return JobResult(2)
    return _job(cfg)


def _parser() -> argparse.ArgumentParser:
    """Hydra's own argument parser (so flags read as in any Hydra app), with hpcseg's version
    and its mistakes as one-line UserErrors."""
    parser = get_args_parser()
    parser.prog = "hpcseg"
    parser._option_string_actions["--version"].version = VERSION

    def error(message: str):
        raise UserError(f"{message} (see `hpcseg --help`)")

    parser.error = error  # type: ignore[method-assign]
    return parser


def keys_main(argv: list[str]) -> int:
    """``hpcseg keys [PREFIX]``: every key under PREFIX with its type, default, range and doc."""
    if argv[:1] in (["-h"], ["--help"]):
        print(KEYS_USAGE)
        return 0
    if len(argv) > 1:
        usage = KEYS_USAGE.removeprefix("usage: ")
        _fail(f"hpcseg keys takes one PREFIX at most, got {len(argv)}: {usage}")
        return 2
    prefix = argv[0] if argv else ""
    lines = describe(prefix)
    if not lines:
        _fail(
            f"no config key starts with '{prefix}': keys start with one of "
            f"{', '.join(sections())} (or give group=kind, e.g. `hpcseg keys dataset=tiff_glob`)"
        )
        return 2
    print(
        "# the schemas' defaults; presets (pipeline=..., dataset=synthetic3d) set some others: "
        "`hpcseg --cfg job [overrides]` shows what a run uses"
    )
    print("\n".join(lines), flush=True)
    return 0


def run(argv: list[str]) -> int:
    """Run ``hpcseg argv``; return the exit code."""
    if "--dry-run" in argv:  # hpcseg's flag for runner.dry_run=true
        argv = [a for a in argv if a != "--dry-run"] + ["runner.dry_run=true"]
    args = _parser().parse_intermixed_args(argv)
    overrides: list[str] = args.overrides
    if any(getattr(args, name) for name in HYDRA_ONLY):
        if not any(getattr(args, name) for name in OTHER_CONFIG):
            check_overrides(overrides)  # a typo is one line, not Hydra's error
        register_configs()
        sys.argv = [sys.argv[0], *argv]
        _hydra_main()
        return 0
    if args.help:
        print(help_text(overrides, args.resolve), flush=True)
        return 0
    if args.cfg is not None:
        if args.multirun or args.run:
            raise UserError("--cfg shows one config without running: drop -m/-r")
        sys.stdout.write(show_config(overrides, args.cfg, args.package, args.resolve))
        sys.stdout.flush()
        return 0
    if args.resolve or args.package is not None:
        raise UserError("--resolve and -p/--package go with --cfg (or --resolve with --help)")
    if args.multirun or wants_multirun(overrides):
        return _sweep(overrides, argv)

    def before(cfg: Config) -> JobResult | None:
        preflight(cfg)
        if cfg.runner.dry_run:  # what the run would do, without Hydra's job (no log folder)
            return JobResult(dry_run(cfg))
        _reexec_in_container(cfg, argv)
        return None

    return run_once(overrides, _job, before).exit_code


def main() -> None:
    """Console-script entry point."""
    args = sys.argv[1:]
    if args[:1] == ["report"]:  # `hpcseg report <output.dir>`: pictures of a finished run
        sys.exit(report_main(args[1:]))
    if args[:1] == ["keys"]:  # `hpcseg keys [prefix]`: the keys' docs
        sys.exit(keys_main(args[1:]))
    if args[:1] == ["collect"]:  # `hpcseg collect <sweep dir>`: a sweep's points in one table
        sys.exit(collect_main(args[1:]))
    try:
        code = run(args)
    except SweepStopped as stop:  # a signal during a point of `hpcseg -cd ... -m` (Hydra's path)
        code = stop.exit_code
    except UserError as exc:
        _fail(str(exc))
        code = 2
    except IOFailure as exc:  # the run's own I/O (disk full): not a configuration error
        _fail(str(exc))
        code = 1
    except OSError as exc:  # the same before the job started (Hydra's log on a full disk)
        _fail(str(IOFailure(exc)))
        code = 1
    except KeyboardInterrupt:
        _fail("interrupted; run the same command again to resume where it stopped")
        code = 130
    sys.exit(code)
