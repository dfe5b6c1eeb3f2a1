"""NE, calibration, re-calibration and down-sampling on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from catalog2vec.ctr import metrics as M


def test_log_loss_and_ne_hand_computed() -> None:
    y = [1, 0, 0, 0]
    p = [0.5, 0.5, 0.5, 0.5]
    assert M.log_loss(y, p) == pytest.approx(math.log(2))
    # background CTR 0.25: H = -(0.25 ln 0.25 + 0.75 ln 0.75) = 0.562335...
    h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert M.entropy(0.25) == pytest.approx(h)
    assert M.normalized_entropy(y, p) == pytest.approx(math.log(2) / h)  # 0.693147 / 0.562335 = 1.232623
    assert M.normalized_entropy(y, p) == pytest.approx(1.232623, abs=1e-6)


def test_ne_of_background_predictor_is_one_and_perfect_is_zero() -> None:
    y = np.array([1, 0, 0, 0, 0])
    assert M.normalized_entropy(y, np.full(5, 0.2)) == pytest.approx(1.0)
    assert M.normalized_entropy(y, y.astype(float)) == pytest.approx(0.0, abs=1e-12)
    # explicit background CTR (paper: the training CTR)
    ll = M.log_loss(y, np.full(5, 0.2))
    assert M.normalized_entropy(y, np.full(5, 0.2), background_ctr=0.1) == pytest.approx(ll / M.entropy(0.1))


def test_calibration_hand_computed() -> None:
    # mean prediction 0.3, observed CTR 0.25 -> 1.2
    assert M.calibration([1, 0, 0, 0], [0.6, 0.2, 0.2, 0.2]) == pytest.approx(1.2)
    with pytest.raises(ValueError, match="without clicks"):
        M.calibration([0, 0], [0.1, 0.2])


def test_recalibration_formula() -> None:
    # p = 0.5 at w = 0.1: q = 0.5 / (0.5 + 0.5 / 0.1) = 0.5 / 5.5 = 1/11
    assert M.recalibrate(0.5, 0.1) == pytest.approx(1 / 11)
    assert M.recalibrate(np.array([0.2, 0.0, 1.0]), 1.0) == pytest.approx([0.2, 0.0, 1.0])
    # odds scale by w exactly
    p = np.array([0.05, 0.3, 0.9])
    q = M.recalibrate(p, 0.25)
    assert q / (1 - q) == pytest.approx(0.25 * p / (1 - p))
    with pytest.raises(ValueError):
        M.recalibrate(0.5, 0.0)


def test_downsample_then_recalibrate_restores_ctr() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(200_000) < 0.03).astype(int)
    w = 0.1
    keep = M.negative_downsample_mask(y, w, seed=2)
    assert y[keep].sum() == y.sum()  # every positive kept
    assert (~keep & (y == 0)).mean() == pytest.approx(0.9 * 0.97, abs=0.01)
    sampled_ctr = y[keep].mean()  # a constant model fitted on the sample predicts this
    assert sampled_ctr > 0.2
    assert M.recalibrate(sampled_ctr, w) == pytest.approx(0.03, rel=0.05)


def test_auc_and_evaluate() -> None:
    assert M.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert M.auc([0, 0], [0.1, 0.2]) is None
    e = M.evaluate([1, 0, 0, 0], [0.6, 0.2, 0.2, 0.2])
    assert e["rows"] == 4 and e["clicks"] == 1 and e["ctr"] == 0.25
    assert e["calibration"] == pytest.approx(1.2)
    with pytest.raises(ValueError, match="length"):
        M.log_loss([1, 0], [0.5])


@pytest.mark.spark
def test_spark_aggregates_equal_the_numpy_metrics(spark) -> None:
    """evaluate_frame (Spark sums + rank-sum AUC) == evaluate (numpy + scikit-learn), ties included;
    calibration_bins are equal-count deciles; cap_by_hash bounds a sample deterministically."""
    import pandas as pd

    from catalog2vec.lakehouse.sampling import cap_by_hash

    rng = np.random.default_rng(3)
    frames = []
    for g, n in (("a", 3000), ("b", 1000)):
        p = np.round(rng.beta(1, 12, n), 3)  # rounded: many tied scores
        y = (rng.random(n) < p * 1.3).astype(int)
        frames.append(pd.DataFrame({"g": g, "click": y, "p": p}))
    pdf = pd.concat(frames, ignore_index=True)
    df = spark.createDataFrame(pdf)
    got = M.evaluate_frame(df, "g")
    for g, part in pdf.groupby("g"):
        want = M.evaluate(part["click"], part["p"])
        assert got[g]["rows"] == want["rows"] and got[g]["clicks"] == want["clicks"]
        for key in ("ctr", "log_loss", "ne", "calibration"):
            assert got[g][key] == pytest.approx(want[key], abs=1e-9), key
        assert got[g]["auc"] == pytest.approx(want["auc"], abs=1e-12)
    bins = M.calibration_bins(df, "g")
    assert len(bins["a"]) == 10 and bins["a"]["pred"].is_monotonic_increasing
    assert bins["b"]["pred"].mean() == pytest.approx(pdf[pdf["g"] == "b"]["p"].mean())  # equal-count bins
    with pytest.raises(ValueError, match="NaN or null"):
        M.evaluate_frame(spark.createDataFrame(pd.DataFrame({"g": ["x"] * 2, "click": [0, 1], "p": [0.1, np.nan]})), "g")

    ids = spark.range(20_000).selectExpr("CAST(id AS STRING) AS impression_id")
    first = {r[0] for r in cap_by_hash(ids, 1000, "impression_id", 0).collect()}
    assert len(first) == 1000
    assert first == {r[0] for r in cap_by_hash(ids.repartition(7), 1000, "impression_id", 0).collect()}
    assert cap_by_hash(ids, 50_000, "impression_id", 0) is ids  # under the cap: untouched
