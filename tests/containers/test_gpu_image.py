"""The GPU image (containers/hpcseg-gpu.def, `containers/build.sh gpu`): CuPy and dask-cuda
import inside it, and hpcseg runs in it on the CPU, giving the rows of a run outside it. No GPU
is needed (CuPy imports without one); a machine with one runs the same checks. Marker
`apptainer`; the image is built once per source tree and cached like the CPU image."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import SMALL, reference_run, run_cli, stored_rows

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.apptainer, pytest.mark.slow]


def pins(name: str) -> dict[str, str]:
    """``{package: version}`` of a constraints file in containers/ (names in lower case)."""
    lines = (REPO / "containers" / name).read_text().splitlines()
    return dict(ln.lower().split("==") for ln in lines if "==" in ln and not ln.startswith("#"))


@pytest.fixture(scope="session")
def gpu_image() -> str:
    if shutil.which("apptainer") is None:
        message = "apptainer not installed; run containers/install-apptainer.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)
    if os.environ.get("HPCSEG_TEST_GPU_IMAGE"):
        return os.environ["HPCSEG_TEST_GPU_IMAGE"]
    # about 5 minutes on 2 cores when the source tree changed (3.5 GB of CUDA wheels), else cached
    built = subprocess.run(["bash", str(REPO / "containers" / "build.sh"), "gpu"],
                           capture_output=True, text=True, timeout=2400)  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    return built.stdout.strip().splitlines()[-1]


def in_image(image: str, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["apptainer", "exec", "--cleanenv", image, *command],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_cupy_and_dask_cuda_import_with_the_pinned_versions(gpu_image):
    probe = (
        "import json, cupy, cupyx.scipy.ndimage, dask, dask_cuda, distributed;"
        "print(json.dumps({'cupy': cupy.__version__, 'dask-cuda': dask_cuda.__version__,"
        " 'dask': dask.__version__, 'distributed': distributed.__version__,"
        " 'gpu': cupy.is_available()}))"
    )
    proc = in_image(gpu_image, "python", "-c", probe)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    pinned = pins("constraints-gpu.txt")
    assert seen["cupy"] == pinned["cupy-cuda12x"]
    # dask-cuda reports "26.10.00" for 26.10.0
    assert [int(p) for p in seen["dask-cuda"].split(".")] == [
        int(p) for p in pinned["dask-cuda"].split(".")
    ]
    # the dask that dask-cuda pins, in place of constraints.txt's
    assert seen["dask"] == seen["distributed"] == pinned["dask"] == pinned["distributed"]
    check = in_image(gpu_image, "python", "-m", "pip", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    inspect = ["apptainer", "inspect", "--json", "--labels", gpu_image]
    shown = subprocess.run(inspect, capture_output=True, text=True, check=True).stdout
    labels = json.loads(shown)["data"]["attributes"]["labels"]
    assert labels["org.opencontainers.image.title"] == "hpcseg-gpu"
    assert labels["hpcseg.cuda"] == "12"


def test_selftest_and_help_on_the_cpu(gpu_image):
    proc = in_image(gpu_image, "python", "-m", "hpcseg.selftest")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "hpcseg selftest:" in proc.stdout
    helped = subprocess.run(["apptainer", "run", "--cleanenv", gpu_image, "--help"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert helped.returncode == 0 and "hpcseg" in helped.stdout, helped.stderr


def test_a_run_with_nv_workers_in_the_image_gives_the_local_rows(gpu_image, tmp_path_factory):
    """The command line of a GPU node (container.nv=true adds --nv; Apptainer warns that it
    finds no NVIDIA driver here and goes on), the stages on the CPU."""
    plain = reference_run(tmp_path_factory, 2)
    tmp = tmp_path_factory.mktemp("gpu-image")
    out = tmp / "out"
    proc = run_cli("container=apptainer", f"container.image={gpu_image}", "container.nv=true",
                   "cluster.n_workers=1", "dataset.n_images=2", *SMALL, f"output.dir={out}",
                   cwd=tmp)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = pq.read_table(out / "images").to_pylist()
    assert {r["container"] for r in rows} == {gpu_image}  # the stages ran in the GPU image
    assert stored_rows(out, "objects") == stored_rows(plain, "objects")
