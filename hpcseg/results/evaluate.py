"""Accuracy of a label image against instance ground truth.

The object-level metric of Caicedo et al. 2019 (BBBC039) and the DSB2018: objects are matched one
to one, a pair is a true positive when its IoU is above the threshold t, and
F1(t) = 2TP / (2TP + FP + FN); the average F1 is taken over t = 0.50, 0.55, ..., 0.90. For t >= 0.5
a match is unique by construction (two objects cannot both overlap a third by more than half of
their union). Also: mean IoU of the matches at 0.5, and counts of merges (one predicted object
covering >= 50 % of each of two or more true objects) and splits (the reverse).
"""

from __future__ import annotations

import numpy as np

THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(9))  # 0.50 .. 0.90


def tp_column(t: float) -> str:
    """The column of the true-positive count at IoU threshold ``t``: tp_50 ... tp_90."""
    return f"tp_{round(t * 100):d}"


TP_COLUMNS = tuple(tp_column(t) for t in THRESHOLDS)
# the images table's score columns (null for images without a mask): counts, then values
SCORE_COUNT_COLUMNS = ("n_true", "n_pred", *TP_COLUMNS, "merges", "splits")
SCORE_VALUE_COLUMNS = ("f1_50", "f1_70", "f1_90", "f1_avg", "mean_iou")


def overlaps(truth: np.ndarray, pred: np.ndarray):
    """For every overlapping pair: true label, predicted label, intersection and IoU; then
    the area of every true and of every predicted label (indexed by label)."""
    t = truth.ravel().astype(np.int64)
    p = pred.ravel().astype(np.int64)
    area_t = np.bincount(t)
    area_p = np.bincount(p)
    both = (t > 0) & (p > 0)
    width = int(p.max()) + 1 if p.size else 1
    pairs, inter = np.unique(t[both] * width + p[both], return_counts=True)
    ti, pi = pairs // width, pairs % width
    iou = inter / (area_t[ti] + area_p[pi] - inter)
    return ti, pi, inter, iou, area_t, area_p


def score(truth: np.ndarray, pred: np.ndarray) -> dict[str, float | int]:
    """Per-image counts and scores (TP per threshold, F1s, mean IoU, merges, splits)."""
    if truth.shape != pred.shape:
        raise ValueError(f"truth {truth.shape} and prediction {pred.shape} differ in shape")
    ti, pi, inter, iou, area_t, area_p = overlaps(truth, pred)
    n_true = int(np.count_nonzero(area_t[1:]))
    n_pred = int(np.count_nonzero(area_p[1:]))
    out: dict[str, float | int] = {"n_true": n_true, "n_pred": n_pred}
    for t in THRESHOLDS:
        out[tp_column(t)] = int(np.count_nonzero(iou > t))
    matched = iou > 0.5
    out["mean_iou"] = float(iou[matched].mean()) if matched.any() else float("nan")
    covers_true = inter >= 0.5 * area_t[ti]  # the prediction covers half of that true object
    covers_pred = inter >= 0.5 * area_p[pi]  # the true object covers half of that prediction
    out["merges"] = int(np.count_nonzero(np.bincount(pi[covers_true]) >= 2))
    out["splits"] = int(np.count_nonzero(np.bincount(ti[covers_pred]) >= 2))
    out.update(f1_scores(out))
    return out


def f1(tp: int, n_true: int, n_pred: int) -> float:
    """2TP / (2TP + FP + FN); 1.0 when both are empty."""
    denominator = n_true + n_pred  # = 2TP + FP + FN
    return 2.0 * tp / denominator if denominator else 1.0


def f1_scores(counts: dict) -> dict[str, float]:
    """F1 at 0.5, 0.7, 0.9 and averaged over all thresholds, from TP and object counts."""
    n_true, n_pred = counts["n_true"], counts["n_pred"]
    per_t = {t: f1(counts[tp_column(t)], n_true, n_pred) for t in THRESHOLDS}
    return {
        "f1_50": per_t[0.5],
        "f1_70": per_t[0.7],
        "f1_90": per_t[0.9],
        "f1_avg": float(np.mean(list(per_t.values()))),
    }


def pooled(rows: list[dict]) -> dict[str, float | int]:
    """Scores over many images: TP, true and predicted objects summed first (not averaged)."""
    rows = [r for r in rows if r.get("n_true") is not None]
    if not rows:
        return {}
    keys = ["n_true", "n_pred", "merges", "splits", *TP_COLUMNS]
    total = {k: int(sum(r[k] for r in rows)) for k in keys}
    total["images_scored"] = len(rows)
    total.update(f1_scores(total))
    return total
