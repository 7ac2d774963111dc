"""Tune the nuclei pipeline with Optuna on one synthetic seed, then score the best point and
the defaults on frames of another seed the study never saw.

    python benchmarks/bench_optuna.py [--trials 30] [--study-seed 0] [--study-images 16]
                                      [--test-seed 9001] [--test-images 60] [--workers 2]

Runs the whole command `hpcseg hparams_search=nuclei_optuna` (TPE, sampler seed 1, the search
space of conf/hparams_search/nuclei_optuna.yaml, objective = pooled mean F1 over IoU 0.5-0.9),
reads its optimization_results.yaml, then `hpcseg` with those parameters and with the defaults
on the test seed, and prints
`config | seed | F1@0.5 | F1@0.7 | F1@0.9 | mean F1 | merges | splits` and the best parameters.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml


def hpcseg(*args: str) -> None:
    cmd = [sys.executable, "-m", "hpcseg", *args, "runner.progress=none"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")


def score(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())["summary"]["accuracy"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--study-seed", type=int, default=0)
    ap.add_argument("--study-images", type=int, default=16)
    ap.add_argument("--test-seed", type=int, default=9001)
    ap.add_argument("--test-images", type=int, default=60)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hpcseg-optuna-"))
    study = tmp / "study"
    data = (f"dataset.seed={args.study_seed}", f"dataset.n_images={args.study_images}",
            f"cluster.n_workers={args.workers}")  # fmt: skip
    hpcseg("hparams_search=nuclei_optuna", f"hydra.sweeper.n_trials={args.trials}", *data,
           f"output.dir={study}")  # fmt: skip
    results = yaml.safe_load((study / "optimization_results.yaml").read_text())
    best = [f"{k}={v}" for k, v in results["best_params"].items()]
    rows = [("best of study", args.study_seed, score(next(
        p.parent for p in study.glob("*/point.json")
        if json.loads(p.read_text())["objective"] == results["best_value"])))]  # fmt: skip
    rows.append(("defaults", args.study_seed, None))
    test = (f"dataset.seed={args.test_seed}", f"dataset.n_images={args.test_images}",
            f"cluster.n_workers={args.workers}")  # fmt: skip
    for name, overrides, seed, extra in (
        ("defaults", [], args.study_seed, data),
        ("best of study", best, args.test_seed, test),
        ("defaults", [], args.test_seed, test),
    ):
        out = tmp / f"{name.replace(' ', '_')}-{seed}"
        hpcseg(*overrides, *extra, f"output.dir={out}")
        if (name, seed) == ("defaults", args.study_seed):
            rows[1] = (name, seed, score(out))
        else:
            rows.append((name, seed, score(out)))
    print(f"Optuna: {args.trials} trials on seed {args.study_seed} ({args.study_images} frames); "
          f"test: seed {args.test_seed} ({args.test_images} frames)")  # fmt: skip
    print("config | seed | F1@0.5 | F1@0.7 | F1@0.9 | mean F1 | merges | splits")
    print("--- | --- | --- | --- | --- | --- | --- | ---")
    for name, seed, a in rows:
        print(f"{name} | {seed} | {a['f1_50']:.3f} | {a['f1_70']:.3f} | {a['f1_90']:.3f} | "
              f"{a['f1_avg']:.3f} | {a['merges']} | {a['splits']}")  # fmt: skip
    print("best parameters: " + " ".join(best))
    print(f"study folder: {study}")


if __name__ == "__main__":
    main()
