"""Per-object measurements: hpcseg's vectorised `measure` against skimage's regionprops_table.

    python benchmarks/bench_measure.py [--frames 10] [--stacks 3]

Segments synthetic 520x696 frames with the nuclei pipeline, then times, on the same label images,
regionprops_table and hpcseg for the basic column set (everything but perimeter, Euler number and
solidity) and for the full set, and prints a table with the ratio (regionprops time / hpcseg time).
Then the same on synthetic 40x192x192 z-stacks (the columns regionprops defines in 3-D).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from skimage.measure import regionprops_table

from hpcseg.config.schemas import PipelineConfig
from hpcseg.data.synthetic import synthetic_frame, synthetic_stack
from hpcseg.pipeline.measure import measure
from hpcseg.pipeline.sampling import Sampling
from hpcseg.pipeline.segment import segment

BASIC = ("label", "area", "bbox", "centroid", "centroid_weighted", "mean_intensity",
         "intensity_min", "intensity_max", "intensity_std", "equivalent_diameter_area", "extent",
         "axis_major_length", "axis_minor_length", "eccentricity", "orientation")  # fmt: skip
FULL = (*BASIC, "perimeter", "euler_number", "solidity")
BASIC_3D = tuple(p for p in BASIC if p not in ("eccentricity", "orientation"))
FULL_3D = (*BASIC_3D, "euler_number", "solidity")


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
    ap.add_argument("--stacks", type=int, default=3)
    args = ap.parse_args()
    frames = []
    for i in range(args.frames):
        image, _ = synthetic_frame(77, i)
        frames.append((image, segment(image, PipelineConfig()).labels))
    stacks = []
    for i in range(args.stacks):
        image, _ = synthetic_stack(77, i, (40, 192, 192), 2.0)
        stacks.append((image, segment(image, PipelineConfig(), Sampling(0.5, 1.0)).labels))
    print(
        "data | column set | objects/image | regionprops_table ms/image | hpcseg ms/image | ratio"
    )
    print("--- | --- | --- | --- | --- | ---")
    for data, name, props, full, images in (
        ("520x696 frames", "basic (22 columns)", BASIC, False, frames),
        ("520x696 frames", "full (25 columns)", FULL, True, frames),
        ("40x192x192 stacks", "basic (25 columns)", BASIC_3D, False, stacks),
        ("40x192x192 stacks", "full (27 columns)", FULL_3D, True, stacks),
    ):
        if not images:
            continue
        theirs = best_of(
            lambda p=props, ims=images: [
                regionprops_table(lab, im, properties=p) for im, lab in ims
            ]
        )
        ours = best_of(
            lambda f=full, ims=images: [measure(lab, im, shape_features=f) for im, lab in ims]
        )
        n = len(images)
        per_image = sum(int(lab.max()) for _, lab in images) / n
        print(f"{data} | {name} | {per_image:.0f} | {theirs / n * 1000:.1f} | "
              f"{ours / n * 1000:.1f} | {theirs / ours:.1f}x")  # fmt: skip


if __name__ == "__main__":
    np.seterr(all="ignore")
    warnings.simplefilter("ignore")  # skimage warns on flat 3-D hulls (it returns inf solidity)
    main()
