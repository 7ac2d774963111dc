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

# the dataset keys that change the rows (µm columns, 3-D columns), hashed with the pipeline
GEOMETRY_KEYS = ("pixel_size", "ndim", "z_step")

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
    """The fingerprint of a resolved config (plain data): its pipeline and data geometry."""
    geometry = {k: resolved["dataset"].get(k) for k in GEOMETRY_KEYS}
    return fingerprint({**resolved["pipeline"], **geometry})


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
