"""SYNTHETIC impressions over catalog items, with a known logistic ground truth.

Every impression this module produces is labelled ``source = 'synthetic'`` and carries its
ground-truth click probability in ``true_ctr``; it is NOT real user behaviour. It exists so the
item-feature join (tags, embeddings) is exercised end to end and the gain from visual features
can be measured against a known truth.

Generative model (all draws from one seeded ``numpy.random.Generator``, except the item quality,
a function of (seed, item_id): the driver never draws, or holds, one value per catalog item):

* ``n_users`` users, each in one of ``n_segments`` segments (the segment is an observed
  feature, the user is not). Segment ``s`` has latent affinities ``A[s, colour] ~ N(0,
  colour_strength²)`` and ``B[s, category] ~ N(0, category_strength²)``; a user's affinities are
  their segment's plus ``N(0, user_noise²)``.
* Each item has a small latent quality ``N(0, item_strength²)`` (:func:`item_quality`). The item's TRUE colour and
  category are the catalog's ``color`` / ``category`` columns (lower-cased; missing = "unknown").
* An impression picks a user (uniform), an item (uniform: a position in item_id order; with
  :func:`simulate_spark` the items stay in the executors and only the drawn ones are fetched), a slot position 1..``n_positions``,
  a device (mobile/desktop/tablet), a site (``n_sites``) and a time (``n_days`` days from
  ``start``, hour drawn from a diurnal profile).
* ``logit = bias + A_u[colour] + B_u[category] + quality[item] + position_effect·(position-1)
  + device_effect[device] + site_effect[site] + 0.25·sin(2π(hour-6)/24)``; ``bias`` is solved by
  bisection so the mean click probability equals ``base_ctr``; ``click ~ Bernoulli(sigmoid(logit))``.

Observed features (the ``features`` map): user_segment, device, position, site, hour, weekday.
Impression ids are ``syn-<seed>-<n>`` in time order, so the same parameters give the same table.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

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


@dataclass(frozen=True)
class Draws:
    """The seeded draws of one simulation over ``n_items`` items (positions in item_id order) with
    ``n_col`` colours and ``n_cat`` categories: user affinities and one value per impression."""

    user_seg: np.ndarray
    user_a: np.ndarray  # (n_users, n_col)
    user_b: np.ndarray  # (n_users, n_cat)
    site_eff: np.ndarray
    u: np.ndarray  # per impression: user, item position, slot, device, site, hour, day, second
    it: np.ndarray
    pos: np.ndarray
    dev: np.ndarray
    site: np.ndarray
    hour: np.ndarray
    day: np.ndarray
    seconds: np.ndarray
    click_u: np.ndarray  # uniform per impression: click = click_u < p


def _check(params: SimulationParams, n_items: int) -> None:
    if n_items == 0:
        raise ValueError("no catalog items to simulate impressions over")
    if not 0.0 < params.base_ctr < 1.0:
        raise ValueError(f"base_ctr must be in (0, 1), got {params.base_ctr}")


def draw(params: SimulationParams, n_items: int, n_col: int, n_cat: int) -> Draws:
    """Every random draw of the simulation from one ``numpy.random.Generator(seed)``; its size is
    O(users·colours + impressions), never O(items): an impression draws an item position."""
    rng = np.random.default_rng(params.seed)
    seg_a = rng.normal(0, params.colour_strength, (params.n_segments, n_col))
    seg_b = rng.normal(0, params.category_strength, (params.n_segments, n_cat))
    user_seg = rng.integers(0, params.n_segments, params.n_users)
    user_a = seg_a[user_seg] + rng.normal(0, params.user_noise, (params.n_users, n_col))
    user_b = seg_b[user_seg] + rng.normal(0, params.user_noise, (params.n_users, n_cat))
    site_eff = rng.normal(0, 0.3, params.n_sites)
    n = params.n_impressions
    u = rng.integers(0, params.n_users, n)
    it = rng.integers(0, n_items, n)
    pos = rng.integers(1, params.n_positions + 1, n)
    dev = rng.choice(len(DEVICES), n, p=[0.6, 0.3, 0.1])
    site = rng.integers(0, params.n_sites, n)
    diurnal = 1.0 + 0.8 * np.sin(2 * np.pi * (np.arange(24) - 9) / 24)
    hour = rng.choice(24, n, p=diurnal / diurnal.sum())
    day = rng.integers(0, params.n_days, n)
    seconds = rng.integers(0, 3600, n)
    return Draws(user_seg, user_a, user_b, site_eff, u, it, pos, dev, site, hour, day, seconds, rng.random(n))


def item_quality(item_ids: np.ndarray, seed: int, strength: float) -> np.ndarray:
    """Each item's latent quality ``N(0, strength²)``, a function of (seed, item_id) alone (two
    uniforms from SHA-256, Box-Muller): no per-catalog draw, so the driver never draws O(items)."""
    out = np.empty(len(item_ids), dtype=np.float64)
    for i, iid in enumerate(item_ids):
        h = hashlib.sha256(f"{seed}:{iid}".encode()).digest()
        u1 = (int.from_bytes(h[:7], "big") + 0.5) / 2.0**56
        u2 = int.from_bytes(h[7:14], "big") / 2.0**56
        out[i] = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    return strength * out


def assemble(d: Draws, params: SimulationParams, item_id: np.ndarray, colour: np.ndarray, cat: np.ndarray) -> pd.DataFrame:
    """The impressions of draws ``d``: ``item_id``/``colour``/``cat`` are per impression (the item
    at position ``d.it``, its colour and category indices). Bias by bisection, clicks, time order."""
    quality = item_quality(item_id, params.seed, params.item_strength)
    device_eff = np.array([0.0, 0.2, -0.1])
    logit = (
        d.user_a[d.u, colour] + d.user_b[d.u, cat] + quality + params.position_effect * (d.pos - 1)
        + device_eff[d.dev] + d.site_eff[d.site] + 0.25 * np.sin(2 * np.pi * (d.hour - 6) / 24)
    )
    logit = logit + _solve_bias(logit, params.base_ctr)
    p = _sigmoid(logit)
    click = (d.click_u < p).astype(np.int32)
    start = pd.Timestamp(datetime.fromisoformat(params.start)).tz_localize(UTC)
    ts = start + pd.to_timedelta(d.day * 86400 + d.hour * 3600 + d.seconds, unit="s")
    df = pd.DataFrame(
        {
            "ts": ts,
            "item_id": item_id.astype(str),
            "user_segment": pd.Series(d.user_seg[d.u]).map(lambda s: f"seg{s}"),
            "device": np.array(DEVICES)[d.dev],
            "position": d.pos.astype(str),
            "site": pd.Series(d.site).map(lambda s: f"site{s}"),
            "hour": d.hour.astype(str),
            "weekday": ts.dayofweek.astype(str),
            "click": click,
            "true_ctr": p,
        }
    )
    df = df.sort_values("ts", kind="stable").reset_index(drop=True)
    df.insert(0, "impression_id", [f"syn-{params.seed}-{i:09d}" for i in range(len(df))])
    df["source"] = SOURCE
    return df


def simulate(items: pd.DataFrame, params: SimulationParams) -> pd.DataFrame:
    """Synthetic impressions over ``items`` (columns item_id, color, category), in memory.

    Returns a pandas DataFrame: impression_id, ts (UTC), item_id, the observed feature columns
    (strings), click (0/1), true_ctr, source ('synthetic'). :func:`simulate_spark` gives the same
    rows for the same items read from a Spark table.
    """
    for col in ("item_id", "color", "category"):
        if col not in items.columns:
            raise ValueError(f"items need a {col!r} column")
    items = items.drop_duplicates("item_id").sort_values("item_id").reset_index(drop=True)
    _check(params, len(items))
    norm = lambda s: s.fillna("unknown").astype(str).str.strip().str.lower().replace("", "unknown")  # noqa: E731
    colour_idx, _ = pd.factorize(norm(items["color"]), sort=True)
    cat_idx, _ = pd.factorize(norm(items["category"]), sort=True)
    d = draw(params, len(items), int(colour_idx.max()) + 1, int(cat_idx.max()) + 1)
    ids = items["item_id"].astype(str).to_numpy()
    return assemble(d, params, ids[d.it], colour_idx[d.it], cat_idx[d.it])


def simulate_spark(catalog: DataFrame, params: SimulationParams) -> pd.DataFrame:
    """:func:`simulate` over ``bronze.catalog_items`` (a Spark DataFrame) with the items kept in
    the executors: the driver receives the item count, the distinct colours and categories and
    the rows of the items the impressions drew (at most ``n_impressions``), never the catalog."""
    from pyspark.sql import functions as F

    def norm(c: str) -> Column:
        v = F.lower(F.trim(F.coalesce(F.col(c).cast("string"), F.lit("unknown"))))
        return F.when(v == "", F.lit("unknown")).otherwise(v)

    items = catalog.select("item_id", norm("color").alias("colour"), norm("category").alias("cat"))
    items = items.dropDuplicates(["item_id"])
    colours = sorted(str(r[0]) for r in items.select("colour").distinct().collect())
    cats = sorted(str(r[0]) for r in items.select("cat").distinct().collect())
    positioned, n_items = sorted_positions(items, "item_id")
    _check(params, n_items)
    d = draw(params, n_items, len(colours), len(cats))
    wanted = np.unique(d.it)
    keys = catalog.sparkSession.createDataFrame(pd.DataFrame({"_pos": wanted.astype(np.int64)}))
    got = pd.DataFrame(positioned.join(F.broadcast(keys), "_pos").select("_pos", "item_id", "colour", "cat").toPandas())
    got = got.set_index("_pos").loc[wanted]
    at = np.searchsorted(wanted, d.it)
    c_idx = {c: i for i, c in enumerate(colours)}
    k_idx = {c: i for i, c in enumerate(cats)}
    colour = got["colour"].map(c_idx).to_numpy(np.int64)[at]
    cat = got["cat"].map(k_idx).to_numpy(np.int64)[at]
    return assemble(d, params, got["item_id"].astype(str).to_numpy()[at], colour, cat)


def sorted_positions(df: DataFrame, key: str) -> tuple[DataFrame, int]:
    """``df`` plus ``_pos``, the row's 0-based position in ``key`` order (``key`` unique), computed
    in the executors: a range-partitioned sort, a row number per partition and one offset per
    partition (the driver holds O(partitions)); and the row count."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ordered = df.orderBy(key).withColumn("_p", F.spark_partition_id())
    ordered = ordered.withColumn("_r", F.row_number().over(Window.partitionBy("_p").orderBy(key)))
    counts = {int(r[0]): int(r[1]) for r in ordered.groupBy("_p").count().collect()}
    offsets, total = [], 0
    for p in range(max(counts, default=-1) + 1):
        offsets.append(total)
        total += counts.get(p, 0)
    offset = F.element_at(F.array(*[F.lit(o) for o in offsets or [0]]).cast("array<long>"), F.col("_p") + 1)
    return ordered.withColumn("_pos", offset + F.col("_r") - 1).drop("_p", "_r"), total


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
