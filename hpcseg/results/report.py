"""Pictures of a finished run: what a scientist looks at before trusting the numbers.

    hpcseg report <output.dir> [--overlays N]        (or output.report=true on the main job)

Writes into ``<output.dir>/report/``: the blog's area vs mean intensity scatter, histograms of
the main features, objects (and F1@0.7 when scored) per image, and QC overlays (predicted and
true outlines on a contrast-stretched image) for the best and worst scored images (or the first
images when there is no ground truth).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from skimage.segmentation import find_boundaries

from hpcseg.config.schemas import PipelineConfig
from hpcseg.data.reader import read_image, read_mask
from hpcseg.pipeline.sampling import Sampling
from hpcseg.pipeline.segment import segment
from hpcseg.results.store import Store


def _pyplot():
    """matplotlib with the file-only Agg backend, imported on first use: it is slow to import
    and only drawing needs it (a run without output.report=true never loads it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def stretch(image: np.ndarray, objects: np.ndarray | None = None) -> np.ndarray:
    """Contrast stretch to [0, 1] between the 1st and 99.5th percentiles (at least the 99th
    percentile inside ``objects``, so sparse nuclei are not saturated)."""
    lo, hi = np.percentile(image, [1, 99.5])
    if objects is not None and objects.any():
        hi = max(hi, float(np.percentile(image[objects], 99)))
    return np.clip((image.astype(np.float32) - lo) / max(hi - lo, 1e-6), 0, 1)


def overlay(image: np.ndarray, predicted: np.ndarray, truth: np.ndarray | None) -> np.ndarray:
    """RGB picture: the stretched image in grey, true outlines green, predicted outlines red."""
    grey = stretch(image, predicted > 0)
    rgb = np.stack([grey, grey, grey], axis=-1)
    if truth is not None:
        rgb[find_boundaries(truth, mode="inner")] = (0.1, 0.9, 0.1)
    rgb[find_boundaries(predicted, mode="inner")] = (1.0, 0.15, 0.15)
    return rgb


def _pipeline_of(run: dict):
    merged = OmegaConf.merge(OmegaConf.structured(PipelineConfig), run["config"]["pipeline"])
    return OmegaConf.to_object(merged)


def write_report(out_dir: str | Path, n_overlays: int = 3) -> list[Path]:
    """Write the report PNGs; return their paths."""
    plt = _pyplot()
    store = Store(out_dir)
    images = store.read_images()
    objects = store.read_objects()
    if images is None or objects is None:
        raise FileNotFoundError(f"{store.root} holds no hpcseg results (objects/ and images/)")
    folder = store.root / "report"
    folder.mkdir(exist_ok=True)
    rows = [r for r in images.to_pylist() if r["status"] == "ok"]
    area = np.asarray(objects.column("area"))
    mean = np.asarray(objects.column("mean_intensity"))
    written = []

    fig, ax = plt.subplots(figsize=(6, 5))
    ax.scatter(area, mean, s=4, alpha=0.4)
    ax.set(
        xlabel="area (pixels; voxels in 3-D)", ylabel="mean intensity", title=f"{len(area)} objects"
    )
    written.append(_save(fig, folder / "area_vs_mean_intensity.png"))

    features = [c for c in ("area", "mean_intensity", "centroid-0", "centroid-1")
                if c in objects.column_names]  # fmt: skip
    fig, axes = plt.subplots(1, len(features), figsize=(4 * len(features), 3.5))
    for ax, name in zip(np.atleast_1d(axes), features, strict=True):
        ax.hist(np.asarray(objects.column(name)), bins=50)
        ax.set(title=name, ylabel="objects")
    written.append(_save(fig, folder / "histograms.png"))

    scored = [r for r in rows if r.get("f1_70") is not None]
    fig, ax = plt.subplots(figsize=(max(6, len(rows) * 0.15), 4))
    ax.bar(range(len(rows)), [r["n_objects"] for r in rows], color="tab:blue")
    ax.set(xlabel="image", ylabel="objects", title="objects per image")
    if scored:
        twin = ax.twinx()
        twin.plot(range(len(rows)), [r.get("f1_70") for r in rows], "o-", color="tab:red")
        twin.set(ylabel="F1 @ IoU 0.7", ylim=(0, 1))
    written.append(_save(fig, folder / "per_image.png"))

    written += _overlays(store, rows, scored, folder, n_overlays)
    return written


def _overlays(store: Store, rows, scored, folder: Path, n: int) -> list[Path]:
    plt = _pyplot()
    run = json.loads(store.run_json.read_text())
    pipeline = _pipeline_of(run)
    dataset = run["config"]["dataset"]
    ndim = dataset.get("ndim", 2)
    sampling = Sampling(dataset.get("pixel_size") or None, dataset.get("z_step") or None)
    if scored:
        ranked = sorted(scored, key=lambda r: r["f1_70"])
        picks = [("worst", r) for r in ranked[:n]] + [("best", r) for r in ranked[::-1][:n]]
    else:
        picks = [("image", r) for r in rows[:n]]
    written, seen = [], set()
    for tag, row in picks:
        if row["image_id"] in seen:
            continue
        seen.add(row["image_id"])
        image = read_image(row["path"], 2**31, False, ndim, dataset.get("channel")).pixels
        predicted = segment(image, pipeline, sampling).labels
        truth = read_mask(row["mask_path"], image.shape) if row.get("mask_path") else None
        plane = ""
        if ndim == 3:  # the plane with the most object voxels
            z = int(np.argmax((predicted > 0).sum(axis=(1, 2))))
            image, predicted = image[z], predicted[z]
            truth = truth[z] if truth is not None else None
            plane = f", plane z={z}"
        zoom = max(1.0, 600 / max(image.shape))  # small images drawn at least 6 inches wide
        fig, ax = plt.subplots(
            figsize=(image.shape[1] * zoom / 100, image.shape[0] * zoom / 100 + 0.4)
        )
        ax.imshow(overlay(image, predicted, truth))
        score = f", F1@0.7 {row['f1_70']:.2f}" if row.get("f1_70") is not None else ""
        ax.set_title(f"{row['image_id']}{score}{plane} (red: hpcseg, green: truth)", fontsize=8)
        ax.axis("off")
        written.append(_save(fig, folder / f"qc_{tag}_{row['image_id']}.png"))
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hpcseg report", description=__doc__.splitlines()[0])
    ap.add_argument("output_dir")
    ap.add_argument("--overlays", type=int, default=3, help="best and worst images to overlay")
    args = ap.parse_args(argv)
    try:
        paths = write_report(args.output_dir, args.overlays)
    except FileNotFoundError as exc:
        print(f"hpcseg: error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
