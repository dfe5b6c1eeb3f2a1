"""CTR metrics from He et al. 2014 and the down-sampling re-calibration.

* **log loss**: mean of ``-(y log p + (1-y) log(1-p))``.
* **Normalized Entropy (NE)**: log loss divided by the entropy of the background CTR
  ``-(c log c + (1-c) log(1-c))``; a model that always predicts the background CTR has NE = 1,
  lower is better. The background CTR is the evaluated window's own CTR unless one is given
  (the paper uses the training CTR).
* **calibration**: mean predicted CTR ÷ observed CTR (1 = perfectly calibrated on average).
* **re-calibration** after keeping a fraction ``w`` of the negatives: ``q = p / (p + (1-p)/w)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

EPS = 1e-15
FloatArray = npt.NDArray[np.float64]


def _arrays(y: Any, p: Any) -> tuple[FloatArray, FloatArray]:
    ya = np.asarray(y, dtype=np.float64).ravel()
    pa = np.asarray(p, dtype=np.float64).ravel()
    if ya.shape != pa.shape:
        raise ValueError(f"labels and predictions differ in length: {ya.shape} vs {pa.shape}")
    if ya.size == 0:
        raise ValueError("no rows to evaluate")
    if np.isnan(pa).any():
        raise ValueError("predictions contain NaN")
    return ya, pa


def log_loss(y: Any, p: Any) -> float:
    ya, pa = _arrays(y, p)
    pa = np.clip(pa, EPS, 1 - EPS)
    return float(-np.mean(ya * np.log(pa) + (1 - ya) * np.log(1 - pa)))


def entropy(ctr: float) -> float:
    """Binary entropy (nats) of a click rate; 0 for a degenerate rate of 0 or 1."""
    c = float(np.clip(ctr, EPS, 1 - EPS))
    return float(-(c * np.log(c) + (1 - c) * np.log(1 - c)))


def normalized_entropy(y: Any, p: Any, background_ctr: float | None = None) -> float:
    ya, pa = _arrays(y, p)
    ctr = float(ya.mean()) if background_ctr is None else background_ctr
    if ctr <= 0.0 or ctr >= 1.0:
        raise ValueError(f"NE is undefined for a background CTR of {ctr} (no clicks or no non-clicks)")
    return log_loss(ya, pa) / entropy(ctr)


def calibration(y: Any, p: Any) -> float:
    ya, pa = _arrays(y, p)
    clicks = ya.sum()
    if clicks == 0:
        raise ValueError("calibration is undefined without clicks")
    return float(pa.sum() / clicks)


def auc(y: Any, p: Any) -> float | None:
    """ROC AUC (None when only one class is present)."""
    from sklearn.metrics import roc_auc_score

    ya, pa = _arrays(y, p)
    if ya.min() == ya.max():
        return None
    return float(roc_auc_score(ya, pa))


def recalibrate(p: Any, w: float) -> Any:
    """Undo negative down-sampling at rate ``w``: ``q = p / (p + (1 - p) / w)``."""
    if not 0.0 < w <= 1.0:
        raise ValueError(f"negative down-sampling rate must be in (0, 1], got {w}")
    pa = np.asarray(p, dtype=np.float64)
    return pa / (pa + (1.0 - pa) / w)


def evaluate(y: Any, p: Any, background_ctr: float | None = None) -> dict[str, Any]:
    """All metrics of one window: rows, clicks, ctr, log_loss, ne, calibration, auc."""
    ya, pa = _arrays(y, p)
    return {
        "rows": int(ya.size),
        "clicks": int(ya.sum()),
        "ctr": float(ya.mean()),
        "log_loss": log_loss(ya, pa),
        "ne": normalized_entropy(ya, pa, background_ctr),
        "calibration": calibration(ya, pa),
        "auc": auc(ya, pa),
    }


def negative_downsample_mask(y: Any, w: float, seed: int = 0) -> npt.NDArray[np.bool_]:
    """Keep every positive and each negative with probability ``w`` (numpy, seeded)."""
    if not 0.0 < w <= 1.0:
        raise ValueError(f"negative down-sampling rate must be in (0, 1], got {w}")
    ya = np.asarray(y)
    rng = np.random.default_rng(seed)
    return np.asarray((ya == 1) | (rng.random(ya.size) < w))


def negative_downsample(df: DataFrame, w: float, seed: int = 0, label: str = "click") -> DataFrame:
    """Spark version: every positive row, each negative row with probability ``w``."""
    from pyspark.sql import functions as F

    if not 0.0 < w <= 1.0:
        raise ValueError(f"negative down-sampling rate must be in (0, 1], got {w}")
    if w >= 1.0:
        return df
    return df.where((F.col(label) == 1) | (F.rand(seed) < F.lit(w)))


def evaluate_frame(df: DataFrame, by: str, label: str = "click", pred: str = "p") -> dict[Any, dict[str, Any]]:
    """:func:`evaluate` for every value of column ``by`` of a Spark DataFrame, with Spark aggregates.

    Log loss, CTR and calibration are sums per group; the AUC is the exact Mann-Whitney rank sum
    (ties share their average rank, as scikit-learn's ``roc_auc_score``): predictions are grouped
    by distinct value, a running count over them (one window per group, on the executors) gives
    each value's rank. The driver receives one row per group. Example::

        evaluate_frame(preds, "model")["trees_lr"]["ne"]
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    y, p = F.col(label).cast("double"), F.col(pred).cast("double")
    pc = F.least(F.greatest(p, F.lit(EPS)), F.lit(1.0 - EPS))
    sums = df.groupBy(by).agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(y).alias("clicks"),
        F.sum(p).alias("p_sum"),
        F.sum(-(y * F.log(pc) + (1.0 - y) * F.log(1.0 - pc))).alias("ll_sum"),
        F.sum((p.isNull() | F.isnan(p)).cast("int")).alias("bad"),
    )
    ties = df.where(F.col(pred).isNotNull()).groupBy(by, pred).agg(F.sum(y).alias("pos"), F.count(F.lit(1)).alias("n"))
    running = Window.partitionBy(by).orderBy(pred).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    ranks = (
        ties.withColumn("cum", F.sum("n").over(running))
        .groupBy(by)
        .agg(F.sum(F.col("pos") * (F.col("cum") - (F.col("n") - 1) / 2.0)).alias("rank_sum"))
    )
    out: dict[Any, dict[str, Any]] = {}
    for r in sums.join(ranks, by, "left").collect():
        if r["bad"]:
            raise ValueError(f"predictions of {by}={r[by]!r} contain NaN or null")
        n, k = int(r["rows"]), float(r["clicks"])
        ctr = k / n
        if ctr <= 0.0 or ctr >= 1.0:
            raise ValueError(f"NE is undefined for a background CTR of {ctr} (no clicks or no non-clicks)")
        ll = float(r["ll_sum"]) / n
        neg = n - k
        out[r[by]] = {
            "rows": n,
            "clicks": int(k),
            "ctr": ctr,
            "log_loss": ll,
            "ne": ll / entropy(ctr),
            "calibration": float(r["p_sum"]) / k,
            "auc": (float(r["rank_sum"]) - k * (k + 1) / 2.0) / (k * neg),
        }
    return out


def calibration_bins(df: DataFrame, by: str, bins: int = 10, label: str = "click", pred: str = "p") -> dict[Any, Any]:
    """Per value of ``by``: a pandas frame (pred, obs) of the mean prediction and the observed CTR
    in each of ``bins`` equal-count bins of the predictions (the calibration plot), computed in Spark."""
    import pandas as pd
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy(by).orderBy(pred)
    g = (
        df.withColumn("_bin", F.ntile(bins).over(w))
        .groupBy(by, "_bin")
        .agg(F.avg(F.col(pred).cast("double")).alias("pred"), F.avg(F.col(label).cast("double")).alias("obs"))
    )
    pdf: pd.DataFrame = g.toPandas()  # groups x bins rows
    return {
        key: part.sort_values("_bin")[["pred", "obs"]].reset_index(drop=True)
        for key, part in pdf.groupby(by, sort=False)
    }
