"""CPU against one GPU on the same synthetic frames: images/s, and the GPU's labels and columns
checked against the CPU's.

    python benchmarks/bench_gpu.py [--frames 200] [--workers N] [--gpu-threads 2]
                                   [--pipelines blog2021 nuclei]

Per pipeline, two whole commands on the same frames (start-up, read, segment, measure,
Parquet, label images): the CPU as hpcseg runs today (``cluster=local``, one worker per core,
``pipeline.backend=numpy``) and one GPU (``pipeline.backend=cupy``; ``cluster=local_gpu``, or
one ``cluster=local`` worker where dask-cuda is not installed).
The agreement columns compare the GPU's results with the CPU's: images whose label images are
identical, pixels whose labels agree, and, on the images with identical labels, the largest
relative difference of any measurement column. Where this machine has no GPU (or no CuPy or
dask-cuda), the GPU rows say why and only the CPU rows run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import tifffile

from hpcseg.data import synthetic
from hpcseg.pipeline import gpu
from hpcseg.results.evaluate import overlaps

SEED = 2021
SHAPE = (520, 696)


def run(folder: Path, pipeline: str, out: Path, extra: list[str]) -> dict:
    """One hpcseg command, timed as a whole."""
    cmd = [sys.executable, "-m", "hpcseg", "dataset=tiff_glob", f"dataset.path={folder}/*.tif",
           f"pipeline={pipeline}", f"output.dir={out}", "output.save_labels=true",
           "runner.batch_size=10", "runner.progress=none",
           "hydra.job_logging.root.level=WARNING", *extra]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=out.parent)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"wall": None, "note": f"failed: {tail[0]}"}
    summary = json.loads((out / "run.json").read_text())["summary"]
    return {"wall": wall, "note": f"{summary['objects']} objects"}


def gpu_cluster(threads: int) -> tuple[str, list[str]]:
    """Why the GPU rows cannot run here ('' if they can), and the GPU run's cluster settings:
    dask-cuda's cluster where it is installed, else one local worker (it sees the GPU)."""
    if not gpu.available():
        return "CuPy or a GPU is missing", []
    try:
        import dask_cuda  # noqa: F401
    except ImportError:
        return "", ["cluster=local", "cluster.n_workers=1", f"cluster.threads_per_worker={threads}"]
    return "", ["cluster=local_gpu", "cluster.devices=[0]", f"cluster.threads_per_worker={threads}"]


def objects(out: Path) -> dict[str, dict[str, np.ndarray]]:
    """Each image's objects table as columns."""
    table = pq.read_table(out / "objects")
    ids = table.column("image_id").to_numpy(zero_copy_only=False)
    columns = {c: table.column(c).to_numpy(zero_copy_only=False) for c in table.column_names}
    return {i: {c: v[ids == i] for c, v in columns.items()} for i in np.unique(ids)}


def agreement(cpu: Path, gpu: Path) -> str:
    """Identical label images; pixels in objects both found alike (IoU > 0.5, so one other
    split does not renumber the rest); the largest column difference on identical images."""
    names = sorted(p.name for p in (cpu / "labels").glob("*.tif"))
    identical = alike = foreground = nan_mismatches = 0
    worst = 0.0
    cpu_objects, gpu_objects = objects(cpu), objects(gpu)
    for name in names:
        a = tifffile.imread(cpu / "labels" / name)
        b = tifffile.imread(gpu / "labels" / name)
        _, _, inter, iou, _, _ = overlaps(a, b)
        alike += int(inter[iou > 0.5].sum())
        foreground += int(((a > 0) | (b > 0)).sum())
        if not np.array_equal(a, b):
            continue
        identical += 1
        image_id = name.removesuffix(".tif")
        for column, values in cpu_objects.get(image_id, {}).items():
            if values.dtype.kind not in "fiu":
                continue
            x = values.astype(np.float64)
            y = gpu_objects[image_id][column].astype(np.float64)
            nan_mismatches += int((np.isnan(x) != np.isnan(y)).sum())
            both = ~(np.isnan(x) | np.isnan(y))
            scale = np.maximum(np.maximum(np.abs(x), np.abs(y)), 1.0)[both]
            worst = max(worst, float(np.max(np.abs(x - y)[both] / scale, initial=0.0)))
    return (f"{identical}/{len(names)} identical label images, {alike / max(foreground, 1):.4%}"
            f" of foreground in alike objects; columns on identical images within {worst:.1e}"
            f" (relative, absolute below 1), {nan_mismatches} NaN mismatches")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--gpu-threads", type=int, default=2, help="threads of the GPU worker")
    ap.add_argument("--pipelines", nargs="+", default=["blog2021", "nuclei"])
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    tmp = Path(tempfile.mkdtemp(prefix="hpcseg-bench-gpu-"))
    folder = tmp / "frames"
    folder.mkdir()
    source = synthetic.synthetic_folder(None, SEED, SHAPE)
    for path in synthetic.ensure_frames(source, SEED, args.frames, SHAPE):
        os.symlink(path, folder / path.name)
    why_not, on_gpu = gpu_cluster(args.gpu_threads)
    rows = []
    for pipeline in args.pipelines:
        cpu_out, gpu_out = tmp / f"{pipeline}-cpu", tmp / f"{pipeline}-gpu"
        on_cpu = [f"cluster.n_workers={args.workers}", "pipeline.backend=numpy"]
        cpu = run(folder, pipeline, cpu_out, on_cpu)
        rows.append((pipeline, f"CPU, {args.workers} workers", cpu, None, ""))
        if why_not:
            rows.append(
                (pipeline, "1 GPU", {"wall": None, "note": f"not run: {why_not}"}, None, "")
            )
            continue
        gpu = run(folder, pipeline, gpu_out, [*on_gpu, "pipeline.backend=cupy"])
        ratio = cpu["wall"] / gpu["wall"] if cpu["wall"] and gpu["wall"] else None
        agree = agreement(cpu_out, gpu_out) if gpu["wall"] and cpu["wall"] else ""
        name = f"1 GPU, {args.gpu_threads} thr, {on_gpu[0].split('=')[1]}"
        rows.append((pipeline, name, gpu, ratio, agree))
    print(f"\nCPU vs GPU, {args.frames} synthetic frames {SHAPE[1]}x{SHAPE[0]} (seed {SEED})")
    header = f"{'pipeline':<9} | {'run':<22} | {'wall s':>7} | {'img/s':>6} | {'GPU/CPU':>7} | note"
    print(header)
    print("-" * len(header))
    for pipeline, name, r, ratio, agree in rows:
        wall = f"{r['wall']:7.1f}" if r["wall"] else f"{'-':>7}"
        rate = f"{args.frames / r['wall']:6.1f}" if r["wall"] else f"{'-':>6}"
        times = f"{ratio:6.1f}x" if ratio else f"{'':>7}"
        note = "; ".join(x for x in (r["note"], agree) if x)
        print(f"{pipeline:<9} | {name:<22} | {wall} | {rate} | {times} | {note}")


if __name__ == "__main__":
    main()
