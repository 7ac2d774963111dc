"""Ground-truth scoring on hand-made label images with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpcseg.results.evaluate import THRESHOLDS, f1, pooled, score


def squares(*boxes, shape=(40, 60)) -> np.ndarray:
    labels = np.zeros(shape, np.int32)
    for i, (y, x, h, w) in enumerate(boxes, start=1):
        labels[y : y + h, x : x + w] = i
    return labels


TRUTH = squares((2, 2, 10, 10), (2, 20, 10, 10), (20, 2, 10, 10))


def test_perfect_match():
    s = score(TRUTH, TRUTH[::1, ::1].copy())
    assert (s["n_true"], s["n_pred"]) == (3, 3)
    assert all(s[f"tp_{round(t * 100)}"] == 3 for t in THRESHOLDS)
    assert s["f1_50"] == s["f1_70"] == s["f1_90"] == s["f1_avg"] == 1.0
    assert s["mean_iou"] == 1.0 and s["merges"] == 0 and s["splits"] == 0


def test_relabelled_prediction_is_still_perfect():
    pred = np.where(TRUTH > 0, 10 - TRUTH, 0)
    assert score(TRUTH, pred)["f1_90"] == 1.0


def test_one_merge():
    truth = squares((2, 2, 10, 10), (2, 12, 10, 10))  # two touching squares
    pred = squares((2, 2, 10, 20))  # one object over both
    s = score(truth, pred)
    assert s["merges"] == 1 and s["splits"] == 0
    assert s["tp_50"] == 0  # IoU of the merged object with either square is exactly 0.5
    assert s["f1_50"] == 0.0


def test_one_split():
    truth = squares((2, 2, 10, 20))
    pred = squares((2, 2, 10, 10), (2, 12, 10, 10))
    s = score(truth, pred)
    assert s["splits"] == 1 and s["merges"] == 0
    assert (s["n_true"], s["n_pred"], s["tp_50"]) == (1, 2, 0)


def test_shifted_objects():
    truth = squares((0, 0, 10, 10))
    pred = squares((0, 2, 10, 10))  # IoU = 80 / 120 = 2/3
    s = score(truth, pred)
    assert math.isclose(s["mean_iou"], 2 / 3)
    assert s["tp_60"] == 1 and s["tp_65"] == 1 and s["tp_70"] == 0
    assert s["f1_50"] == 1.0 and s["f1_70"] == 0.0
    assert math.isclose(s["f1_avg"], 4 / 9)  # 4 of the 9 thresholds (0.50-0.65) match


def test_empty_prediction_and_empty_truth():
    empty = np.zeros_like(TRUTH)
    s = score(TRUTH, empty)
    assert (s["n_pred"], s["tp_50"], s["f1_50"], s["merges"]) == (0, 0, 0.0, 0)
    assert math.isnan(s["mean_iou"])
    s = score(empty, TRUTH)
    assert (s["n_true"], s["n_pred"], s["f1_70"]) == (0, 3, 0.0)
    assert score(empty, empty)["f1_avg"] == 1.0


def test_pooled_sums_counts_before_dividing():
    a = score(TRUTH, TRUTH)  # 3 of 3
    b = score(TRUTH, np.zeros_like(TRUTH))  # 0 of 3
    total = pooled([a, b, {"n_true": None}])
    assert total["images_scored"] == 2 and total["tp_50"] == 3
    assert total["f1_50"] == pytest.approx(f1(3, 6, 3)) == pytest.approx(2 * 3 / 9)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in shape"):
        score(TRUTH, TRUTH[:10])
