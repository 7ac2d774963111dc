"""Apptainer: exact command lines (always), and real runs inside a built image (marker
`apptainer`; CI builds the image with containers/build.sh, cached between runs)."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import SMALL, reference_run, require_slurm, run_cli, stored_rows

from hpcseg.cluster import apptainer as container
from hpcseg.cluster import jobqueue_cluster
from hpcseg.config.compose import load_config
from hpcseg.config.schemas import ApptainerConfig
from hpcseg.errors import UserError

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------- command lines (no runtime)
def test_exec_prefix_exact():
    c = ApptainerConfig(image="/img/hpcseg.sif", binds=["/scratch:/scratch:ro"], env={"B": "2"},
                        nv=True, flags=["--contain"])  # fmt: skip
    cmd = container.exec_prefix(c, ["/data/my images", "/out"], env={"A": "1"})
    assert cmd == [
        "apptainer", "exec", "--cleanenv", "--nv",
        "--bind", "/data/my images:/data/my images", "--bind", "/out:/out",
        "--bind", "/scratch:/scratch:ro",
        "--env", "A=1", "--env", "B=2",
        "--contain", "/img/hpcseg.sif",
    ]  # fmt: skip
    python = container.worker_python(cmd)
    assert "'/data/my images:/data/my images'" in python
    assert shlex.split(python) == [*cmd, "python"]


def test_exec_prefix_without_cleanenv_and_bad_paths():
    c = ApptainerConfig(image="x.sif", cleanenv=False)
    cmd = container.exec_prefix(c, [])
    assert cmd == ["apptainer", "exec", str(Path("x.sif").absolute())]
    with pytest.raises(UserError, match="cannot express"):
        container.exec_prefix(c, ["/data/a,b"])
    with pytest.raises(UserError, match="values with ','"):
        container.exec_prefix(ApptainerConfig(image="x.sif", env={"X": "a,b"}), [])


def test_derived_binds(make_config, tmp_path):
    (tmp_path / "img" / "plate 1").mkdir(parents=True)
    (tmp_path / "img" / "plate 1" / "a.tif").write_bytes(b"")
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "a.tif").write_bytes(b"")
    cfg = make_config("dataset=tiff_glob", f"dataset.path={tmp_path}/img/*/*.tif",
                      f"dataset.masks={tmp_path}/gt/a.tif")  # fmt: skip
    out = tmp_path / "out"
    assert container.derived_binds(cfg, out) == [
        str(out),
        str(tmp_path / "img"),
        str(tmp_path / "gt"),
    ]
    nested = container.derived_binds(cfg, tmp_path / "img" / "out")
    assert nested == [str(tmp_path / "img" / "out"), str(tmp_path / "img"), str(tmp_path / "gt")]
    synthetic = make_config(f"dataset.cache_dir={tmp_path}/cache")
    assert container.derived_binds(synthetic, out) == [str(out), str(tmp_path / "cache")]


def test_worker_job_script_runs_python_in_the_image(tmp_path):
    image = tmp_path / "hpcseg.sif"
    image.write_bytes(b"")
    # composed and validated, not preflighted: writing the job script needs no runtime here
    cfg = load_config(["cluster=slurm", "container=apptainer", f"container.image={image}"])
    prefix = container.exec_prefix(cfg.container, container.derived_binds(cfg, tmp_path / "o"))
    cluster = jobqueue_cluster(cfg.cluster, tmp_path / "o", launcher=prefix)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    lines = script.strip().splitlines()
    prologue = container.job_prologue()
    assert lines[-1 - len(prologue) : -1] == prologue
    assert prologue[0] == 'export APPTAINERENV_SLURM_JOB_ID="${SLURM_JOB_ID:-}"'
    worker = shlex.split(lines[-1])
    assert worker[: len(prefix) + 3] == [*prefix, "python", "-m", "hpcseg.cluster.dask_worker"]


def test_runner_reexec_passes_slurm_variables(monkeypatch):
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("HPCSEG_CACHE_DIR", "/c")
    cmd = container.runner_reexec(ApptainerConfig(image="/i.sif"), ["/o"], ["cluster=slurm_runner"])
    assert cmd[-3:] == ["/i.sif", "hpcseg", "cluster=slurm_runner"]
    assert "SLURM_PROCID=3" in cmd and "HPCSEG_CACHE_DIR=/c" in cmd


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["container.image=/no/such.sif"], "container.image=/no/such.sif does not exist"),
        (["container.executable=no-such-apptainer", "container.image={image}"], "is not on PATH"),
        (
            ["container.image={image}", "container.binds=[/no/such/dir:/x]"],
            "bind source '/no/such/dir'",
        ),
    ],
)
def test_container_errors_are_one_line_exit_2(tmp_path, args, message):
    image = tmp_path / "i.sif"
    image.write_bytes(b"")
    if shutil.which("apptainer") is None and "no-such-apptainer" not in args[0]:
        # a command that exists, to reach the image and bind checks without Apptainer
        args = [*args, f"container.executable={shutil.which('true')}"]
    proc = run_cli("container=apptainer", *(a.format(image=image) for a in args),
                   f"output.dir={tmp_path}/out", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- real runs inside the image
@pytest.fixture(scope="session")
def image() -> str:
    if shutil.which("apptainer") is None:
        message = "apptainer not installed; run containers/install-apptainer.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)
    if os.environ.get("HPCSEG_TEST_IMAGE"):
        return os.environ["HPCSEG_TEST_IMAGE"]
    built = subprocess.run(["bash", str(REPO / "containers" / "build.sh"), "debootstrap"],
                           capture_output=True, text=True, timeout=1200)  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    return built.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return reference_run(tmp_path_factory, 6)


IGNORE = ("container", "slurm_job_id")


@pytest.mark.apptainer
@pytest.mark.slow
def test_local_workers_in_the_image_give_the_same_rows(image, plain, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("container=apptainer", f"container.image={image}", "cluster.n_workers=2",
                   "dataset.n_images=6", *SMALL, f"output.dir={out}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = pq.read_table(out / "images").to_pylist()
    assert {r["container"] for r in rows} == {image}  # APPTAINER_CONTAINER seen by the workers
    assert stored_rows(out, "objects") == stored_rows(plain, "objects")
    assert stored_rows(out, "images", IGNORE) == stored_rows(plain, "images", IGNORE)
    run = json.loads((out / "run.json").read_text())
    assert run["container"]["sha256"] == hashlib.sha256(Path(image).read_bytes()).hexdigest()
    assert run["container"]["labels"]["org.opencontainers.image.title"] == "hpcseg"
    meta = pq.read_schema(next((out / "objects").glob("*.parquet"))).metadata
    assert json.loads(meta[b"hpcseg.container"])["image"] == image


@pytest.mark.apptainer
@pytest.mark.slow
def test_a_tiled_mosaic_in_the_image_equals_the_local_run(image, tmp_path):
    from hpcseg.data.mosaic import write_mosaic

    slide = write_mosaic(tmp_path / "slide.zarr", (500, 600), 8, kind="zarr", chunk=200)
    tiled = ("dataset=zarr", f"dataset.path={slide}", "mode=tiled", "mode.chunk_size=200")
    local, inside = tmp_path / "local", tmp_path / "inside"
    assert run_cli(*tiled, f"output.dir={local}", cwd=tmp_path).returncode == 0
    proc = run_cli("container=apptainer", f"container.image={image}", *tiled,
                   f"output.dir={inside}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [row] = pq.read_table(inside / "images").to_pylist()
    assert row["mode"] == "tiled" and row["container"] == image  # the chunks ran in the image
    assert stored_rows(inside, "objects") == stored_rows(local, "objects")


@pytest.mark.apptainer
@pytest.mark.slurm
@pytest.mark.slow
def test_slurm_worker_jobs_in_the_image(image, plain, tmp_path):
    require_slurm()
    out = tmp_path / "out"
    proc = run_cli("cluster=slurm", "cluster.interface=lo", "container=apptainer",
                   f"container.image={image}", "dataset.n_images=6", *SMALL, f"output.dir={out}",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"exec --cleanenv --bind {out}:{out}" in proc.stdout  # the job script in the log
    rows = pq.read_table(out / "images").to_pylist()
    assert {r["container"] for r in rows} == {image}
    assert None not in {r["slurm_job_id"] for r in rows}
    assert stored_rows(out, "objects") == stored_rows(plain, "objects")


@pytest.mark.apptainer
@pytest.mark.slurm
@pytest.mark.slow
def test_sbatch_runner_inside_the_image(image, plain, tmp_path):
    require_slurm()
    from test_slurm import wait_for_job

    out = tmp_path / "out"
    submit = subprocess.run(
        ["sbatch", "--parsable", "--overcommit", "--ntasks=3", "--mem-per-cpu=1G",
         f"--output={tmp_path}/job-%j.out", str(REPO / "jobs" / "hpcseg.sbatch"),
         "container=apptainer", f"container.image={image}", "dataset.n_images=6", *SMALL,
         f"output.dir={out}"],
        capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "HPCSEG_CMD": f"{sys.executable} -m hpcseg"},
    )  # fmt: skip
    assert submit.returncode == 0, submit.stderr
    job_id = submit.stdout.strip().split(";")[0]
    info = wait_for_job(job_id)
    log = (tmp_path / f"job-{job_id}.out").read_text()
    assert info["JobState"] == "COMPLETED", log
    rows = pq.read_table(out / "images").to_pylist()
    assert {r["container"] for r in rows} == {image} and {r["slurm_job_id"] for r in rows} == {
        job_id
    }
    assert stored_rows(out, "objects") == stored_rows(plain, "objects")
    run = json.loads((out / "run.json").read_text())
    assert run["container"]["image"] == image  # the driver rank ran inside the image


@pytest.mark.apptainer
@pytest.mark.slow
def test_a_broken_image_fails_fast_with_the_reason(tmp_path):
    if shutil.which("apptainer") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but apptainer is not installed")
        pytest.skip("apptainer not installed; run containers/install-apptainer.sh")
    broken = tmp_path / "broken.sif"
    broken.write_bytes(b"this is not a SIF image")
    t0 = time.monotonic()
    proc = run_cli("container=apptainer", f"container.image={broken}", "dataset.n_images=2",
                   *SMALL, f"output.dir={tmp_path}/out", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("hpcseg: error:"))
    assert "every worker process exited before connecting" in line
    assert time.monotonic() - t0 < 120  # not the 300 s worker timeout
