"""Per-object measurements: hpcseg's vectorised `measure` against skimage's regionprops_table.

    python benchmarks/bench_measure.py [--frames 10]

Segments synthetic 520x696 frames with the nuclei pipeline, then times, on the same label images,
regionprops_table and hpcseg for the basic column set (everything but perimeter, Euler number and
solidity) and for the full set, and prints a table with the ratio (regionprops time / hpcseg time).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from skimage.measure import regionprops_table

from hpcseg.config import PipelineConfig
from hpcseg.data.synthetic import synthetic_frame
from hpcseg.pipeline.measure import measure
from hpcseg.pipeline.run import segment

BASIC = ("label", "area", "bbox", "centroid", "centroid_weighted", "mean_intensity",
         "intensity_min", "intensity_max", "intensity_std", "equivalent_diameter_area", "extent",
         "axis_major_length", "axis_minor_length", "eccentricity", "orientation")  # fmt: skip
FULL = (*BASIC, "perimeter", "euler_number", "solidity")


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10)
    args = ap.parse_args()
    frames = []
    for i in range(args.frames):
        image, _ = synthetic_frame(77, i)
        frames.append((image, segment(image, PipelineConfig()).labels))
    n_objects = sum(int(lab.max()) for _, lab in frames)
    print(f"{args.frames} frames of 520x696, {n_objects / args.frames:.0f} objects per frame")
    print("column set | regionprops_table ms/frame | hpcseg ms/frame | ratio")
    print("--- | --- | --- | ---")
    for name, props, full in (
        ("basic (22 columns)", BASIC, False),
        ("full (25 columns)", FULL, True),
    ):
        theirs = best_of(
            lambda p=props: [regionprops_table(lab, im, properties=p) for im, lab in frames]
        )
        ours = best_of(lambda f=full: [measure(lab, im, shape_features=f) for im, lab in frames])
        print(f"{name} | {theirs / args.frames * 1000:.1f} | {ours / args.frames * 1000:.1f} | "
              f"{theirs / ours:.1f}x")  # fmt: skip


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
