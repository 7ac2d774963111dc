"""GPU cluster kinds without a GPU: the job scripts of slurm_gpu and pbs_gpu parsed and checked
exactly, their config errors, dask-cuda missing, --nv for GPU workers, local_gpu in a container,
jobs/hpcseg-gpu.sbatch. (On a real SLURM with fake GPUs: tests/cluster/test_slurm_gpu.py.)"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from jobscripts import body, directives, options

from hpcseg.cluster import container_kind, slurm_runner, start_cluster
from hpcseg.cluster.apptainer import job_prologue
from hpcseg.cluster.core import uses_gpus
from hpcseg.config.compose import load_config
from hpcseg.config.schemas import SlurmRunnerConfig
from hpcseg.errors import UserError

REPO = Path(__file__).resolve().parents[2]
# the options of dask-cuda's worker command (dask_cuda/cli.py, 24.08 to 26.x) hpcseg's scripts
# may pass: it has no --nworkers, --nanny, --lifetime or --lifetime-stagger
DASK_CUDA_OPTIONS = {"--name", "--nthreads", "--memory-limit", "--death-timeout", "--interface",
                     "--protocol", "--tls-ca-file", "--tls-cert", "--tls-key",
                     "--local-directory"}  # fmt: skip
NO_DASK_CUDA = "cluster={} needs dask-cuda: pip install 'hpcseg[gpu]'"
TRUE = shutil.which("true")  # a container runtime that exists, for command lines only


@pytest.fixture
def without_dask_cuda(monkeypatch):
    """dask-cuda not importable, also where it is installed."""
    monkeypatch.setitem(sys.modules, "dask_cuda", None)


# ------------------------------------------------------------------------------ job scripts
def test_slurm_gpu_job_script(job_script, tmp_path):
    script = job_script(
        "cluster=slurm_gpu",
        "cluster.queue=gpu",
        "cluster.cores=8",
        "cluster.gpus=2",
        "cluster.memory=64GiB",
        "cluster.job_directives=['--qos=long']",
        "cluster.interface=lo",
    )
    logs = tmp_path / "logs" / "workers"
    assert directives(script, "#SBATCH") == [
        "-J hpcseg-worker",
        f"-e {logs}/hpcseg-worker-%J.err",
        f"-o {logs}/hpcseg-worker-%J.out",
        "-p gpu",
        "-n 1",
        "--cpus-per-task=8",
        "--mem=64G",
        "-t 01:00:00",
        "--gres=gpu:2",
        "--qos=long",
    ]
    worker = shlex.split(body(script)[-1])
    assert worker[:4] == [sys.executable, "-m", "dask_cuda.cli", worker[3]]
    assert worker[3].startswith("tls://")
    opts = options(worker[4:])
    assert set(opts) <= DASK_CUDA_OPTIONS, set(opts) - DASK_CUDA_OPTIONS
    # per GPU worker: the job's cores and memory shared between its 2 GPUs
    assert opts["--nthreads"] == "4" and opts["--memory-limit"] == "32.00GiB"
    assert opts["--interface"] == "lo" and opts["--protocol"] == "tls://"


def test_slurm_gpu_defaults_one_gpu_and_no_lifetime(job_script):
    script = job_script("cluster=slurm_gpu", "cluster.tls=false")
    assert "#SBATCH --gres=gpu:1" in script.splitlines()
    worker = shlex.split(body(script)[-1])
    assert worker[2] == "dask_cuda.cli" and worker[3].startswith("tcp://")
    opts = options(worker[4:])
    assert set(opts) <= DASK_CUDA_OPTIONS
    assert opts["--nthreads"] == "1" and opts["--memory-limit"] == "2.00GiB"
    assert "--lifetime" not in worker and "--nworkers" not in worker and "--nanny" not in worker


def test_pbs_gpu_job_script(job_script, tmp_path):
    script = job_script(
        "cluster=pbs_gpu",
        "cluster.queue=gpuq",
        "cluster.cores=8",
        "cluster.gpus=2",
        "cluster.memory=32GiB",
    )
    logs = tmp_path / "logs" / "workers"
    assert directives(script, "#PBS") == [
        "-N hpcseg-worker",
        "-q gpuq",
        "-l select=1:ncpus=8:mem=32768MB:ngpus=2",
        "-l walltime=01:00:00",
        f"-e {logs}/",
        f"-o {logs}/",
    ]
    worker = shlex.split(body(script)[-1])
    assert worker[:3] == [sys.executable, "-m", "dask_cuda.cli"]
    opts = options(worker[4:])
    assert set(opts) <= DASK_CUDA_OPTIONS
    assert opts["--nthreads"] == "4" and opts["--memory-limit"] == "16.00GiB"
    default = job_script("cluster=pbs_gpu")
    assert "-l select=1:ncpus=1:mem=2048MB:ngpus=1" in directives(default, "#PBS")
    custom = job_script("cluster=pbs_gpu", "cluster.resource_spec='select=2:ngpus=4'")
    assert "-l select=2:ngpus=4" in directives(custom, "#PBS")  # as given


def test_a_cpu_worker_module_goes_the_same_way(job_script):
    """cluster.worker_module=hpcseg.cluster.dask_worker (the SLURM test's CPU stand-in): the
    same job, one Dask worker per GPU (--nworkers), with hpcseg's nanny."""
    script = job_script("cluster=slurm_gpu", "cluster.gpus=2", "cluster.cores=2",
                        "cluster.worker_module=hpcseg.cluster.dask_worker")  # fmt: skip
    assert "--gres=gpu:2" in directives(script, "#SBATCH")
    worker = shlex.split(body(script)[-1])
    assert worker[2] == "hpcseg.cluster.dask_worker"
    opts = options(worker[4:])
    assert opts["--nworkers"] == "2" and "--nanny" in opts and opts["--nthreads"] == "1"


def test_gpu_job_script_in_a_container_gets_nv_and_the_gpus(job_script, make_config, tmp_path):
    image = tmp_path / "gpu.sif"
    image.write_bytes(b"")
    overrides = ["cluster=slurm_gpu", "container=apptainer", f"container.image={image}",
                 f"container.executable={TRUE}"]  # fmt: skip
    cfg = make_config(*overrides)
    launcher, _ = container_kind(cfg.container).launcher(cfg, tmp_path / "out")
    assert launcher[:4] == [TRUE, "exec", "--cleanenv", "--nv"]
    lines = body(job_script(*overrides, launcher=launcher))
    assert lines[-1 - len(job_prologue()) : -1] == job_prologue()
    assert (
        '[ -z "${CUDA_VISIBLE_DEVICES+set}" ] || '
        'export APPTAINERENV_CUDA_VISIBLE_DEVICES="$CUDA_VISIBLE_DEVICES"'
    ) in lines
    worker = shlex.split(lines[-1])
    assert worker[: len(launcher) + 3] == [*launcher, "python", "-m", "dask_cuda.cli"]
    cpu = make_config(*overrides[1:])  # cluster=local: no --nv unless container.nv=true
    assert "--nv" not in container_kind(cpu.container).launcher(cpu, tmp_path / "out")[0]


def test_gpu_runner_ranks_reexecute_with_nv_and_the_gpus(tmp_path, monkeypatch):
    monkeypatch.delenv("APPTAINER_CONTAINER", raising=False)
    monkeypatch.delenv("SINGULARITY_CONTAINER", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    image = tmp_path / "gpu.sif"
    base = ["cluster=slurm_runner", "container=apptainer", f"container.image={image}"]
    gpu = load_config([*base, "cluster.worker_class=dask_cuda.CUDAWorker"])
    cmd = container_kind(gpu.container).reexec(gpu, tmp_path / "out", ["cluster=slurm_runner"])
    assert cmd[:4] == ["env", "APPTAINERENV_CUDA_VISIBLE_DEVICES=0,1", "apptainer", "exec"]
    assert "--nv" in cmd and cmd[-2:] == ["hpcseg", "cluster=slurm_runner"]
    cpu = load_config(base)
    assert "--nv" not in container_kind(cpu.container).reexec(cpu, tmp_path / "out", [])


def test_which_clusters_use_gpus():
    kinds = {
        "cluster=local_gpu": True,
        "cluster=slurm_gpu": True,
        "cluster=pbs_gpu": True,
        "cluster=local": False,
        "cluster=slurm": False,
        "cluster=slurm_runner": False,
    }
    for override, expected in kinds.items():
        assert uses_gpus(load_config([override]).cluster) is expected, override
    assert uses_gpus(SlurmRunnerConfig(worker_class="dask_cuda.CUDAWorker"))
    assert not uses_gpus(SlurmRunnerConfig(worker_class="distributed.Worker"))


def test_gpu_sbatch_script_runs_the_runner_with_cuda_workers():
    path = REPO / "jobs" / "hpcseg-gpu.sbatch"
    script = path.read_text()
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    assert directives(script, "#SBATCH") == [
        "--job-name=hpcseg-gpu",
        "--nodes=1",
        "--ntasks=3",
        "--cpus-per-task=4",
        "--mem-per-cpu=4G",
        "--gres=gpu:1",
        "--time=02:00:00",
        "--output=hpcseg-gpu-%j.out",
    ]
    srun = " ".join(body(script)[-4:]).replace("\\", " ")
    words = shlex.split(srun)
    assert words[:4] == ["srun", "--kill-on-bad-exit=1", "--distribution=cyclic",
                         "${hpcseg_cmd[@]}"]  # fmt: skip
    assert words[4:6] == ["cluster=slurm_runner", "cluster.worker_class=dask_cuda.CUDAWorker"]
    assert words[6].startswith("hydra.run.dir=${output.dir}/logs/slurm-") and words[-1] == "$@"
    composed = load_config(["cluster=slurm_runner", *words[5:6]])  # composes as written
    assert composed.cluster.worker_class == "dask_cuda.CUDAWorker"


# ---------------------------------------------------------------------------- config errors
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["cluster=slurm_gpu", "cluster.worker_lifetime=55m"],
            "cluster.worker_lifetime=55m is not available with cluster=slurm_gpu: dask-cuda's "
            "worker has no --lifetime; leave it null (a job ends at cluster.walltime)",
        ),
        (
            ["cluster=pbs_gpu", "cluster.worker_lifetime=1h"],
            "cluster.worker_lifetime=1h is not available with cluster=pbs_gpu: dask-cuda's "
            "worker has no --lifetime; leave it null (a job ends at cluster.walltime)",
        ),
        (
            ["cluster=slurm_gpu", "cluster.processes=2", "cluster.cores=2"],
            "cluster.processes=2 does not apply to cluster=slurm_gpu: dask-cuda starts one "
            "worker per GPU; set cluster.gpus instead",
        ),
        (
            ["cluster=slurm_gpu", "cluster.gpus=4", "cluster.cores=2"],
            "cluster.cores=2 is fewer than cluster.gpus=4: each GPU's worker needs a core of "
            "the job",
        ),
        (["cluster=slurm_gpu", "cluster.gpus=0"], "cluster.gpus=0 is out of range: must be >= 1"),
        (
            ["cluster=local_gpu", "cluster.devices=[]"],
            "cluster.devices=[] selects no GPU: list them, e.g. cluster.devices=[0,1], or "
            "cluster.devices=null for every GPU",
        ),
        (["cluster=local_gpu", "cluster.memory_limit=lots"], "cluster.memory_limit=lots is not"),
    ],
)
def test_gpu_config_errors_are_one_line(overrides, message):
    with pytest.raises(UserError) as err:
        load_config(overrides)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_gpu_kinds_compose_with_their_keys():
    local = load_config(["cluster=local_gpu", "cluster.devices=[0,GPU-5a1b]"]).cluster
    assert local.devices == ["0", "GPU-5a1b"] and local.threads_per_worker == 1
    slurm = load_config(["cluster=slurm_gpu"]).cluster
    assert (slurm.gpus, slurm.worker_module, slurm.processes) == (1, "dask_cuda.cli", 1)
    assert load_config(["cluster=pbs_gpu", "cluster.gpus=2", "cluster.cores=2"]).cluster.gpus == 2


@pytest.mark.slow
def test_worker_lifetime_with_a_gpu_kind_is_exit_2_and_one_line(tmp_path):
    proc = run_cli("cluster=slurm_gpu", "cluster.worker_lifetime=55m",
                   f"output.dir={tmp_path}/out", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("hpcseg: error:")]
    assert len(errors) == 1 and "dask-cuda's worker has no --lifetime" in errors[0]
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


# -------------------------------------------------------------------------- dask-cuda missing
def test_local_gpu_without_dask_cuda_is_one_line(make_config, tmp_path, without_dask_cuda):
    cfg = make_config("cluster=local_gpu")
    with pytest.raises(UserError) as err, start_cluster(cfg.cluster, tmp_path):
        pass
    assert str(err.value) == NO_DASK_CUDA.format("local_gpu")


@pytest.mark.parametrize("kind", ["slurm_gpu", "pbs_gpu"])
def test_gpu_jobs_without_dask_cuda_here_fail_before_submitting(
    make_config, tmp_path, without_dask_cuda, kind
):
    cfg = make_config(f"cluster={kind}")
    with pytest.raises(UserError) as err, start_cluster(cfg.cluster, tmp_path):
        pass
    assert str(err.value).startswith(NO_DASK_CUDA.format(kind) + " (its worker jobs run this")
    assert not (tmp_path / "logs").exists()  # nothing submitted, no job script written


def test_a_runner_worker_class_that_does_not_import_is_one_line(without_dask_cuda):
    cfg = SlurmRunnerConfig(worker_class="dask_cuda.CUDAWorker")
    with pytest.raises(UserError) as err:
        slurm_runner._worker_class(cfg)
    assert str(err.value).startswith("cluster.worker_class=dask_cuda.CUDAWorker cannot be")
    assert str(err.value).endswith("; pip install 'hpcseg[gpu]'")
    assert slurm_runner._worker_class(SlurmRunnerConfig()) == {}
    assert slurm_runner._worker_class(SlurmRunnerConfig(worker_class="distributed.Worker")) == {
        "worker_class": "distributed.Worker"
    }


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("dask_cuda") is not None, reason="dask-cuda here")
def test_local_gpu_without_dask_cuda_is_exit_2(tmp_path):
    proc = run_cli("cluster=local_gpu", "dataset.n_images=1", f"output.dir={tmp_path}/out",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("hpcseg: error:")]
    assert errors == ["hpcseg: error: " + NO_DASK_CUDA.format("local_gpu")], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_local_gpu_in_a_container_hands_the_devices_in(make_config, tmp_path):
    """cluster=local_gpu with a container: one dask-cuda worker command through the launcher,
    cluster.devices as the container's CUDA_VISIBLE_DEVICES (APPTAINERENV_...). The stand-in
    launcher runs Dask's worker where the image would run dask-cuda's."""
    launcher = tmp_path / "fake-apptainer"
    launcher.write_text(
        "#!/bin/sh\n"
        '[ "$1 $2 $3" = "python -m dask_cuda.cli" ] || exit 3\n'
        'export CUDA_VISIBLE_DEVICES="$APPTAINERENV_CUDA_VISIBLE_DEVICES"\n'
        f'shift 3; exec {sys.executable} -m hpcseg.cluster.dask_worker "$@"\n'
    )
    launcher.chmod(0o755)
    cfg = make_config("cluster=local_gpu", "cluster.devices=[2,3]")
    with start_cluster(cfg.cluster, tmp_path, [str(launcher)]) as client:
        seen = client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))
    assert list(seen.values()) == ["2,3"]
