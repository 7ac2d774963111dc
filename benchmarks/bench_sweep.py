"""Sweep speed: a 12-point grid on 16 synthetic frames, one cluster per point vs one shared.

    python benchmarks/bench_sweep.py [--repeats 2] [--workers 2]

Runs the whole command `hpcseg experiment=watershed_seeds` (4 seed distances x 3 landscape
smoothings = 12 points, 16 frames of 520x696 each) with `sweep.reuse_cluster=false` (every
point starts and stops its own local Dask cluster: hpcseg before sweeps shared one) and `=true`
(the default: the points, run one after another by Hydra's basic launcher, share one), each
`--repeats` times, alternating, and prints
`mode | wall s (median) | s per point | points' own s (median of medians) | clusters started`.
The frames are generated once into the synthetic cache before the first timed run (as any
sweep's first point does), so neither mode pays for generating them. "points' own s" is the
point's wall time from its point.json (cluster start, compute, run record), the rest of the
command's wall is Python start-up, composing the 12 points and the sweep table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(tmp: Path, reuse: bool, workers: int, i: int) -> dict:
    sweep = tmp / f"{'shared' if reuse else 'per-point'}-{i}"
    cmd = [sys.executable, "-m", "hpcseg", "experiment=watershed_seeds",
           f"sweep.reuse_cluster={str(reuse).lower()}", f"cluster.n_workers={workers}",
           "runner.progress=none", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    points = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/point.json"))]
    assert len(points) == 12 and all(p["status"] == "ok" for p in points)
    started = proc.stdout.count("local cluster:") + proc.stderr.count("local cluster:")
    return {
        "wall": wall,
        "point": statistics.median(p["wall_seconds"] for p in points),
        "clusters": started,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hpcseg-sweep-bench-"))
    warm = [sys.executable, "-m", "hpcseg", "dataset.n_images=16", "runner.dry_run=true"]
    subprocess.run(warm, check=True, capture_output=True)  # generate the 16 frames once
    results: dict[bool, list[dict]] = {False: [], True: []}
    for i in range(args.repeats):
        for reuse in (False, True):
            results[reuse].append(run(tmp, reuse, args.workers, i))
    print(f"12-point sweep (experiment=watershed_seeds), 16 frames 520x696, "
          f"{args.workers} workers, {args.repeats} repeats")  # fmt: skip
    print("mode | wall s (median) | s per point | points' own s (median) | clusters started")
    print("--- | --- | --- | --- | ---")
    walls = {}
    for reuse, name in ((False, "a cluster per point (before)"), (True, "one shared (now)")):
        rs = results[reuse]
        walls[reuse] = statistics.median(r["wall"] for r in rs)
        point = statistics.median(r["point"] for r in rs)
        print(f"{name} | {walls[reuse]:.1f} | {walls[reuse] / 12:.2f} | {point:.2f} | "
              f"{rs[0]['clusters']}")  # fmt: skip
    print(f"speed-up of the whole sweep: {walls[False] / walls[True]:.2f}x")


if __name__ == "__main__":
    main()
