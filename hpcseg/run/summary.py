"""The end of a run: totals over the dataset as stored, and the summary lines users read."""

from __future__ import annotations

import statistics

from hpcseg.pipeline.diameter import noise_factor
from hpcseg.results import evaluate
from hpcseg.results.evaluate import SCORE_COUNT_COLUMNS
from hpcseg.results.store import Store
from hpcseg.run.batches import RunTotals


def summarise(
    store: Store,
    ids: set[str],
    skipped: int,
    totals: RunTotals,
    wall: float,
    compute: float,
    contrast_reference: float = 0.0,
) -> dict:
    """Totals over the dataset's images as stored (this run and earlier ones);
    ``contrast_reference``: ``pipeline.smooth.contrast_to_noise``, to count the images it
    smoothed more."""
    columns = ["image_id", "status", "n_objects", "mask_path", "diameter", "contrast_to_noise",
               *SCORE_COUNT_COLUMNS]  # fmt: skip
    table = store.read_images(columns=columns)
    rows = table.to_pylist() if table is not None else []
    ok = [r for r in rows if r["image_id"] in ids and r["status"] == "ok"]
    processed = totals.n_ok + totals.n_failed
    scored = [r for r in ok if r["n_true"] is not None]
    diameters = sorted(r["diameter"] for r in ok if r["diameter"] is not None)
    contrasts = sorted(c for r in ok if (c := r["contrast_to_noise"]) is not None)
    return {
        "accuracy": evaluate.pooled(ok),
        # images a run with ground truth could not score: no mask matched, or a mismatched one
        "images_not_scored": len(ok) - len(scored)
        if scored or any(r["mask_path"] for r in ok)
        else 0,
        "images_in_dataset": len(ids),
        "images_ok": len(ok),
        "images_failed": len(ids) - len(ok),
        "objects": sum(r["n_objects"] for r in ok),
        # the nucleus diameters (px) the images' lengths came from: what diameter=auto decided
        "diameter": {
            "median": float(statistics.median(diameters)),
            "min": diameters[0],
            "max": diameters[-1],
            "images": len(diameters),
        }
        if diameters
        else None,
        # their contrast to noise, and how many images it smoothed more (photon-starved)
        "contrast_to_noise": {
            "median": float(statistics.median(contrasts)),
            "min": contrasts[0],
            "max": contrasts[-1],
            "images": len(contrasts),
            "smoothed_more": sum(noise_factor(c, contrast_reference) > 1 for c in contrasts),
        }
        if contrasts
        else None,
        "processed_this_run": processed,
        "failed_this_run": totals.n_failed,
        "skipped_already_done": skipped,
        "wall_seconds": round(wall, 3),
        "compute_seconds": round(compute, 3),
        "images_per_second": round(processed / compute, 2) if compute > 0 and processed else 0.0,
    }


def print_summary(s: dict, store: Store) -> None:
    print(
        f"hpcseg: {s['images_in_dataset']} images: {s['images_ok']} ok, {s['images_failed']} "
        f"failed ({s['processed_this_run']} processed now, {s['skipped_already_done']} already "
        f"done); {s['objects']} objects; wall {s['wall_seconds']:.1f} s "
        f"({s['compute_seconds']:.1f} s on the cluster, {s['images_per_second']:.1f} images/s)",
        flush=True,
    )
    d = s.get("diameter")
    if d:
        spread = f", {d['min']:.1f}-{d['max']:.1f}" if d["min"] != d["max"] else ""
        print(
            f"hpcseg: nucleus diameter {d['median']:.1f} px (median over {d['images']} images"
            f"{spread}; pipeline.diameter sets it)",
            flush=True,
        )
    c = s.get("contrast_to_noise")
    if c:
        more = c["smoothed_more"]
        print(
            f"hpcseg: contrast to noise {c['median']:.1f} (median over {c['images']} images, "
            f"{c['min']:.1f}-{c['max']:.1f}); {more} image{'' if more == 1 else 's'} smoothed "
            "more for noise (pipeline.smooth.contrast_to_noise)",
            flush=True,
        )
    acc = s["accuracy"]
    if acc:
        print(
            f"hpcseg: accuracy over {acc['images_scored']} images with ground truth: "
            f"F1@0.5 {acc['f1_50']:.3f}, F1@0.7 {acc['f1_70']:.3f}, F1@0.9 {acc['f1_90']:.3f}, "
            f"mean F1 {acc['f1_avg']:.3f}; {acc['merges']} merges, {acc['splits']} splits "
            f"({acc['n_pred']} objects found, {acc['n_true']} true)",
            flush=True,
        )
    if s["images_not_scored"]:
        print(
            f"hpcseg: warning: {s['images_not_scored']} image(s) could not be scored (no mask "
            "matched, or the mask did not fit: see the `error` column of their images rows)",
            flush=True,
        )
    print(f"hpcseg: results in {store.root}  (objects/, images/, run.json)", flush=True)
