"""Job scripts hpcseg generates or ships, parsed and checked exactly (no batch system needed)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from jobscripts import body, directives, options

REPO = Path(__file__).resolve().parents[2]


def test_slurm_job_script(job_script, tmp_path):
    script = job_script(
        "cluster=slurm",
        "cluster.queue=compute",
        "cluster.account=proj42",
        "cluster.cores=4",
        "cluster.processes=2",
        "cluster.memory=16GiB",
        "cluster.walltime=02:30:00",
        "cluster.job_directives=['--qos=long','--constraint=skylake']",
        "cluster.prologue=['module load python/3.11','export OMP_NUM_THREADS=1']",
        "cluster.interface=lo",
        "cluster.local_directory=/scratch/$USER",
        "cluster.worker_lifetime=55m",
    )
    assert script.startswith("#!/usr/bin/env bash\n")
    logs = tmp_path / "logs" / "workers"
    assert directives(script, "#SBATCH") == [
        "-J hpcseg-worker",
        f"-e {logs}/hpcseg-worker-%J.err",
        f"-o {logs}/hpcseg-worker-%J.out",
        "-p compute",
        "-A proj42",
        "-n 1",
        "--cpus-per-task=4",
        "--mem=16G",
        "-t 02:30:00",
        "--qos=long",
        "--constraint=skylake",
    ]
    lines = body(script)
    assert lines[:2] == ["module load python/3.11", "export OMP_NUM_THREADS=1"]
    worker = shlex.split(lines[2])
    assert worker[:4] == [sys.executable, "-m", "hpcseg.cluster.dask_worker", worker[3]]
    assert worker[3].startswith("tls://")  # TLS by default
    opts = options(worker[4:])
    assert opts["--nthreads"] == "2" and opts["--nworkers"] == "2" and "--nanny" in opts
    assert opts["--memory-limit"] == "8.00GiB"
    assert opts["--local-directory"] == "/scratch/$USER"
    assert opts["--lifetime"] == "55m" and opts["--lifetime-stagger"] == "5m"
    assert opts["--interface"] == "lo" and opts["--protocol"] == "tls://"
    for flag in ("--tls-ca-file", "--tls-cert", "--tls-key"):
        assert Path(opts[flag]).parent == logs


def test_slurm_job_script_without_tls(job_script):
    script = job_script("cluster=slurm", "cluster.tls=false")
    worker = body(script)[-1]
    assert " tcp://" in worker and "--tls" not in worker


def test_pbs_job_script(job_script, tmp_path):
    script = job_script(
        "cluster=pbs",
        "cluster.queue=workq",
        "cluster.account=proj42",
        "cluster.cores=8",
        "cluster.memory=32GiB",
        "cluster.walltime=04:00:00",
        "cluster.job_directives=['-m abe']",
        "cluster.prologue=['module load hpcseg']",
    )
    logs = tmp_path / "logs" / "workers"
    assert directives(script, "#PBS") == [
        "-N hpcseg-worker",
        "-q workq",
        "-A proj42",
        "-l select=1:ncpus=8:mem=32768MB",
        "-l walltime=04:00:00",
        f"-e {logs}/",
        f"-o {logs}/",
        "-m abe",
    ]
    lines = body(script)
    assert lines[0] == "module load hpcseg"
    assert "--nthreads 8" in lines[1] and "--memory-limit 32.00GiB" in lines[1]
    custom = job_script("cluster=pbs", "cluster.resource_spec='nodes=1:ppn=8'")
    assert "-l nodes=1:ppn=8" in directives(custom, "#PBS")


def test_sbatch_script_passes_overrides_to_the_runner():
    script = (REPO / "jobs" / "hpcseg.sbatch").read_text()
    assert subprocess.run(["bash", "-n", str(REPO / "jobs" / "hpcseg.sbatch")]).returncode == 0
    assert directives(script, "#SBATCH") == [
        "--job-name=hpcseg",
        "--ntasks=4",
        "--cpus-per-task=1",
        "--mem-per-cpu=4G",
        "--time=02:00:00",
        "--output=hpcseg-%j.out",
    ]
    srun = " ".join(body(script)[-3:]).replace("\\", " ")
    words = shlex.split(srun)
    assert words[:3] == ["srun", "--kill-on-bad-exit=1", "${hpcseg_cmd[@]}"]
    assert words[3] == "cluster=slurm_runner" and words[-1] == "$@"
    assert words[4].startswith("hydra.run.dir=${output.dir}/logs/slurm-")


def test_pbs_script():
    path = REPO / "jobs" / "hpcseg.pbs"
    script = path.read_text()
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    assert directives(script, "#PBS") == [
        "-N hpcseg",
        "-l select=1:ncpus=8:mem=32gb",
        "-l walltime=02:00:00",
        "-j oe",
    ]
    last = body(script)[-1]
    assert last == (
        'exec "${hpcseg_cmd[@]}" cluster=local cluster.n_workers="${NCPUS:-$(nproc)}" '
        '"${overrides[@]}"'
    )
