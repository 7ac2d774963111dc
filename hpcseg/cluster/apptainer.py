"""Apptainer command lines: how a command runs inside the configured image.

One function, :func:`exec_prefix`, makes ``apptainer exec [--cleanenv] [--nv] --bind ... --env ...
IMAGE``; hpcseg puts ``python`` after it for dask-jobqueue's worker command (``python=``), starts
local workers with it, and re-executes ``hpcseg`` with it on each rank of a runner allocation.
With a GPU cluster (dask-cuda workers) ``--nv`` is added whatever ``container.nv`` says, and
the batch system's ``CUDA_VISIBLE_DEVICES`` is handed to the container (``--cleanenv`` drops it).
Folders the job reads or writes (dataset, masks, output, synthetic cache) are bound at the same
path inside, so every path in the config means the same file in and out of the image.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from hpcseg.cluster.containers import ContainerKind
from hpcseg.cluster.core import uses_gpus
from hpcseg.config.schemas import ApptainerConfig, Config
from hpcseg.data import sources
from hpcseg.errors import UserError

# Variables a rank of a runner allocation needs inside the image, even with --cleanenv.
PASS_THROUGH_PREFIXES = ("SLURM_", "HPCSEG_")
# the GPUs the batch system gave the job; a list with commas, so not an --env value
GPU_VARIABLE = "CUDA_VISIBLE_DEVICES"


def inside_container() -> str | None:
    """The image this process runs in (Apptainer sets APPTAINER_CONTAINER), or None."""
    return os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")


def derived_binds(cfg: Config, output_dir: Path) -> list[str]:
    """Folders this job reads or writes, each bound at the same path inside."""
    folders = [Path(output_dir).absolute(), *sources.folders(cfg.dataset)]
    unique: list[str] = []
    for folder in folders:
        if str(folder) not in unique and not any(
            str(folder).startswith(u + os.sep) for u in unique
        ):
            unique.append(str(folder))
    return unique


def _check_path(path: str, what: str) -> None:
    if "," in path or ":" in path:
        raise UserError(
            f"{what} '{path}' contains ',' or ':', which apptainer --bind cannot express"
        )


def exec_prefix(
    c: ApptainerConfig, binds: list[str], env: dict[str, str] | None = None
) -> list[str]:
    """``apptainer exec ... IMAGE`` as a word list (quote with shlex.join for a shell)."""
    cmd = [c.executable, "exec"]
    if c.cleanenv:
        cmd.append("--cleanenv")
    if c.nv:
        cmd.append("--nv")
    for folder in binds:
        _check_path(folder, "bind folder")
        cmd += ["--bind", f"{folder}:{folder}"]
    for extra in c.binds:
        cmd += ["--bind", extra]
    for key, value in sorted({**(env or {}), **c.env}.items()):
        if "," in str(value):
            raise UserError(
                f"container.env {key}: values with ',' cannot be passed by apptainer --env"
            )
        cmd += ["--env", f"{key}={value}"]
    cmd += list(c.flags)
    cmd.append(str(Path(c.image).expanduser().absolute()))
    return cmd


def worker_python(prefix: list[str]) -> str:
    """The worker Python for dask-jobqueue's job script (inserted verbatim: shell-quoted)."""
    return shlex.join([*prefix, "python"])


def job_prologue() -> list[str]:
    """Job-script lines that hand the batch job's id (and its GPUs, where it has some) to a
    --cleanenv container."""
    return [
        'export APPTAINERENV_SLURM_JOB_ID="${SLURM_JOB_ID:-}"',
        'export APPTAINERENV_PBS_JOBID="${PBS_JOBID:-}"',
        f'[ -z "${{{GPU_VARIABLE}+set}}" ] || export APPTAINERENV_{GPU_VARIABLE}="${GPU_VARIABLE}"',
    ]


def for_cluster(cfg: Config) -> ApptainerConfig:
    """The container settings for ``cfg``'s cluster: ``--nv`` when its workers use GPUs."""
    if uses_gpus(cfg.cluster) and not cfg.container.nv:
        return dataclasses.replace(cfg.container, nv=True)
    return cfg.container


def check(c: ApptainerConfig) -> None:
    """Refuse (UserError) a missing runtime, image or bind source before anything starts."""
    if shutil.which(c.executable) is None:
        raise UserError(
            f"container=apptainer: '{c.executable}' is not on PATH; install Apptainer "
            "(containers/install-apptainer.sh on Debian) or set container.executable"
        )
    image = Path(c.image).expanduser()
    if not image.exists():
        raise UserError(
            f"container.image={c.image} does not exist; build one with containers/build.sh"
        )
    for extra in c.binds:
        source = extra.split(":", 1)[0]
        if not Path(source).expanduser().exists():
            raise UserError(f"container.binds: bind source '{source}' does not exist")


def runner_reexec(c: ApptainerConfig, binds: list[str], argv: list[str]) -> list[str]:
    """The command that runs this same `hpcseg` invocation inside the image (runner mode)."""
    passed = {
        k: v for k, v in os.environ.items() if k.startswith(PASS_THROUGH_PREFIXES) and "," not in v
    }
    gpus = os.environ.get(GPU_VARIABLE)
    env = ["env", f"APPTAINERENV_{GPU_VARIABLE}={gpus}"] if gpus is not None else []
    return [*env, *exec_prefix(c, binds, passed), "hpcseg", *argv]


def provenance_inside() -> dict:
    """What the image says about itself, from inside it (its file may not be visible here)."""
    labels: dict = {}
    with contextlib.suppress(OSError, ValueError):
        labels = json.loads(Path("/.singularity.d/labels.json").read_text())
    return {"image": inside_container(), "sha256": None, "labels": labels}


def provenance(c: ApptainerConfig) -> dict:
    """Image path, SHA-256 digest and labels, recorded with the results."""
    image = Path(c.image).expanduser().absolute()
    digest = hashlib.sha256()
    if image.is_file():
        with open(image, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    labels: dict = {}
    try:
        out = subprocess.run(
            [c.executable, "inspect", "--json", "--labels", str(image)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        data = json.loads(out.stdout) if out.returncode == 0 else {}
        labels = data.get("data", {}).get("attributes", {}).get("labels", {}) or {}
    except (OSError, ValueError, subprocess.TimeoutExpired):
        pass
    return {
        "image": str(image),
        "sha256": digest.hexdigest() if image.is_file() else None,
        "labels": labels,
    }


def _check_outside(cfg: ApptainerConfig) -> None:
    if not inside_container():  # inside the image (runner mode) the image itself is not here
        check(cfg)


def _launcher(cfg: Config, output_dir: Path) -> tuple[list[str] | None, dict | None]:
    if inside_container():  # runner mode, already re-executed inside the image
        return None, provenance_inside()
    binds = derived_binds(cfg, output_dir)
    return exec_prefix(for_cluster(cfg), binds), provenance(cfg.container)


def _reexec(cfg: Config, output_dir: Path, argv: list[str]) -> list[str] | None:
    if inside_container():
        return None
    return runner_reexec(for_cluster(cfg), derived_binds(cfg, output_dir), argv)


KIND = ContainerKind(
    schema=ApptainerConfig, check=_check_outside, launcher=_launcher, reexec=_reexec
)
