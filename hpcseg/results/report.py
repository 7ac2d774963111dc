"""Pictures of a finished run: what a scientist looks at before trusting the numbers.

    hpcseg report <output.dir> [--overlays N]        (or output.report=true on the main job)

Writes into ``<output.dir>/report/``: the blog's area vs mean intensity scatter, histograms of
the main features (in µm when the pixel size is known), objects (and F1@0.7 when scored) per
image by image id with the failed images marked and named, and QC overlays (predicted and true
outlines on a contrast-stretched image, at native resolution or enlarged by whole pixels) for
the best and worst scored images (or the first images when there is no ground truth). The
report is written whole or not at all; a gone input image is one error line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from skimage.segmentation import find_boundaries

from hpcseg.config.schemas import PipelineConfig
from hpcseg.data.reader import read_image, read_mask
from hpcseg.errors import ImageError, UserError
from hpcseg.pipeline import diameter
from hpcseg.pipeline.sampling import Sampling
from hpcseg.pipeline.segment import segment, with_refinement
from hpcseg.results.store import Store


def _pyplot():
    """matplotlib with the file-only Agg backend, imported on first use: it is slow to import
    and only drawing needs it (a run without output.report=true never loads it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, metadata: dict | None = None) -> Path:
    fig.savefig(path, dpi=100, metadata=metadata)
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


def _pipeline_of(run: dict, row: dict) -> PipelineConfig:
    """The pipeline that made ``row``: the run's, with the image's own diameter and the
    smoothing its row's contrast to noise gave (a redraw measures neither again: a tiled row
    measured them on samples; a row without a diameter had the reference's lengths). A run
    from before the diameter keeps its fixed lengths, one from before
    ``refine.peak_smoothing`` measured the objects' bright levels on the smoothed image, one
    from before the contrast to noise smoothed at the size's sigma. (Tiled rows from before
    2026-12-07 ran ``refine.method=auto`` as components; they are redrawn with today's
    chain.)"""
    merged = OmegaConf.merge(OmegaConf.structured(PipelineConfig), run["config"]["pipeline"])
    if "peak_smoothing" not in run["config"]["pipeline"].get("refine", {}):
        merged.refine.peak_smoothing = 0.0
    if "contrast_to_noise" not in run["config"]["pipeline"].get("smooth", {}):
        merged.smooth.contrast_to_noise = 0.0  # before the noise: the size's smoothing
    cfg = with_refinement(OmegaConf.to_object(merged))
    ndim = run["config"]["dataset"].get("ndim", 2)
    if "diameter" not in run["config"]["pipeline"]:  # its lengths were the reference's
        return diameter.resolve(cfg, diameter.REFERENCE, ndim)
    if diameter.measures_noise(cfg, ndim):  # the sigma its row's contrast gave, not a new one
        contrast = row.get("contrast_to_noise")
        scale = row.get("diameter") or diameter.REFERENCE
        sigma = diameter.resolve(cfg, scale, ndim, contrast).smooth.sigma
        cfg = replace(cfg, smooth=replace(cfg.smooth, sigma=sigma))
    if diameter.needs(cfg):  # its diameter (none found: the reference's), not a new one
        return replace(cfg, diameter=repr(float(row.get("diameter") or diameter.REFERENCE)))
    return cfg


class ReportError(UserError):
    """The report cannot be drawn (no results, an input image gone); nothing was written."""


MIN_OVERLAY_SIDE = 600  # QC overlays are enlarged by whole pixels to at least this wide/high
MAX_TICK_LABELS = 60  # image ids written under the per-image plot (every k-th beyond this)


def write_report(out_dir: str | Path, n_overlays: int = 3) -> list[Path]:
    """Write the report PNGs into ``<out_dir>/report/`` (all or none: they are drawn into a
    temporary folder first, which then replaces the old report); return their paths."""
    store = Store(out_dir)
    images = store.read_images()
    objects = store.read_objects()
    if images is None or objects is None:
        raise ReportError(f"{store.root} holds no hpcseg results (objects/ and images/)")
    rows = sorted(images.to_pylist(), key=lambda r: r["image_id"])
    ok = [r for r in rows if r["status"] == "ok"]
    try:
        run = json.loads(store.run_json.read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(
            f"{store.run_json} cannot be read ({exc}): it is the run's config"
        ) from None
    picks = _overlay_picks(ok, n_overlays)
    for _, row in picks:  # before anything is drawn: a gone input is one line, no report
        for kind, path in (("input image", row["path"]), ("mask", row.get("mask_path"))):
            if path and not Path(path).exists():
                raise ReportError(
                    f"{kind} {path} (image {row['image_id']}) is gone: the QC overlays draw it "
                    "again; put it back, or leave the overlays out with --overlays 0"
                )
    final = store.root / "report"
    draft = Path(tempfile.mkdtemp(prefix=".report-", dir=store.root))
    umask = os.umask(0)
    os.umask(umask)
    draft.chmod(0o777 & ~umask)  # mkdtemp's 0700 would hide the report from the project group
    try:
        names = _plots(draft, rows, objects, run)
        names += _overlays(draft, picks, run)
        _swap_in(draft, final)
    except BaseException:
        shutil.rmtree(draft, ignore_errors=True)
        raise
    return [final / name for name in names]


def _swap_in(draft: Path, final: Path) -> None:
    """``draft`` becomes ``final``; the old ``final`` is moved aside first and deleted after,
    so a failure leaves one whole report, old or new."""
    old = final.with_name(f".{final.name}-old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    try:
        os.replace(draft, final)
    except BaseException:
        if old.exists():
            os.replace(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _units(objects, ndim: int) -> tuple[str, str, dict[str, tuple[str, str]]]:
    """(size column, its axis label, {feature column: (column to plot, axis label)}): µm
    where the objects table has the µm columns (the pixel size was known)."""
    microns = "area_um2" in objects.column_names or "volume_um3" in objects.column_names
    if ndim == 3:
        size = ("volume_um3", "volume (µm³)") if microns else ("area", "volume (voxels)")
    else:
        size = ("area_um2", "area (µm²)") if microns else ("area", "area (pixels)")
    axes = "zyx"[-ndim:]
    features = {"size": size, "mean_intensity": ("mean_intensity", "mean intensity")}
    for a in range(ndim):
        column = f"centroid-{a}_um" if microns else f"centroid-{a}"
        unit = "µm" if microns else "pixels"
        features[f"centroid-{a}"] = (column, f"centroid {axes[a]} ({unit})")
    return size[0], size[1], features


def _plots(folder: Path, rows: list[dict], objects, run: dict) -> list[str]:
    """The scatter, the histograms and the per-image plot; their file names."""
    plt = _pyplot()
    ndim = run["config"]["dataset"].get("ndim", 2)
    size_column, size_label, features = _units(objects, ndim)
    size = np.asarray(objects.column(size_column))
    mean = np.asarray(objects.column("mean_intensity"))

    fig, ax = plt.subplots(figsize=(6, 5), layout="constrained")
    ax.scatter(size, mean, s=4, alpha=0.4)
    ax.set(xlabel=size_label, ylabel="mean intensity", title=f"{len(size)} objects")
    _save(fig, folder / "area_vs_mean_intensity.png")

    shown = [(c, label) for c, label in features.values() if c in objects.column_names]
    fig, axes = plt.subplots(1, len(shown), figsize=(3.6 * len(shown), 3.2), layout="constrained")
    for ax, (column, label) in zip(np.atleast_1d(axes), shown, strict=True):
        ax.hist(np.asarray(objects.column(column)), bins=50)
        ax.set(xlabel=label, ylabel="objects")
        ax.tick_params(axis="x", labelsize=8)
    _save(fig, folder / "histograms.png")

    _per_image(folder / "per_image.png", rows)
    return ["area_vs_mean_intensity.png", "histograms.png", "per_image.png"]


def _per_image(path: Path, rows: list[dict]) -> None:
    """Objects (and F1@0.7 when scored) per image, by image id; failed images marked."""
    plt = _pyplot()
    ids = [r["image_id"] for r in rows]
    failed = [i for i, r in enumerate(rows) if r["status"] != "ok"]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(min(max(6, len(rows) * 0.18), 30), 4.5), layout="constrained")
    counts = [(r["n_objects"] or 0) if r["status"] == "ok" else 0 for r in rows]
    ax.bar(x, counts, color="tab:blue")
    if failed:
        ax.plot(failed, [0] * len(failed), "x", color="black", markersize=8, label="failed")
        ax.legend(loc="upper right")
    step = max(1, math.ceil(len(rows) / MAX_TICK_LABELS))
    ax.set_xticks(x[::step], ids[::step], rotation=90, fontsize=6)
    title = f"objects per image ({len(rows)} images"
    title += f"; {len(failed)} failed: {_list(ids[i] for i in failed)})" if failed else ")"
    ax.set(ylabel="objects", title=title, xlim=(-0.6, len(rows) - 0.4))
    ax.title.set_fontsize(9)
    if any(r.get("f1_70") is not None for r in rows):
        twin = ax.twinx()
        f1 = [r.get("f1_70") if r.get("f1_70") is not None else np.nan for r in rows]
        twin.plot(x, f1, "o-", color="tab:red", markersize=3)
        twin.set(ylabel="F1 @ IoU 0.7", ylim=(0, 1))
    failed_ids = ", ".join(ids[i] for i in failed)
    _save(fig, path, {"Description": f"failed: {failed_ids}" if failed else "failed: none"})


def _list(ids, most: int = 5) -> str:
    ids = list(ids)
    return ", ".join(ids[:most]) + (f" and {len(ids) - most} more" if len(ids) > most else "")


def _overlay_picks(rows: list[dict], n: int) -> list[tuple[str, dict]]:
    """(tag, row) of the images to overlay: the n worst and n best scored, else the first n."""
    scored = [r for r in rows if r.get("f1_70") is not None]
    if scored:
        ranked = sorted(scored, key=lambda r: r["f1_70"])
        picks = [("worst", r) for r in ranked[:n]] + [("best", r) for r in ranked[::-1][:n]]
    else:
        picks = [("image", r) for r in rows[:n]]
    seen: set[str] = set()
    unique = []
    for tag, row in picks:
        if row["image_id"] not in seen:
            seen.add(row["image_id"])
            unique.append((tag, row))
    return unique


def _overlays(folder: Path, picks: list[tuple[str, dict]], run: dict) -> list[str]:
    """QC overlays at native resolution (enlarged by whole pixels to at least
    MIN_OVERLAY_SIDE), with a caption band above the image; their file names."""
    dataset = run["config"]["dataset"]
    ndim = dataset.get("ndim", 2)
    sampling = Sampling(dataset.get("pixel_size") or None, dataset.get("z_step") or None)
    names = []
    for tag, row in picks:
        try:
            image = read_image(row["path"], 2**31, False, ndim, dataset.get("channel")).pixels
            truth = read_mask(row["mask_path"], image.shape) if row.get("mask_path") else None
        except ImageError as exc:
            raise ReportError(
                f"input image {row['path']} (image {row['image_id']}): {exc}"
            ) from None
        predicted = segment(image, _pipeline_of(run, row), sampling).labels
        plane = ""
        if ndim == 3:  # the plane with the most object voxels
            z = int(np.argmax((predicted > 0).sum(axis=(1, 2))))
            image, predicted = image[z], predicted[z]
            truth = truth[z] if truth is not None else None
            plane = f", plane z={z}"
        score = f", F1@0.7 {row['f1_70']:.2f}" if row.get("f1_70") is not None else ""
        legend = "red: hpcseg, green: truth" if truth is not None else "red: hpcseg"
        caption = f"{row['image_id']}{score}{plane} ({legend})"
        name = f"qc_{tag}_{row['image_id']}.png"
        overlay_picture(overlay(image, predicted, truth), caption).save(
            folder / name, pnginfo=_png_text(caption)
        )
        names.append(name)
    return names


def overlay_picture(rgb: np.ndarray, caption: str):
    """The overlay as an 8-bit picture at native resolution or enlarged by a whole factor (each
    pixel a block: 1-pixel outlines stay sharp), under a caption band."""
    from PIL import Image, ImageDraw

    zoom = max(1, math.ceil(MIN_OVERLAY_SIDE / max(rgb.shape[:2])))
    pixels = np.round(rgb * 255).astype(np.uint8).repeat(zoom, axis=0).repeat(zoom, axis=1)
    band = 18
    canvas = Image.new("RGB", (pixels.shape[1], pixels.shape[0] + band), "white")
    canvas.paste(Image.fromarray(pixels), (0, band))
    ImageDraw.Draw(canvas).text((4, 3), caption, fill="black")
    return canvas


def _png_text(caption: str):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Description", caption)
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hpcseg report", description=__doc__.splitlines()[0])
    ap.add_argument("output_dir")
    ap.add_argument("--overlays", type=int, default=3, help="best and worst images to overlay")
    args = ap.parse_args(argv)
    try:
        paths = write_report(args.output_dir, args.overlays)
    except ReportError as exc:
        print(f"hpcseg: error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
