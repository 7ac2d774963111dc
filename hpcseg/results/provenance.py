"""What produced a result: versions, host, the pipeline fingerprint."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import sys
from importlib import metadata

from omegaconf import OmegaConf

import hpcseg

# the dataset keys that change the rows or columns (µm columns, 3-D columns, the channel read,
# metadata columns), hashed with the pipeline; None values are left out of the hash
ROW_KEYS = ("pixel_size", "ndim", "z_step", "channel", "metadata_regex")
# pipeline keys that decide which images are accepted, not what an accepted image's rows hold:
# left out, so the fix an error message suggests can be applied to a folder's failed images
# (and ``backend``: where the stages run, recorded per image in the images table's backend
# column, so a folder begun on CPU nodes can be resumed on GPU nodes)
ACCEPTANCE_KEYS = ("require_integer_input", "backend")
MODE_KEYS = ("name", "chunk_size", "chunk_planes", "tile_above")  # what decides a mode's rows

PACKAGES = (
    "numpy",
    "scipy",
    "scikit-image",
    "dask",
    "distributed",
    "dask-image",
    "tifffile",
    "pyarrow",
    "hydra-core",
    "omegaconf",
)


def versions() -> dict[str, str]:
    out = {"hpcseg": hpcseg.__version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def fingerprint(pipeline: dict) -> str:
    """Hash of the resolved pipeline config (and pixel size) and the hpcseg version (16 hex)."""
    blob = json.dumps({"pipeline": pipeline, "hpcseg": hpcseg.__version__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_fingerprint(resolved: dict) -> str:
    """The fingerprint of a resolved config (plain data): what decides an image's rows and the
    tables' columns. A folder holds the results of one fingerprint only."""
    pipeline = {k: v for k, v in resolved["pipeline"].items() if k not in ACCEPTANCE_KEYS}
    geometry = {k: resolved["dataset"].get(k) for k in ROW_KEYS[:3]}
    columns = {k: resolved["dataset"].get(k) for k in ROW_KEYS[3:]}
    # the mode decides rows too: diameter=auto runs differently on whole images and on chunks
    # (which chunks are sampled)
    mode = {k: v for k, v in (resolved.get("mode") or {}).items() if k in MODE_KEYS}
    rows = {**pipeline, **geometry, **{k: v for k, v in columns.items() if v}}
    return fingerprint({**rows, "mode": mode} if mode else rows)


def file_metadata(
    resolved: dict, versions: dict[str, str], fingerprint: str, container: dict | None
) -> dict[bytes, bytes]:
    """The key-value metadata every Parquet part carries."""
    return {
        b"hpcseg.config": OmegaConf.to_yaml(resolved).encode(),
        b"hpcseg.versions": json.dumps(versions).encode(),
        b"hpcseg.fingerprint": fingerprint.encode(),
        b"hpcseg.container": json.dumps(container).encode(),
    }


def host() -> dict[str, str | int | None]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "user": os.environ.get("USER") or os.environ.get("LOGNAME"),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "argv": " ".join(sys.argv),
    }
