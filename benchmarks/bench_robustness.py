"""Accuracy over a grid of imaging conditions hpcseg was not tuned on.

    python benchmarks/bench_robustness.py [--frames 8] [--seed 7001] [--workers 2]
        [--pipelines blog2021 nuclei_v1 nuclei] [--conditions default small ...]
        [--peers cellprofiler]

Each condition draws frames from the synthetic generator with other knobs
(``hpcseg.data.synthetic.FrameStyle``: nucleus size, density up to confluent, clumps, photon
count, texture, background unevenness, blur), scores every pipeline on the same frames and
prints ``condition | pipeline | F1@0.5 | F1@0.7 | F1@0.9 | mean F1 | merges | splits |
true | images/s``, scores pooled over the condition's frames. Evaluation seeds (7001 by
default) are not the tuning seeds (``--seed 100`` is what tuning runs use). Pipelines are preset
names, optionally with overrides after a colon: ``nuclei:pipeline.diameter=20``. images/s is
the segmentation alone, in one process per worker (no start-up, reading or writing).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hpcseg.config.compose import load_config
from hpcseg.config.schemas import PipelineConfig
from hpcseg.data.synthetic import FrameStyle, synthetic_frame
from hpcseg.pipeline.segment import segment
from hpcseg.results.evaluate import pooled, score


@dataclass(frozen=True)
class Condition:
    """Frames of one imaging condition: a generator style and a frame shape."""

    name: str
    style: FrameStyle
    shape: tuple[int, int] = (520, 696)
    frames: float = 1.0  # times --frames (large frames: fewer)

    def frame(self, seed: int, index: int):
        """(image, truth) with the style's density per 520x696 of frame area."""
        area = self.shape[0] * self.shape[1] / (520 * 696)
        style = replace(self.style, density=self.style.density * area)
        return synthetic_frame(seed, index, self.shape, style)


BASE = FrameStyle()
CONDITIONS = [
    Condition("default", BASE),
    Condition("small nuclei (d~8 px)", replace(BASE, scale=0.4), (260, 348)),
    Condition("small, dense", replace(BASE, scale=0.5, density=3.0), (260, 348)),
    Condition("large nuclei (d~40 px)", replace(BASE, scale=2.0), (1040, 1392), 0.5),
    Condition("huge nuclei (d~60 px)", replace(BASE, scale=3.0), (1040, 1392), 0.5),
    Condition("sparse", replace(BASE, density=0.3)),
    Condition("dense", replace(BASE, density=3.0)),
    Condition("confluent", replace(BASE, density=6.0, clumps=2.0)),
    Condition("clumped", replace(BASE, clumps=3.0)),
    Condition("dim (photons x0.1)", replace(BASE, photons=0.1)),
    Condition("photon-starved (x0.03)", replace(BASE, photons=0.03)),
    Condition("bright (photons x5)", replace(BASE, photons=5.0)),
    Condition("strong texture", replace(BASE, texture=0.4)),
    Condition("uneven background", replace(BASE, unevenness=0.7)),
    Condition("blurred (sigma 2.5)", replace(BASE, blur=2.5)),
    Condition("large, clumped", replace(BASE, scale=2.0, clumps=3.0), (1040, 1392), 0.5),
]


def pipeline_config(spec: str) -> PipelineConfig:
    """``preset[:key=value,key=value]`` as a validated pipeline config."""
    preset, _, rest = spec.partition(":")
    overrides = [f"pipeline={preset}", *(o for o in rest.split(",") if o)]
    return load_config(overrides).pipeline


def run_frame(job: tuple[Condition, int, int, list[tuple[str, PipelineConfig]]]):
    """Segment and score one frame with every pipeline: {spec: (score row, seconds)}."""
    condition, seed, index, pipelines = job
    image, truth = condition.frame(seed, index)
    out = {}
    for spec, cfg in pipelines:
        t0 = time.perf_counter()
        labels = segment(image, cfg).labels
        out[spec] = (score(truth, labels), time.perf_counter() - t0)
    return condition.name, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=8, help="frames per condition (520x696)")
    ap.add_argument("--seed", type=int, default=7001)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--pipelines", nargs="+", default=["blog2021", "nuclei_v1", "nuclei"])
    ap.add_argument("--conditions", nargs="*", help="names (prefixes) of conditions to run")
    ap.add_argument("--peers", nargs="*", default=[], choices=["cellprofiler"])
    args = ap.parse_args()
    chosen = [
        c
        for c in CONDITIONS
        if not args.conditions or any(c.name.startswith(p) for p in args.conditions)
    ]
    pipelines = [(spec, pipeline_config(spec)) for spec in args.pipelines]
    jobs = [
        (c, args.seed, i, pipelines)
        for c in chosen
        for i in range(max(1, round(args.frames * c.frames)))
    ]
    results: dict[str, dict[str, list]] = {c.name: {s: [] for s, _ in pipelines} for c in chosen}
    with ProcessPoolExecutor(args.workers) as pool:
        for name, per_pipeline in pool.map(run_frame, jobs):
            for spec, row in per_pipeline.items():
                results[name][spec].append(row)
    for peer in args.peers:
        add_peer(peer, chosen, args, results)
    print_table(results, args)


def add_peer(peer: str, chosen: list[Condition], args, results) -> None:
    """A peer tool's rows on the same frames (benchmarks/peers/)."""
    sys.path.insert(0, str(Path(__file__).parent / "peers"))
    import cellprofiler_peer as cellprofiler  # benchmarks/peers/cellprofiler_peer.py

    reason = cellprofiler.available()
    if reason:
        print(f"# {peer}: skipped ({reason})")
        return
    import tempfile

    for c in chosen:
        n = max(1, round(args.frames * c.frames))
        pairs = [c.frame(args.seed, i) for i in range(n)]
        diameter = round(20 * c.style.scale)
        with tempfile.TemporaryDirectory(prefix="hpcseg-peer-") as tmp:
            labels, seconds, startup = cellprofiler.segment(
                [p[0] for p in pairs], Path(tmp), (max(4, diameter // 2), diameter * 2)
            )
        per = (seconds - startup) / n
        results[c.name][f"{peer}"] = [
            (score(t, lab), per) for (_, t), lab in zip(pairs, labels, strict=True)
        ]


def print_table(results, args) -> None:
    print(f"seed {args.seed}, {args.frames} frames per condition (520x696 equivalents)")
    print("condition | pipeline | F1@0.5 | F1@0.7 | F1@0.9 | mean F1 | merges | splits | true "
          "| images/s")  # fmt: skip
    print("--- | --- | --- | --- | --- | --- | --- | --- | --- | ---")
    for name, per_pipeline in results.items():
        for spec, rows in per_pipeline.items():
            if not rows:
                continue
            p = pooled([r for r, _ in rows])
            rate = len(rows) / max(sum(s for _, s in rows), 1e-9)
            print(
                f"{name} | {spec} | {p['f1_50']:.3f} | {p['f1_70']:.3f} | {p['f1_90']:.3f} | "
                f"{p['f1_avg']:.3f} | {p['merges']} | {p['splits']} | {p['n_true']} | {rate:.1f}"
            )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
