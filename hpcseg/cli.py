"""The `hpcseg` command: ``hpcseg [overrides]`` runs the job, ``hpcseg report DIR`` draws it.

The config is composed and validated once (:mod:`hpcseg.config.compose`), the cheap checks run
(:func:`hpcseg.run.job.preflight`), then Hydra's job machinery runs :func:`hpcseg.run.job.
run_job`. ``-m`` runs a Hydra sweep, each point validated on its own. Hydra's informational
flags (``--help``, ``--cfg``, ...) are left to Hydra.

Exit codes: 0 all images ok, 1 some images failed, 2 a configuration or usage error (reported
as one line on stderr before any cluster starts or any result is written), 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from hpcseg.cluster import cluster_kind, container_kind
from hpcseg.config.compose import (
    CONFIG_MODULE,
    CONFIG_NAME,
    register_configs,
    run_once,
    run_sweep,
    to_config,
)
from hpcseg.config.schemas import Config
from hpcseg.errors import UserError
from hpcseg.results.report import main as report_main
from hpcseg.run.job import JobResult, preflight, run_job

SWEEP_FLAGS = {"-m", "--multirun"}
# Hydra's informational flags: with these, Hydra does what a Hydra user expects.
HYDRA_FLAGS = {
    "-h", "--help", "--hydra-help", "--version", "-c", "--cfg", "-i", "--info", "-p",
    "--package", "--resolve", "-sc", "--shell-completion", "-cp", "--config-path", "-cn",
    "--config-name", "-cd", "--config-dir", "--experimental-rerun",
}  # fmt: skip


def _fail(message: str) -> None:
    print(f"hpcseg: error: {message}", file=sys.stderr, flush=True)


def _job(cfg: Config) -> JobResult:
    """Run one validated job; a user error found while running is one line and exit code 2."""
    try:
        return run_job(cfg)
    except UserError as exc:
        _fail(str(exc))
        return JobResult(2)


def sweep_point(composed: DictConfig) -> JobResult:
    """The task of one multirun point: its config validated and checked on its own."""
    try:
        cfg = to_config(composed)
        preflight(cfg)
    except UserError as exc:
        _fail(str(exc))
        return JobResult(2)
    return _job(cfg)


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
def _hydra_main(composed: DictConfig) -> JobResult:
    """Hydra's own entry point, for its informational flags."""
    return sweep_point(composed)


def run(argv: list[str]) -> int:
    """Run ``hpcseg argv``; return the exit code."""
    words = {a.split("=")[0] for a in argv}
    if words & HYDRA_FLAGS:
        register_configs()
        _hydra_main()
        return 0
    overrides = [a for a in argv if a not in SWEEP_FLAGS]
    if words & SWEEP_FLAGS:
        results = run_sweep(overrides, sweep_point)
        return max((r.exit_code for r in results), default=0)

    def before(cfg: Config) -> None:
        preflight(cfg)
        _reexec_in_container(cfg, argv)

    return run_once(overrides, _job, before).exit_code


def main() -> None:
    """Console-script entry point."""
    args = sys.argv[1:]
    if args[:1] == ["report"]:  # `hpcseg report <output.dir>`: pictures of a finished run
        sys.exit(report_main(args[1:]))
    try:
        code = run(args)
    except UserError as exc:
        _fail(str(exc))
        code = 2
    except KeyboardInterrupt:
        _fail("interrupted; run the same command again to resume where it stopped")
        code = 130
    sys.exit(code)
