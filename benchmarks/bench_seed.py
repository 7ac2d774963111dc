"""Time hpcseg against the 2021 dask-image blog pipeline on the same synthetic frames.

    python benchmarks/bench_seed.py [--frames 20 200] [--cap 120] [--workers 2]

Rows, per frame count: (a) the blog as written (dask-image, threaded scheduler), (a') the blog
with every stage persisted, (b) `hpcseg pipeline=blog2021`, (c) `hpcseg pipeline=nuclei` and (c')
the default before the diameter, `nuclei_v1` (whole commands: start-up, read, segment,
measure, Parquet), (d) floors: a tifffile read of every
frame, and scipy's large-sigma float64 threshold Gaussian alone, one frame after another on all
cores. Every run is its own process tree, timed as a whole; runs that pass the cap are stopped
and reported as "not finished in N s" with what they completed. Peak RSS is the largest single
process of the run (driver, worker or pool process).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage as ndi

from hpcseg.data import synthetic

SEED = 2021

BLOG_SCRIPT = r"""
import sys, time, numpy as np, dask
from dask_image.imread import imread
from dask_image import ndfilters, ndmorph, ndmeasure
t0 = time.perf_counter()
persist = sys.argv[2] == "persist"
def stage(name, x):
    if persist:
        x = x.persist()
        print(f"{name} {time.perf_counter() - t0:.2f}", flush=True)
    return x
with dask.config.set(scheduler="threads"):
    images = stage("read", imread(sys.argv[1]))
    smoothed = stage("smooth", ndfilters.gaussian_filter(images, sigma=[0, 1, 1]))
    thresh = stage("threshold", ndfilters.threshold_local(smoothed, images.chunksize))
    threshold_images = smoothed > thresh
    structuring_element = np.array([
        [[0, 0, 0], [0, 0, 0], [0, 0, 0]],
        [[0, 1, 0], [1, 1, 1], [0, 1, 0]],
        [[0, 0, 0], [0, 0, 0], [0, 0, 0]]])
    binary_images = stage(
        "open", ndmorph.binary_opening(threshold_images, structure=structuring_element))
    label_images, num_features = ndmeasure.label(binary_images)
    if persist:
        label_images, num_features = dask.persist(label_images, num_features)
        print(f"label {time.perf_counter() - t0:.2f}", flush=True)
    index = np.arange(num_features - 1) + 1
    print(f"labelled {len(index) + 1} {time.perf_counter() - t0:.2f}", flush=True)
    area = ndmeasure.area(images, label_images, index)
    mean_intensity = ndmeasure.mean(images, label_images, index)
    dask.compute(area, mean_intensity)
    print(f"measured {time.perf_counter() - t0:.2f}", flush=True)
"""


def measure(cmd: list[str], cap: float | None = None) -> tuple[float, float, str, bool]:
    """Run ``cmd``; return (wall s, peak RSS MB of its largest process, stdout, finished)."""
    with tempfile.TemporaryFile("w+") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.DEVNULL, text=True, start_new_session=True
        )
        deadline = None if cap is None else t0 + cap
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline and time.perf_counter() > deadline:
                os.killpg(proc.pid, 9)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read()
    finished = os.waitstatus_to_exitcode(status) == 0
    return wall, usage.ru_maxrss / 1024, text, finished


def run_blog(glob: str, mode: str, cap: float) -> dict:
    """The blog's script in a subprocess, stopped at the cap."""
    wall, rss, out, finished = measure([sys.executable, "-c", BLOG_SCRIPT, glob, mode], cap)
    lines = out.split("\n")
    labelled = next((line.split() for line in lines if line.startswith("labelled")), None)
    note = ""
    if not finished:
        done = [
            line.split()[0] for line in lines if line.strip() and not line.startswith("measured")
        ]
        note = f"not finished in {cap:.0f} s (done: {', '.join(done) or 'nothing'}"
        if labelled:
            note += f"; {labelled[1]} objects labelled at {float(labelled[2]):.1f} s"
            note += ", measuring them did not finish"
        note += ")"
    return {"wall": wall if finished else None, "note": note, "rss": rss}


def run_hpcseg(folder: Path, pipeline: str, workers: int, out: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "hpcseg",
        "dataset=tiff_glob",
        f"dataset.path={folder}/*.tif",
        f"pipeline={pipeline}",
        f"output.dir={out}",
        f"cluster.n_workers={workers}",
        "runner.batch_size=10",
        "runner.progress=none",
        "hydra.job_logging.root.level=WARNING",
    ]
    wall, rss, _, finished = measure(cmd)
    if not finished:
        raise SystemExit(f"hpcseg failed: {' '.join(cmd)}")
    summary = json.loads((out / "run.json").read_text())["summary"]
    note = f"{summary['objects']} objects; compute {summary['compute_seconds']:.1f} s"
    return {"wall": wall, "note": note, "rss": rss}


def _read(path: str) -> int:
    return int(tifffile.imread(path).size)


def _threshold_gaussian(path: str) -> float:
    x = tifffile.imread(path).astype(np.float64)
    sigma = [(s - 1) / 6.0 for s in x.shape]
    return float(ndi.gaussian_filter(x, sigma, mode="reflect")[0, 0])


FLOORS = {"read": _read, "gauss": _threshold_gaussian}


def floor_main(kind: str, glob: str, workers: int) -> None:
    """Subprocess body of a floor run: apply one floor function to every frame."""
    import glob as globbing

    paths = sorted(globbing.glob(glob))
    fn = FLOORS[kind]
    if workers == 1:
        list(map(fn, paths))
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(fn, paths, chunksize=max(1, len(paths) // (4 * workers))))


def run_floor(glob: str, kind: str, workers: int) -> dict:
    cmd = [sys.executable, __file__, "--floor", kind, glob, "--workers", str(workers)]
    wall, rss, _, finished = measure(cmd)
    if not finished:
        raise SystemExit(f"floor run failed: {' '.join(cmd)}")
    return {"wall": wall, "note": "includes Python start-up", "rss": rss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[20, 200])
    ap.add_argument("--cap", type=float, default=120.0, help="seconds allowed to a blog run")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--floor", nargs=2, metavar=("KIND", "GLOB"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.floor:
        return floor_main(args.floor[0], args.floor[1], args.workers)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    tmp = Path(tempfile.mkdtemp(prefix="hpcseg-bench-"))
    rows = []
    for n in args.frames:
        folder = tmp / f"frames{n}"
        folder.mkdir()
        src = synthetic.ensure_frames(
            synthetic.synthetic_folder(None, SEED, (520, 696)), SEED, n, (520, 696)
        )
        for p in src:
            os.symlink(p, folder / p.name)
        glob = f"{folder}/*.tif"
        results = {
            "(a) blog as written": run_blog(glob, "lazy", args.cap),
            "(a') blog, stages persisted": run_blog(glob, "persist", args.cap),
            "(b) hpcseg blog2021": run_hpcseg(folder, "blog2021", args.workers, tmp / f"b{n}"),
            "(c) hpcseg nuclei": run_hpcseg(folder, "nuclei", args.workers, tmp / f"c{n}"),
            "(c') hpcseg nuclei_v1 (before diameter)": run_hpcseg(
                folder, "nuclei_v1", args.workers, tmp / f"v{n}"
            ),
            "(d) floor: tifffile read, 1 proc": run_floor(glob, "read", 1),
            f"(d) floor: threshold Gaussian, {args.workers} procs": run_floor(
                glob, "gauss", args.workers
            ),
        }
        ref = results["(a) blog as written"]["wall"]
        floor = results[f"(d) floor: threshold Gaussian, {args.workers} procs"]["wall"]
        for name, r in results.items():
            rows.append((n, name, r, ref, floor))
    print(f"\nhpcseg vs the dask-image blog pipeline, synthetic frames (seed {SEED}), ", end="")
    print(f"{args.workers} workers")
    cols = ("frames", "run", "wall s", "img/s", "vs (a)", "vs floor", "peak RSS MB", "note")
    widths = (6, -38, 8, 7, 7, 8, 11, 0)
    header = " | ".join(
        f"{c:<{-w}}" if w < 0 else f"{c:>{w}}" for c, w in zip(cols, widths, strict=True)
    )
    print(header)
    print("-" * len(header))
    for n, name, r, ref, floor in rows:
        wall = r["wall"]
        w = f"{wall:8.2f}" if wall else f"{'>' + str(int(args.cap)):>8}"
        rate = f"{n / wall:7.1f}" if wall else f"{'-':>7}"
        vs_a = (
            f"{ref / wall:6.1f}x"
            if wall and ref
            else (f"{'>':>1}{args.cap / wall:5.1f}x" if wall else f"{'-':>7}")
        )
        vs_f = f"{floor / wall:7.2f}x" if wall else f"{'-':>8}"
        print(
            f"{n:>6} | {name:<38} | {w} | {rate} | {vs_a} | {vs_f} | {r['rss']:11.0f} | {r['note']}"
        )
    print(
        "\nvs (a): how many times faster than the blog as written ('>' when (a) did not"
        " finish: a lower bound from the cap).\nvs floor: floor time / run time; >= 1 means at"
        " least as fast as the threshold Gaussian alone.\nPeak RSS: the largest single process"
        " of that run (driver, worker or pool process)."
    )


if __name__ == "__main__":
    main()
