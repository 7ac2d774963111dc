"""The tiled mode on one large synthetic mosaic: throughput, memory, and its peers in the same run.

    .venv/bin/python benchmarks/bench_large.py --size 16384 [--chunk 2048] [--workers 2]
        [--seed 0] [--work /tmp/hpcseg-bench-large] [--cap 300] [--skip-peers] [--blog-persisted]
        [--pairs N] [--skip-blog]

What it measures, on a synthetic uint16 mosaic of size x size pixels (hpcseg.data.mosaic; written
region by region as a BigTIFF and as a Zarr array into --work, once, and reused by later runs):

1. Generating the two files (timed when written; a reused file shows its earlier time), and the
   number of nuclei in the mosaic (``mosaic_nuclei``, nothing rendered).
2. The tiled ``nuclei`` pipeline as whole commands, ``hpcseg ... mode=tiled``, on the Zarr and on
   the BigTIFF: wall, Mpx/s, the peak RSS of the driver (the hpcseg process) and of the largest
   worker (its largest descendant process: the Dask workers; LocalCluster's nannies live in the
   driver), objects, chunks, tasks (the sum of n over the "<pass> done (n of m chunks run now)"
   log lines) and the seconds per pass (between the arrival of those lines).
3. The many-images mode on 200 synthetic 520x696 frames (whole command, same workers, the
   default chain with the diameter the tiled run measured given: the lengths the tiled mode
   runs, which measures the diameter once per image where the many-images mode would measure
   it on every frame): its pixel
   rate, and the ratio tiled Mpx/s / many-images Mpx/s (target >= 0.8), both per second on the
   cluster (the summary line's "s on the cluster": start-up excluded on both sides; the whole
   command's ratio is printed too). ``--pairs N`` then runs N more alternating pairs (tiled
   Zarr, many-images) and prints their ratios and median: on a noisy machine one pair is not
   enough to say whether the target holds.
4. Peer: the same algorithm one-shot in memory, ``segment(open_large(zarr).read(()), nuclei)``
   with the pipeline as the tiled runs fix it (``run.tiled_job.pipeline_for``), in
   its own process (capped at --cap s; skipped when size² x 40 bytes is over 70 % of the
   machine's memory); its object count is checked against the tiled one.
5. Label + measure only (target: chunked within 2x of in memory), on one stored nuclei mask (the
   mosaic smoothed with a Gaussian of sigma 1 and cut at the Otsu threshold of its first chunk,
   computed chunk by chunk and stored as a Zarr bool array): (a) in memory, one process: read the
   mask and the image whole, ``scipy.ndimage.label``, one ``bincount`` each for area and
   intensity sum; (b) chunked on a LocalCluster of --workers processes: each task reads one
   chunk of the mask and the image, labels it (``stitch.label_chunk``), returns its per-label
   area and sum and its faces; the driver joins them (``stitch.Components.join``) and adds the
   partials per object. Both times are of that work only (process and cluster start-up excluded,
   the workers' imports warmed), and the two object counts are checked equal.
6. Peer: dask-image's 2021 blog graph (as tests/pipeline/test_blog2021.py's ``blog_graph``, 2-D,
   on ``da.from_array(zarr array, chunks=(chunk, chunk))``, the threads scheduler with --workers
   threads) in a process killed at --cap s ("not finished in N s" and how far it got), and the
   tiled ``hpcseg ... mode=tiled pipeline=blog2021`` on the same Zarr. As written the graph is
   lazy: counting the labels and measuring recompute the stages before; --blog-persisted also
   runs it with every stage persisted (another --cap s), which shows each stage's time.
7. One markdown table, the per-pass seconds, and the three target checks with PASS/FAIL
   (reported, never asserted). A step that fails shows its error in the table; the rest go on.

Peak RSS is each process's VmHWM (/proc/<pid>/status), sampled every 0.2 s over the process
tree with psutil. Any run whose processes together hold more than 85 % of the machine's memory
is stopped and reported as such (the machine may be shared). --skip-peers skips 4 and 6 (the
one-shot in memory and dask-image); --skip-blog skips 6 and the tiled blog2021 row (whose code
the hpcseg nuclei rows do not share: ~6 min at 16384²). The in-memory peer at 16384² takes
~11 GB (~43 B/px at 4096²); the whole run at 4096² takes ~3.5 min on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

FRAMES, FRAME_SHAPE = 200, (520, 696)
SAMPLE_S = 0.2
MEMORY_GUARD = 0.85  # a run whose processes hold more than this of the memory is stopped
DONE_LINE = re.compile(r": (\w+) done \((\d+) of (\d+) chunks run now\)")
SUMMARY_LINE = re.compile(
    r"hpcseg: (\d+) images: .*?; (\d+) objects; wall ([\d.]+) s "
    r"\(([\d.]+) s on the cluster, ([\d.]+) images/s\)"
)
RESULT = "BENCH-RESULT "  # a step subprocess's last line: this prefix, then its JSON result


# ------------------------------------------------------------------------- process trees
@dataclass
class Run:
    """A finished (or killed) process tree."""

    wall: float
    rc: int | None
    stopped: str  # "" (ran to its end), "cap" (ran past its cap) or "memory" (the guard)
    driver_mb: float
    worker_mb: float | None  # the largest descendant; None if it had none
    lines: list[tuple[float, str]] = field(default_factory=list)  # (s since start, line)

    @property
    def killed(self) -> bool:
        return bool(self.stopped)

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.killed

    def stop_note(self, cap: float | None) -> str:
        if self.stopped == "memory":
            return (f"stopped by the memory guard (its processes above {MEMORY_GUARD:.0%} of "
                    f"memory) after {self.wall:.0f} s")  # fmt: skip
        return f"not finished in {cap:.0f} s"

    @property
    def result(self) -> dict | None:
        for _, line in reversed(self.lines):
            if line.startswith(RESULT):
                return json.loads(line[len(RESULT) :])
        return None

    def text(self) -> str:
        return "".join(line for _, line in self.lines)

    def error(self) -> str:
        """Why it failed, in one line."""
        if self.killed:
            return self.stop_note(None) if self.stopped == "memory" else "killed at the cap"
        tail = [line.strip() for _, line in self.lines if line.strip()]
        errors = [t for t in tail if re.search(r"(Error|error|Exception)\b", t)]
        last = (errors or tail or ["no output"])[-1]
        return f"exit {self.rc}: {last[:200]}"


def _rss_mb(pid: int) -> tuple[float, float] | None:
    """A process's peak and current resident set (VmHWM, VmRSS) in MB; None once it is gone."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    found[line[:5]] = int(line.split()[1]) / 1024
    except OSError:
        return None
    return (found["VmHWM"], found["VmRSS"]) if len(found) == 2 else None


def watch(cmd: list[str], cap: float | None = None, env: dict | None = None) -> Run:
    """Run ``cmd`` (stdout and stderr merged, each line timed on arrival); sample the peak RSS of
    it and of its descendants every 0.2 s; kill its process group at ``cap`` seconds, or when
    their resident sets add up to more than MEMORY_GUARD of the machine's memory (it is shared:
    a peer that does not fit must not take the machine down)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        start_new_session=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    lines: list[tuple[float, str]] = []
    peaks: dict[int, float] = {}
    done = threading.Event()
    stopped = []
    guard_mb = MEMORY_GUARD * psutil.virtual_memory().total / 2**20

    def read() -> None:
        for line in proc.stdout:
            lines.append((time.perf_counter() - t0, line))

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                pids = [proc.pid] + [c.pid for c in root.children(recursive=True)]
            except psutil.Error:
                pids = [proc.pid]
            now = 0.0
            for pid in pids:
                mb = _rss_mb(pid)
                if mb is not None:
                    peaks[pid] = max(peaks.get(pid, 0.0), mb[0])
                    now += mb[1]
            if now > guard_mb and not stopped:
                stopped.append("memory")
                os.killpg(proc.pid, signal.SIGKILL)
            done.wait(SAMPLE_S)

    reader = threading.Thread(target=read, daemon=True)
    sampler = threading.Thread(target=sample, daemon=True)
    reader.start()
    sampler.start()
    try:
        proc.wait(timeout=cap)
    except subprocess.TimeoutExpired:
        stopped.append("cap")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except BaseException:  # Ctrl-C: take the tree down with us
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    reader.join(timeout=5)
    with_children = [mb for pid, mb in peaks.items() if pid != proc.pid]
    return Run(wall, proc.returncode, stopped[0] if stopped else "", peaks.get(proc.pid, 0.0),
               max(with_children) if with_children else None, lines)  # fmt: skip


def step_cmd(args: argparse.Namespace, name: str, *extra: str) -> list[str]:
    """This script run as one step in its own process."""
    return [sys.executable, __file__, "--step", name, "--size", str(args.size),
            "--chunk", str(args.chunk), "--workers", str(args.workers), "--seed", str(args.seed),
            "--work", str(args.work), *extra]  # fmt: skip


def hpcseg_cmd(args: argparse.Namespace, out: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "hpcseg", f"cluster.n_workers={args.workers}",
            f"output.dir={out}", "output.overwrite=true", "runner.progress=none",
            *overrides]  # fmt: skip


# ------------------------------------------------------------------------------ the files
def paths(args: argparse.Namespace) -> dict[str, Path]:
    stem = f"mosaic-{args.size}-seed{args.seed}"
    return {
        "tiff": args.work / f"{stem}.tif",
        "zarr": args.work / f"{stem}.zarr",
        "mask": args.work / f"{stem}-mask.zarr",
    }


def step_generate(args: argparse.Namespace, kind: str) -> dict:
    """Write the mosaic as ``kind`` ('tiff' or 'zarr') chunk by chunk; the seconds it took."""
    from hpcseg.data.mosaic import write_mosaic

    target = paths(args)[kind]
    t0 = time.perf_counter()
    write_mosaic(target, (args.size, args.size), args.seed, chunk=args.chunk, kind=kind,
                 workers=args.workers)  # fmt: skip
    seconds = time.perf_counter() - t0
    Path(f"{target}.json").write_text(json.dumps({"seconds": seconds}))
    return {"seconds": seconds}


def step_mask(args: argparse.Namespace) -> dict:
    """The stored mask of 5: Gaussian sigma 1 (float32; each chunk read with a 4 px halo, so the
    mask equals the whole image's), cut at the Otsu threshold of the first chunk, as Zarr."""
    import zarr
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    from hpcseg.pipeline.grid import ChunkGrid, within

    p = paths(args)
    image = zarr.open_array(str(p["zarr"]), mode="r")
    grid = ChunkGrid(tuple(image.shape), (args.chunk, args.chunk))
    tmp = p["mask"].with_name(p["mask"].name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    mask = zarr.create_array(store=str(tmp), shape=image.shape, chunks=image.chunks,
                             dtype=bool, fill_value=False, zarr_format=3)  # fmt: skip
    t0 = time.perf_counter()
    cut = None
    for index in grid.indices():
        core = grid.core(index)
        crop = grid.grow(core, (4, 4))
        smoothed = ndi.gaussian_filter(image[crop].astype(np.float32), 1.0)[within(core, crop)]
        if cut is None:
            cut = float(threshold_otsu(smoothed))
        mask[core] = smoothed > cut
    mask.attrs["threshold"] = cut
    os.replace(tmp, p["mask"])
    return {"seconds": time.perf_counter() - t0, "threshold": cut}


# ------------------------------------------------------------------- steps in a subprocess
def step_memory(args: argparse.Namespace) -> dict:
    """4: the whole-image nuclei pipeline on the whole mosaic in memory."""
    from hpcseg.config.compose import load_config
    from hpcseg.data.large import open_large
    from hpcseg.pipeline.grid import ChunkGrid
    from hpcseg.pipeline.sampling import Sampling
    from hpcseg.pipeline.segment import segment
    from hpcseg.run.tiled_job import pipeline_for

    large = open_large(str(paths(args)["zarr"]))
    # the pipeline as the tiled runs fix it: the diameter of the sampled chunks (measured
    # before the clock starts)
    grid = ChunkGrid(large.shape, (args.chunk,) * len(large.shape))
    cfg, _ = pipeline_for(load_config([]).pipeline, Sampling(), large, grid)
    t0 = time.perf_counter()
    image = large.read(())
    t_read = time.perf_counter() - t0
    seg = segment(image, cfg)
    return {"seconds": time.perf_counter() - t0, "read": t_read,
            "objects": len(seg.objects["label"]),
            "stages": {k: round(v, 2) for k, v in seg.seconds.items()}}  # fmt: skip


def step_lm_memory(args: argparse.Namespace) -> dict:
    """5a: label + measure (area, mean intensity) on the whole mask in memory."""
    import zarr
    from scipy import ndimage as ndi

    p = paths(args)
    t0 = time.perf_counter()
    mask = zarr.open_array(str(p["mask"]), mode="r")[...]
    image = zarr.open_array(str(p["zarr"]), mode="r")[...]
    labels, n = ndi.label(mask, output=np.int32)
    flat = labels.ravel()
    area = np.bincount(flat, minlength=n + 1)[1:]
    total = np.bincount(flat, weights=image.ravel(), minlength=n + 1)[1:]
    mean = total / np.maximum(area, 1)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "objects": int(n), "area": int(area.sum()),
            "mean_of_means": float(mean.mean()) if n else 0.0}  # fmt: skip


def _lm_chunk(mask_path: str, image_path: str, core: tuple) -> dict:
    """5b, one task: label one chunk of the mask; its per-label area and intensity sum, faces."""
    import zarr

    from hpcseg.pipeline.stitch import faces_of, label_chunk

    mask = zarr.open_array(mask_path, mode="r")[core]
    image = zarr.open_array(image_path, mode="r")[core]
    labels, n = label_chunk(mask, np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool))
    flat = labels.ravel()
    return {"n": n, "area": np.bincount(flat, minlength=n + 1)[1:],
            "sum": np.bincount(flat, weights=image.ravel(), minlength=n + 1)[1:],
            "faces": faces_of(labels)}  # fmt: skip


def _warm() -> None:
    import zarr  # noqa: F401
    from scipy import ndimage  # noqa: F401

    import hpcseg.pipeline.stitch  # noqa: F401


def step_lm_chunked(args: argparse.Namespace) -> dict:
    """5b: the same label + measure chunk by chunk on a LocalCluster, joined on the driver."""
    import zarr
    from distributed import Client, LocalCluster

    from hpcseg.pipeline.grid import ChunkGrid
    from hpcseg.pipeline.stitch import Components

    p = paths(args)
    shape = tuple(zarr.open_array(str(p["mask"]), mode="r").shape)
    grid = ChunkGrid(shape, (args.chunk, args.chunk))
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,  # fmt: skip
        Client(cluster) as client,
    ):
        client.run(_warm)
        t0 = time.perf_counter()
        futures = [client.submit(_lm_chunk, str(p["mask"]), str(p["zarr"]), grid.core(i),
                                 pure=False) for i in grid.indices()]  # fmt: skip
        parts = client.gather(futures)
        comps = Components.join(grid, [r["n"] for r in parts], [r["faces"] for r in parts], cross)
        area = comps.total(np.concatenate([r["area"] for r in parts]))[1:]
        total = comps.total(np.concatenate([r["sum"] for r in parts]))[1:]
        mean = total / np.maximum(area, 1)
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "objects": int(comps.n_components), "tasks": len(parts),
            "area": int(area.sum()),
            "mean_of_means": float(mean.mean()) if len(area) else 0.0}  # fmt: skip


BLOG_SCRIPT = r"""
import sys, time, numpy as np, dask, dask.array as da, zarr
from dask_image import ndfilters, ndmorph, ndmeasure
path, chunk, workers, persist = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
persist = persist == "persist"
t0 = time.perf_counter()
def stage(name, x):
    if persist:
        x = x.persist()
        print(f"stage {name} {time.perf_counter() - t0:.2f}", flush=True)
    return x
with dask.config.set(scheduler="threads", num_workers=workers):
    images = stage("read", da.from_array(zarr.open_array(path, mode="r"), chunks=(chunk, chunk)))
    smoothed = stage("smooth", ndfilters.gaussian_filter(images, sigma=[1, 1]))
    thresh = stage("threshold", ndfilters.threshold_local(smoothed, images.chunksize))
    threshold_images = smoothed > thresh
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    binary_images = stage("open", ndmorph.binary_opening(threshold_images, structure=cross))
    label_images, num_features = ndmeasure.label(binary_images)
    if persist:
        label_images, num_features = dask.persist(label_images, num_features)
    index = np.arange(num_features - 1) + 1  # as the blog: computes the labels' count
    print(f"labelled {len(index) + 1} {time.perf_counter() - t0:.2f}", flush=True)
    area = ndmeasure.area(images, label_images, index)
    mean_intensity = ndmeasure.mean(images, label_images, index)
    dask.compute(area, mean_intensity)
    print(f"measured {time.perf_counter() - t0:.2f}", flush=True)
"""

STEPS = {
    "gen-tiff": lambda a: step_generate(a, "tiff"),
    "gen-zarr": lambda a: step_generate(a, "zarr"),
    "mask": step_mask,
    "memory": step_memory,
    "lm-memory": step_lm_memory,
    "lm-chunked": step_lm_chunked,
}


# ------------------------------------------------------------------------------ the rows
@dataclass
class Row:
    step: str
    wall: float | None = None
    mpx: float | None = None
    driver_mb: float | None = None
    worker_mb: float | None = None
    objects: int | None = None
    tasks: int | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)  # what the checks and the pass table need


def say(text: str) -> None:
    print(f"[bench_large {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def guarded(rows: list[Row], name: str, fn, *a) -> Row | None:
    """Run one step; a failure becomes a row with its error, and the benchmark goes on."""
    say(f"{name} ...")
    try:
        row = fn(*a)
    except Exception as exc:  # report, do not stop
        traceback.print_exc(file=sys.stderr)
        row = Row(name, note=f"FAILED: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
    rows.append(row)
    say(f"{name}: {row.wall if row.wall is None else round(row.wall, 1)} s {row.note}")
    return row


def pair(args: argparse.Namespace, zarr_ds: list[str], i: int) -> float | None:
    """One more tiled Zarr run, then one more many-images run: their pixel-rate ratio on the
    cluster (None when either fails)."""
    say(f"pair {i + 1} of {args.pairs} ...")
    try:
        t = tiled(args, "tiled nuclei, Zarr", zarr_ds, "nuclei")
        m = many_images(args, t.extra["diameter"])
    except Exception as exc:  # report, do not stop
        say(f"pair {i + 1}: FAILED: {exc}")
        return None
    ratio = (args.size**2 / t.extra["cluster"]) / (m.extra["pixels"] / m.extra["cluster"])
    say(f"pair {i + 1}: tiled {t.extra['cluster']:.1f} s, many-images {m.extra['cluster']:.1f} s "
        f"on the cluster: ratio {ratio:.2f}")  # fmt: skip
    return ratio


def mpx(pixels: float, seconds: float | None) -> float | None:
    return pixels / 1e6 / seconds if seconds else None


def generate(args: argparse.Namespace, kind: str, nuclei: int) -> Row:
    target = paths(args)[kind]
    label = {"tiff": "generate BigTIFF", "zarr": "generate Zarr"}[kind]
    sidecar = Path(f"{target}.json")
    if target.exists():
        earlier = json.loads(sidecar.read_text())["seconds"] if sidecar.exists() else None
        when = f"{earlier:.1f} s" if earlier else "an unknown time"
        return Row(label, objects=nuclei, note=f"reused {target.name} (written in {when} before)")
    run = watch(step_cmd(args, f"gen-{kind}"))
    if not run.ok:
        raise RuntimeError(run.error())
    seconds = run.result["seconds"]
    return Row(label, seconds, mpx(args.size**2, seconds), run.driver_mb, run.worker_mb, nuclei,
               note=f"{args.workers} threads; objects: nuclei in the mosaic")  # fmt: skip


def passes_of(run: Run) -> tuple[int, dict[str, float]]:
    """Tasks (sum of n of the "done" lines) and seconds per pass (between their arrivals; the
    first from the 'local cluster' line)."""
    tasks, seconds = 0, {}
    start = next((t for t, line in run.lines if "local cluster:" in line), None)
    for t, line in run.lines:
        m = DONE_LINE.search(line)
        if m:
            tasks += int(m.group(2))
            seconds[m.group(1)] = t - start if start is not None else float("nan")
            start = t
    return tasks, seconds


def summary_of(run: Run, out: Path) -> dict:
    """The summary line's numbers, with run.json's more precise seconds where it has them."""
    m = next((SUMMARY_LINE.search(line) for _, line in run.lines if SUMMARY_LINE.search(line)),
             None)  # fmt: skip
    if m is None:
        raise RuntimeError(f"no summary line ({run.error()})")
    s = {"images": int(m.group(1)), "objects": int(m.group(2)), "wall": float(m.group(3)),
         "cluster": float(m.group(4)), "per_second": float(m.group(5))}  # fmt: skip
    try:
        js = json.loads((out / "run.json").read_text())["summary"]
        s.update(wall=js["wall_seconds"], cluster=js["compute_seconds"])
    except (OSError, KeyError, ValueError):
        pass
    return s


def tiled(args: argparse.Namespace, name: str, dataset: list[str], pipeline: str) -> Row:
    out = args.work / ("out-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"))
    shutil.rmtree(out, ignore_errors=True)
    cmd = hpcseg_cmd(args, out, *dataset, "mode=tiled", f"mode.chunk_size={args.chunk}",
                     f"pipeline={pipeline}")  # fmt: skip
    run = watch(cmd)
    if not run.ok:
        raise RuntimeError(run.error())
    s = summary_of(run, out)
    tasks, seconds = passes_of(run)
    n_chunks = math.ceil(args.size / args.chunk) ** 2
    diameter = None
    try:
        import pyarrow.parquet as pq

        row = pq.read_table(out / "images", columns=["n_chunks", "diameter"]).to_pylist()[0]
        n_chunks, diameter = int(row["n_chunks"]), row["diameter"]
    except Exception:  # the grid's count is the same; the table is a cross-check only
        pass
    rate = mpx(args.size**2, s["cluster"])
    note = (f"{n_chunks} chunks; {s['cluster']:.1f} s on the cluster = {rate:.2f} Mpx/s; "
            f"whole command")  # fmt: skip
    return Row(name, run.wall, mpx(args.size**2, run.wall), run.driver_mb, run.worker_mb,
               s["objects"], tasks, note,
               {"cluster": s["cluster"], "passes": seconds, "chunks": n_chunks,
                "diameter": diameter})  # fmt: skip


def many_images(args: argparse.Namespace, diameter: float | None = None) -> Row:
    """The many-images mode on the frames with the tiled run's ``diameter`` given (the tiled
    mode measures it once per image, the many-images mode on every frame: given, the two
    rates compare the same work per pixel, but for the contrast to noise, which the
    many-images mode measures on every frame, about 2 ms each)."""
    out = args.work / "out-many-images"
    shutil.rmtree(out, ignore_errors=True)
    dataset = [f"dataset.n_images={FRAMES}"]
    warm = watch(hpcseg_cmd(args, args.work / "out-many-warm", *dataset, "runner.dry_run=true"))
    if not warm.ok:  # generates the frames into the synthetic cache, outside the timed run
        raise RuntimeError(f"generating the frames: {warm.error()}")
    given = [f"pipeline.diameter={diameter}"] if diameter else []
    run = watch(hpcseg_cmd(args, out, *dataset, *given))
    if not run.ok:
        raise RuntimeError(run.error())
    s = summary_of(run, out)
    pixels = s["images"] * FRAME_SHAPE[0] * FRAME_SHAPE[1]
    rate = mpx(pixels, s["cluster"])
    note = (f"{s['images']} frames {FRAME_SHAPE[0]}x{FRAME_SHAPE[1]}; {s['cluster']:.1f} s on the "
            f"cluster = {s['images'] / s['cluster']:.1f} frames/s = {rate:.2f} Mpx/s; diameter "
            f"{diameter or 'auto'}")  # fmt: skip
    return Row(f"many-images nuclei, {FRAMES} frames", run.wall, mpx(pixels, run.wall),
               run.driver_mb, run.worker_mb, s["objects"], None, note,
               {"cluster": s["cluster"], "pixels": pixels})  # fmt: skip


def memory_fits(args: argparse.Namespace) -> tuple[bool, str]:
    need, have = args.size**2 * 40, psutil.virtual_memory().total
    why = f"needs ~{need / 2**30:.1f} GiB, 70 % of memory is {0.7 * have / 2**30:.1f} GiB"
    return need < 0.7 * have, why


def one_shot(args: argparse.Namespace, tiled_objects: int | None) -> Row:
    name = "one-shot in memory (segment), 1 process"
    fits, why = memory_fits(args)
    if not fits:
        return Row(name, note=f"does not fit ({why})")
    run = watch(step_cmd(args, "memory"), cap=args.cap)
    if run.killed:
        return Row(name, driver_mb=run.driver_mb, note=run.stop_note(args.cap))
    if not run.ok:
        raise RuntimeError(run.error())
    r = run.result
    if tiled_objects is None:
        check = "no tiled count to compare"
    elif r["objects"] == tiled_objects:
        check = f"= tiled Zarr count ({tiled_objects}): OK"
    else:
        check = f"DIFFERS from tiled Zarr count {tiled_objects}"
    note = f"{check}; read {r['read']:.1f} s; process {run.wall:.1f} s"
    return Row(name, r["seconds"], mpx(args.size**2, r["seconds"]), run.driver_mb, None,
               r["objects"], None, note)  # fmt: skip


def ensure_mask(args: argparse.Namespace) -> Row:
    target = paths(args)["mask"]
    if target.exists():
        return Row("prepare mask (Zarr bool)", note=f"reused {target.name}")
    run = watch(step_cmd(args, "mask"))
    if not run.ok:
        raise RuntimeError(run.error())
    r = run.result
    return Row("prepare mask (Zarr bool)", r["seconds"], mpx(args.size**2, r["seconds"]),
               run.driver_mb, note=f"Gaussian 1 > {r['threshold']:.1f}")  # fmt: skip


def label_measure(args: argparse.Namespace, how: str, cap: float) -> Row:
    name = {"lm-memory": "label+measure in memory, 1 process",
            "lm-chunked": f"label+measure chunked, {args.workers} workers"}[how]  # fmt: skip
    run = watch(step_cmd(args, how), cap=cap)
    if run.killed:
        return Row(name, driver_mb=run.driver_mb, note=run.stop_note(cap))
    if not run.ok:
        raise RuntimeError(run.error())
    r = run.result
    note = f"work only (process {run.wall:.1f} s); area sum {r['area']}"
    return Row(name, r["seconds"], mpx(args.size**2, r["seconds"]), run.driver_mb, run.worker_mb,
               r["objects"], r.get("tasks"), note, {"r": r})  # fmt: skip


def blog(args: argparse.Namespace, tiled_objects: int | None, persist: bool = False) -> Row:
    how = ", stages persisted" if persist else ""
    name = f"dask-image blog graph{how}, threads x{args.workers}"
    cmd = [sys.executable, "-c", BLOG_SCRIPT, str(paths(args)["zarr"]), str(args.chunk),
           str(args.workers), "persist" if persist else "lazy"]  # fmt: skip
    run = watch(cmd, cap=args.cap)
    text = run.text()
    labelled = re.search(r"^labelled (\d+) ([\d.]+)", text, re.M)
    measured = re.search(r"^measured ([\d.]+)", text, re.M)
    stages = ", ".join(f"{m[0]} {float(m[1]):.0f} s"
                       for m in re.findall(r"^stage (\w+) ([\d.]+)", text, re.M))  # fmt: skip
    objects = int(labelled.group(1)) if labelled else None
    if run.killed:
        got = (f"labels ({objects}) counted at {float(labelled.group(2)):.1f} s, measuring not "
               f"done" if labelled else "not even the labels' count")  # fmt: skip
        got += f"; stages done: {stages}" if stages else ""
        return Row(name, None, None, run.driver_mb, None, objects, None,
                   f"{run.stop_note(args.cap)} ({got})")  # fmt: skip
    if not run.ok or not measured:
        raise RuntimeError(run.error())
    seconds = float(measured.group(1))
    note = f"labels counted at {float(labelled.group(2)):.1f} s; process {run.wall:.1f} s"
    note += f"; stages done: {stages}" if stages else ""
    if tiled_objects is not None:
        same = objects == tiled_objects
        note += f"; {'=' if same else 'DIFFERS from'} tiled blog2021 count ({tiled_objects})"
    return Row(name, seconds, mpx(args.size**2, seconds), run.driver_mb, None, objects, None,
               note)  # fmt: skip


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def print_report(args: argparse.Namespace, rows: list[Row], nuclei: int | None) -> None:
    chunk_ws = args.chunk**2 * 4 * 10
    print(f"\n### Tiled mode, mosaic {args.size}x{args.size} uint16 (seed {args.seed}, "
          f"{nuclei if nuclei is not None else '?'} nuclei), chunk {args.chunk}, "
          f"{args.workers} workers, cap {args.cap:.0f} s\n")  # fmt: skip
    print(
        "step | wall s | Mpx/s | peak RSS driver MB | peak RSS worker MB | objects | tasks | note"
    )
    print("--- | ---: | ---: | ---: | ---: | ---: | ---: | ---")
    for r in rows:
        print(f"{r.step} | {fmt(r.wall)} | {fmt(r.mpx, 2)} | {fmt(r.driver_mb, 0)} | "
              f"{fmt(r.worker_mb, 0)} | {fmt(r.objects)} | {fmt(r.tasks)} | {r.note}")  # fmt: skip

    passes = {r.step: r.extra["passes"] for r in rows if "passes" in r.extra}
    if passes:
        names = list(dict.fromkeys(p for v in passes.values() for p in v))
        print("\nSeconds per pass (between the arrivals of the passes' 'done' log lines):\n")
        print("pass | " + " | ".join(passes))
        print("--- | " + " | ".join("---:" for _ in passes))
        for p in names:
            print(f"{p} | " + " | ".join(fmt(v.get(p), 2) for v in passes.values()))

    by = {r.step: r for r in rows}
    print("\nTargets (reported, not asserted):\n")
    zarr_row, many = (
        by.get("tiled nuclei, Zarr"),
        next((r for r in rows if r.step.startswith("many-images")), None),
    )
    if zarr_row and many and "cluster" in zarr_row.extra and "cluster" in many.extra:
        tiled_rate = args.size**2 / zarr_row.extra["cluster"]
        many_rate = many.extra["pixels"] / many.extra["cluster"]
        ratio = tiled_rate / many_rate
        whole = zarr_row.mpx / many.mpx if zarr_row.mpx and many.mpx else float("nan")
        tiff_row = by.get("tiled nuclei, BigTIFF")
        tiff = ""
        if tiff_row and "cluster" in tiff_row.extra:
            tiff = f"; BigTIFF {args.size**2 / tiff_row.extra['cluster'] / many_rate:.2f}"
        print(
            f"- throughput: tiled (Zarr) / many-images Mpx/s on the cluster = "
            f"{tiled_rate / 1e6:.2f} / {many_rate / 1e6:.2f} = {ratio:.2f} (target >= 0.8): "
            f"{'PASS' if ratio >= 0.8 else 'FAIL'}  (whole commands: {whole:.2f}{tiff})"
        )
    else:
        print("- throughput ratio >= 0.8: not measured (a run above failed)")
    if args.pair_ratios:
        ratios = sorted(args.pair_ratios)
        print(f"- throughput over {len(ratios)} more alternating pairs (tiled Zarr, then "
              f"many-images): {', '.join(f'{r:.2f}' for r in args.pair_ratios)}; median "
              f"{statistics.median(ratios):.2f}, {sum(r >= 0.8 for r in ratios)} of "
              f"{len(ratios)} at or above 0.8")  # fmt: skip
    mem, chunked = (
        by.get("label+measure in memory, 1 process"),
        next((r for r in rows if r.step.startswith("label+measure chunked")), None),
    )
    if mem and chunked and mem.wall and chunked.wall:
        ratio = chunked.wall / mem.wall
        same = mem.objects == chunked.objects
        print(
            f"- label+measure: chunked / in memory = {chunked.wall:.2f} / {mem.wall:.2f} s = "
            f"{ratio:.2f} (target <= 2): {'PASS' if ratio <= 2 else 'FAIL'}  (object counts "
            f"{'equal' if same else f'DIFFER: {mem.objects} vs {chunked.objects}'})"
        )
    else:
        print("- label+measure ratio <= 2: not measured (a run above failed or hit the cap)")
    workers = [r.worker_mb for r in rows if r.step.startswith("tiled nuclei") and r.worker_mb]
    limit = min(4 * chunk_ws / 2**20, 2048.0)
    if workers:
        peak = max(workers)
        print(
            f"- worker RSS: largest tiled nuclei worker {peak:.0f} MB < min(4 x working set, "
            f"2 GB) = {limit:.0f} MB: {'PASS' if peak < limit else 'FAIL'}  (working set of a "
            f"chunk defined as chunk² x 4 bytes x 10 arrays = {args.chunk}² x 40 B = "
            f"{chunk_ws / 2**20:.0f} MB; RSS = VmHWM, i.e. includes the worker's ~100+ MB "
            f"of Python, Dask and libraries)"
        )
    else:
        print("- worker RSS: not measured (the tiled runs failed)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=16384, help="mosaic edge, pixels")
    ap.add_argument("--chunk", type=int, default=2048, help="tile edge of the tiled mode")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/hpcseg-bench-large"))
    ap.add_argument("--cap", type=float, default=300.0, help="seconds allowed to a peer run")
    ap.add_argument("--skip-peers", action="store_true",
                    help="skip the one-shot in memory and dask-image's blog graph")  # fmt: skip
    ap.add_argument("--skip-blog", action="store_true",
                    help="skip the tiled blog2021 run and dask-image's blog graph")  # fmt: skip
    ap.add_argument(
        "--blog-persisted",
        action="store_true",
        help="also run the blog graph with every stage persisted (another --cap)",
    )
    ap.add_argument("--pairs", type=int, default=0,
                    help="then N more alternating pairs (tiled Zarr, many-images) for the "
                         "throughput ratio's spread on a noisy machine")  # fmt: skip
    ap.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.work = args.work.resolve()
    if args.step:  # one step in its own process (so its memory is its own)
        result = STEPS[args.step](args)
        print(RESULT + json.dumps(result), flush=True)
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    args.work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    p = paths(args)
    rows: list[Row] = []
    nuclei = None
    try:
        from hpcseg.data.mosaic import mosaic_nuclei

        nuclei = len(mosaic_nuclei(args.seed, (args.size, args.size))[0])
        say(f"mosaic {args.size}² has {nuclei} nuclei")
    except Exception as exc:
        say(f"counting the nuclei failed: {exc}")
    guarded(rows, "generate BigTIFF", generate, args, "tiff", nuclei)
    guarded(rows, "generate Zarr", generate, args, "zarr", nuclei)
    zarr_ds = ["dataset=zarr", f"dataset.path={p['zarr']}"]
    tiff_ds = ["dataset=tiff_glob", f"dataset.path={p['tiff']}"]
    z = guarded(rows, "tiled nuclei, Zarr", tiled, args, "tiled nuclei, Zarr", zarr_ds, "nuclei")
    guarded(rows, "tiled nuclei, BigTIFF", tiled, args, "tiled nuclei, BigTIFF", tiff_ds, "nuclei")
    guarded(rows, "many-images nuclei", many_images, args, z.extra.get("diameter") if z else None)
    args.pair_ratios = [ratio for i in range(args.pairs) if (ratio := pair(args, zarr_ds, i))]
    if not args.skip_peers:
        guarded(rows, "one-shot in memory", one_shot, args, z.objects if z else None)
    guarded(rows, "prepare mask (Zarr bool)", ensure_mask, args)
    if p["mask"].exists():
        guarded(rows, "label+measure in memory", label_measure, args, "lm-memory", args.cap)
        guarded(rows, "label+measure chunked", label_measure, args, "lm-chunked", args.cap)
    b = None
    if not args.skip_blog:
        b = guarded(rows, "tiled blog2021, Zarr", tiled, args, "tiled blog2021, Zarr", zarr_ds,
                    "blog2021")  # fmt: skip
    if not args.skip_peers and not args.skip_blog:
        guarded(rows, "dask-image blog graph", blog, args, b.objects if b else None)
        if args.blog_persisted:
            guarded(rows, "dask-image blog graph, stages persisted", blog, args,
                    b.objects if b else None, True)  # fmt: skip
    print_report(args, rows, nuclei)
    print(f"\n(benchmark wall {time.perf_counter() - t_start:.0f} s; files in {args.work})")


if __name__ == "__main__":
    main()
