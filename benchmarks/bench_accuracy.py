"""Accuracy of the pipelines against the synthetic ground truth, on a held-out seed.

    python benchmarks/bench_accuracy.py [--seed 9001] [--images 60] [--workers 2]
                                        [--dataset synthetic|synthetic3d]
                                        [--pipelines blog2021 nuclei_v1 nuclei nuclei_refined]

Runs `hpcseg pipeline=<p> dataset.seed=<seed>` for each pipeline (whole commands; `nuclei_v1`
is the default before the diameter; a pipeline may carry overrides after a colon:
`nuclei:pipeline.threshold.lower=0`) and prints
`pipeline | objects | F1@0.5 | F1@0.7 | F1@0.9 | mean F1 | merges | splits | images/s`
(objects found, then scores pooled over all images: TP, true and predicted objects summed
before F1 is taken). Seed 9001 is used by no test and no tuning run. ``--dataset synthetic3d``
scores 40x192x192 z-stacks (0.5 µm pixels, 1 µm planes) instead of 520x696 frames; F1 is then
over 3-D objects (IoU of voxel sets).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=9001)
    ap.add_argument("--images", type=int, default=60)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--dataset", choices=("synthetic", "synthetic3d"), default="synthetic")
    ap.add_argument(
        "--pipelines", nargs="+", default=["blog2021", "nuclei_v1", "nuclei", "nuclei_refined"]
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hpcseg-accuracy-"))
    rows = []
    for number, pipeline in enumerate(args.pipelines):
        preset, _, rest = pipeline.partition(":")  # preset[:key=value,key=value]
        overrides = [o for o in rest.split(",") if o]
        out = tmp / f"{number}-{preset}"
        cmd = [sys.executable, "-m", "hpcseg", f"pipeline={preset}", *overrides,
               f"dataset={args.dataset}",
               f"dataset.seed={args.seed}",
               f"dataset.n_images={args.images}", f"cluster.n_workers={args.workers}",
               f"output.dir={out}", "runner.progress=none"]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        summary = json.loads((out / "run.json").read_text())["summary"]
        rows.append((pipeline, summary["accuracy"], summary["images_per_second"]))
    print(f"{args.dataset} seed {args.seed}, {args.images} images, {args.workers} workers")
    print("pipeline | objects | F1@0.5 | F1@0.7 | F1@0.9 | mean F1 | merges | splits | images/s")
    print("--- | --- | --- | --- | --- | --- | --- | --- | ---")
    for name, a, rate in rows:
        print(f"{name} | {a['n_pred']} | {a['f1_50']:.3f} | {a['f1_70']:.3f} | {a['f1_90']:.3f} | "
              f"{a['f1_avg']:.3f} | {a['merges']} | {a['splits']} | {rate:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
