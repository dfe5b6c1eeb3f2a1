"""SYNTHETIC impressions over catalog items, with a known logistic ground truth.

Every impression this module produces is labelled ``source = 'synthetic'`` and carries its
ground-truth click probability in ``true_ctr``; it is NOT real user behaviour. It exists so the
item-feature join (tags, embeddings) is exercised end to end and the gain from visual features
can be measured against a known truth.

Generative model (all draws from one seeded ``numpy.random.Generator``):

* ``n_users`` users, each in one of ``n_segments`` segments (the segment is an observed
  feature, the user is not). Segment ``s`` has latent affinities ``A[s, colour] ~ N(0,
  colour_strength²)`` and ``B[s, category] ~ N(0, category_strength²)``; a user's affinities are
  their segment's plus ``N(0, user_noise²)``.
* Each item has a small latent quality ``N(0, item_strength²)``. The item's TRUE colour and
  category are the catalog's ``color`` / ``category`` columns (lower-cased; missing = "unknown").
* An impression picks a user (uniform), an item (uniform), a slot position 1..``n_positions``,
  a device (mobile/desktop/tablet), a site (``n_sites``) and a time (``n_days`` days from
  ``start``, hour drawn from a diurnal profile).
* ``logit = bias + A_u[colour] + B_u[category] + quality[item] + position_effect·(position-1)
  + device_effect[device] + site_effect[site] + 0.25·sin(2π(hour-6)/24)``; ``bias`` is solved by
  bisection so the mean click probability equals ``base_ctr``; ``click ~ Bernoulli(sigmoid(logit))``.

Observed features (the ``features`` map): user_segment, device, position, site, hour, weekday.
Impression ids are ``syn-<seed>-<n>`` in time order, so the same parameters give the same table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SOURCE = "synthetic"
DEVICES = ("mobile", "desktop", "tablet")
FEATURES = ("user_segment", "device", "position", "site", "hour", "weekday")


@dataclass(frozen=True)
class SimulationParams:
    n_impressions: int = 100_000
    n_users: int = 2_000
    n_segments: int = 8
    n_sites: int = 10
    n_positions: int = 5
    n_days: int = 14
    base_ctr: float = 0.05
    colour_strength: float = 1.0
    category_strength: float = 0.5
    user_noise: float = 0.3
    item_strength: float = 0.2
    position_effect: float = -0.3
    seed: int = 0
    start: str = "2026-01-05T00:00:00"  # a Monday, UTC

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _solve_bias(logit: np.ndarray, target: float) -> float:
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _sigmoid(logit + mid).mean() < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def simulate(items: pd.DataFrame, params: SimulationParams) -> pd.DataFrame:
    """Synthetic impressions over ``items`` (columns item_id, color, category).

    Returns a pandas DataFrame: impression_id, ts (UTC), item_id, the observed feature columns
    (strings), click (0/1), true_ctr, source ('synthetic').
    """
    if items.empty:
        raise ValueError("no catalog items to simulate impressions over")
    for col in ("item_id", "color", "category"):
        if col not in items.columns:
            raise ValueError(f"items need a {col!r} column")
    if not 0.0 < params.base_ctr < 1.0:
        raise ValueError(f"base_ctr must be in (0, 1), got {params.base_ctr}")
    rng = np.random.default_rng(params.seed)
    items = items.drop_duplicates("item_id").sort_values("item_id").reset_index(drop=True)
    norm = lambda s: s.fillna("unknown").astype(str).str.strip().str.lower().replace("", "unknown")  # noqa: E731
    colour_idx, _ = pd.factorize(norm(items["color"]), sort=True)
    cat_idx, _ = pd.factorize(norm(items["category"]), sort=True)
    n_col, n_cat = colour_idx.max() + 1, cat_idx.max() + 1

    seg_a = rng.normal(0, params.colour_strength, (params.n_segments, n_col))
    seg_b = rng.normal(0, params.category_strength, (params.n_segments, n_cat))
    user_seg = rng.integers(0, params.n_segments, params.n_users)
    user_a = seg_a[user_seg] + rng.normal(0, params.user_noise, (params.n_users, n_col))
    user_b = seg_b[user_seg] + rng.normal(0, params.user_noise, (params.n_users, n_cat))
    quality = rng.normal(0, params.item_strength, len(items))
    device_eff = np.array([0.0, 0.2, -0.1])
    site_eff = rng.normal(0, 0.3, params.n_sites)

    n = params.n_impressions
    u = rng.integers(0, params.n_users, n)
    it = rng.integers(0, len(items), n)
    pos = rng.integers(1, params.n_positions + 1, n)
    dev = rng.choice(len(DEVICES), n, p=[0.6, 0.3, 0.1])
    site = rng.integers(0, params.n_sites, n)
    diurnal = 1.0 + 0.8 * np.sin(2 * np.pi * (np.arange(24) - 9) / 24)
    hour = rng.choice(24, n, p=diurnal / diurnal.sum())
    day = rng.integers(0, params.n_days, n)
    seconds = rng.integers(0, 3600, n)

    logit = (
        user_a[u, colour_idx[it]]
        + user_b[u, cat_idx[it]]
        + quality[it]
        + params.position_effect * (pos - 1)
        + device_eff[dev]
        + site_eff[site]
        + 0.25 * np.sin(2 * np.pi * (hour - 6) / 24)
    )
    logit = logit + _solve_bias(logit, params.base_ctr)
    p = _sigmoid(logit)
    click = (rng.random(n) < p).astype(np.int32)

    start = pd.Timestamp(datetime.fromisoformat(params.start)).tz_localize(UTC)
    ts = start + pd.to_timedelta(day * 86400 + hour * 3600 + seconds, unit="s")
    df = pd.DataFrame(
        {
            "ts": ts,
            "item_id": items["item_id"].astype(str).to_numpy()[it],
            "user_segment": pd.Series(user_seg[u]).map(lambda s: f"seg{s}"),
            "device": np.array(DEVICES)[dev],
            "position": pos.astype(str),
            "site": pd.Series(site).map(lambda s: f"site{s}"),
            "hour": hour.astype(str),
            "weekday": ts.dayofweek.astype(str),
            "click": click,
            "true_ctr": p,
        }
    )
    df = df.sort_values("ts", kind="stable").reset_index(drop=True)
    df.insert(0, "impression_id", [f"syn-{params.seed}-{i:09d}" for i in range(n)])
    df["source"] = SOURCE
    return df


def to_bronze(spark: SparkSession, pdf: pd.DataFrame, run_id: str) -> DataFrame:
    """Spark DataFrame in the ``bronze.impressions`` shape (features as a map)."""
    from pyspark.sql import functions as F

    sdf = spark.createDataFrame(pdf)
    feats = F.create_map(*[x for f in FEATURES for x in (F.lit(f), F.col(f).cast("string"))])
    return sdf.select(
        F.col("impression_id").cast("string"),
        F.col("ts").cast("timestamp"),
        F.col("item_id").cast("string"),
        feats.alias("features"),
        F.col("click").cast("int"),
        F.lit(SOURCE).alias("source"),
        F.col("true_ctr").cast("double"),
        F.lit(run_id).alias("run_id"),
    )


def items_from_catalog(catalog: DataFrame) -> pd.DataFrame:
    """(item_id, color, category) of ``bronze.catalog_items`` (Spark DataFrame) as pandas."""
    return catalog.select("item_id", "color", "category").toPandas()
