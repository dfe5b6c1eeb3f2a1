"""Feature encoding for the CTR models.

A :class:`FeatureSpec` (learned on the train window) fixes the model columns: each categorical
field keeps its most frequent values (the rest share one "other" bucket) and a list of numeric
fields. From it come

* the dense matrix LightGBM trains on (categorical codes, NaN = missing/other),
* the raw one-hot sparse vector of the LR-only baseline (one active index per categorical
  field, plus the non-zero numeric values),
* the leaf one-hot sparse vector of trees+LR (He et al. 2014): every row is pushed through the
  boosted trees with ``pred_leaf=True`` and tree ``t`` reaching leaf ``l`` activates index
  ``offset[t] + l``.

The sparse vectors are produced by Spark pandas UDFs (``VectorUDT``) that receive the LightGBM
booster as ONE broadcast variable (its model string), loaded once per Python worker.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    import lightgbm as lgb
    from pyspark.ml.linalg import SparseVector
    from pyspark.sql import Column, DataFrame, SparkSession

VISUAL_PREFIXES = ("tag:", "emb_")


def is_visual(name: str) -> bool:
    """Item features computed from images (tag probabilities, embedding components)."""
    return name.startswith(VISUAL_PREFIXES)


@dataclass(frozen=True)
class FeatureSpec:
    categorical: tuple[tuple[str, tuple[str, ...]], ...]
    numeric: tuple[str, ...]
    _index: dict[str, dict[str, int]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name, values in self.categorical:
            self._index[name] = {v: i for i, v in enumerate(values)}

    @property
    def categorical_names(self) -> list[str]:
        return [n for n, _ in self.categorical]

    @property
    def feature_names(self) -> list[str]:
        return [*self.categorical_names, *self.numeric]

    @property
    def n_features(self) -> int:
        return len(self.categorical) + len(self.numeric)

    @property
    def raw_size(self) -> int:
        """Width of the raw one-hot vector: (values + 1 other bucket) per field + numerics."""
        return sum(len(v) + 1 for _, v in self.categorical) + len(self.numeric)

    def without_visual(self) -> FeatureSpec:
        return FeatureSpec(
            tuple((n, v) for n, v in self.categorical if not is_visual(n)),
            tuple(n for n in self.numeric if not is_visual(n)),
        )

    @property
    def has_visual(self) -> bool:
        return any(is_visual(n) for n in self.feature_names)

    def to_dict(self) -> dict[str, Any]:
        return {"categorical": {n: list(v) for n, v in self.categorical}, "numeric": list(self.numeric)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        return cls(tuple((n, tuple(v)) for n, v in d["categorical"].items()), tuple(d["numeric"]))

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


def learn_spec(
    train: DataFrame,
    max_categories: int,
    min_category_count: int,
    max_tag_features: int,
) -> FeatureSpec:
    """Learn the columns from a Spark DataFrame of the train window (``categorical`` and
    ``numeric`` map columns). Values are sorted by descending count, then by value.

    Counting and ranking run in Spark; the driver receives at most ``max_categories`` values per
    categorical field and ``max_tag_features`` tag columns (plus the few other numeric names)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    cats = (
        train.select(F.explode("categorical").alias("name", "value"))
        .where(F.col("value").isNotNull())
        .groupBy("name", "value")
        .count()
        .where(F.col("count") >= min_category_count)
    )
    w = Window.partitionBy("name").orderBy(F.col("count").desc(), F.col("value"))
    cats = cats.withColumn("r", F.row_number().over(w)).where(F.col("r") <= max_categories)
    by_name: dict[str, list[tuple[int, str]]] = {}
    for row in cats.collect():
        by_name.setdefault(row["name"], []).append((row["r"], row["value"]))
    all_names = sorted(r["name"] for r in train.select(F.explode(F.map_keys("categorical")).alias("name")).distinct().collect())
    categorical = tuple((n, tuple(v for _, v in sorted(by_name.get(n, [])))) for n in all_names)

    # tag:<word> columns: the max_tag_features most frequent, chosen in Spark (the driver never
    # sees the whole tag vocabulary); other numerics (emb_pca_<i>, the log's own) are few
    is_tag = F.col("name").startswith("tag:")
    by_count = Window.partitionBy(is_tag).orderBy(F.col("count").desc(), F.col("name"))
    nums = (
        train.select(F.explode("numeric").alias("name", "value"))
        .where(F.col("value").isNotNull() & ~F.isnan("value") & (F.col("value") != 0))
        .groupBy("name")
        .count()
        .withColumn("r", F.row_number().over(by_count))
        .where(~is_tag | (F.col("r") <= max_tag_features))
        .select("name")
        .collect()
    )
    names = [str(r["name"]) for r in nums]
    numeric = sorted(n for n in names if not n.startswith("tag:")) + sorted(n for n in names if n.startswith("tag:"))
    return FeatureSpec(categorical, tuple(numeric))


def select_columns(df: DataFrame, spec: FeatureSpec) -> Column:
    """The model columns as a struct ``f`` (c0..: strings, n0..: doubles, nulls kept)."""
    from pyspark.sql import functions as F

    cols = [F.col("categorical").getItem(n).alias(f"c{i}") for i, n in enumerate(spec.categorical_names)]
    cols += [F.col("numeric").getItem(n).cast("double").alias(f"n{i}") for i, n in enumerate(spec.numeric)]
    if not cols:
        raise ValueError("the feature spec has no columns")
    return F.struct(*cols)


def to_matrix(pdf: pd.DataFrame, spec: FeatureSpec) -> npt.NDArray[np.float64]:
    """Dense float matrix from the struct columns (c0.., n0..): categorical codes with NaN for
    missing or out-of-vocabulary values, numerics with NaN for missing."""
    out = np.full((len(pdf), spec.n_features), np.nan, dtype=np.float64)
    for j, (_name, values) in enumerate(spec.categorical):
        codes = pd.Categorical(pdf[f"c{j}"], categories=list(values)).codes.astype(np.float64)
        codes[codes < 0] = np.nan
        out[:, j] = codes
    k = len(spec.categorical)
    for m in range(len(spec.numeric)):
        out[:, k + m] = pd.to_numeric(pdf[f"n{m}"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def raw_onehot_parts(
    x: npt.NDArray[np.float64], spec: FeatureSpec
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Vectorized raw one-hot: (indices (n, F), values (n, F), active mask (n, F))."""
    n = x.shape[0]
    k = len(spec.categorical)
    sizes = np.array([len(v) + 1 for _, v in spec.categorical], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if k else np.zeros(0, np.int64)
    codes = x[:, :k]
    cat_idx = np.where(np.isnan(codes), sizes - 1, np.nan_to_num(codes)).astype(np.int64) + offsets
    num_base = int(sizes.sum())
    num_vals = np.nan_to_num(x[:, k:], nan=0.0)
    num_idx = np.broadcast_to(np.arange(len(spec.numeric), dtype=np.int64) + num_base, num_vals.shape)
    indices = np.concatenate([cat_idx, num_idx], axis=1)
    values = np.concatenate([np.ones((n, k)), num_vals], axis=1)
    active = np.concatenate([np.ones((n, k), dtype=bool), num_vals != 0], axis=1)
    return indices, values, active


def leaf_offsets(booster: lgb.Booster) -> npt.NDArray[np.int64]:
    """Start index of each tree's leaves in the leaf one-hot vector, plus the total at the end."""
    info = booster.dump_model()["tree_info"]
    sizes = np.array([t["num_leaves"] for t in info], dtype=np.int64)
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def leaf_indices(booster: lgb.Booster, x: npt.NDArray[np.float64], offsets: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Global one-hot index of the leaf each row reaches in every tree: (n, T)."""
    leaves = booster.predict(x, pred_leaf=True, num_iteration=len(offsets) - 1)
    leaves = np.asarray(leaves, dtype=np.int64).reshape(x.shape[0], -1)
    return leaves + offsets[:-1]


def encode_rows(
    x: npt.NDArray[np.float64],
    spec: FeatureSpec,
    booster: lgb.Booster | None,
    offsets: npt.NDArray[np.int64] | None,
    with_raw: bool,
) -> list[SparseVector]:
    """SparseVectors for a batch: [leaf one-hot][raw one-hot + numerics] (either part optional)."""
    from pyspark.ml.linalg import SparseVector

    n = x.shape[0]
    parts_idx: list[npt.NDArray[np.int64]] = []
    parts_val: list[npt.NDArray[np.float64]] = []
    parts_act: list[npt.NDArray[np.bool_]] = []
    base = 0
    if booster is not None and offsets is not None:
        li = leaf_indices(booster, x, offsets)
        parts_idx.append(li)
        parts_val.append(np.ones(li.shape))
        parts_act.append(np.ones(li.shape, dtype=bool))
        base = int(offsets[-1])
    size = base
    if with_raw:
        ri, rv, ra = raw_onehot_parts(x, spec)
        parts_idx.append(ri + base)
        parts_val.append(rv)
        parts_act.append(ra)
        size += spec.raw_size
    idx = np.concatenate(parts_idx, axis=1)
    val = np.concatenate(parts_val, axis=1)
    act = np.concatenate(parts_act, axis=1)
    # indices are increasing within a row by construction (trees, then fields, in order)
    return [SparseVector(size, idx[i][act[i]], val[i][act[i]]) for i in range(n)]


_BOOSTERS: dict[str, tuple[lgb.Booster, npt.NDArray[np.int64]]] = {}


def _load_booster(model_str: str) -> tuple[lgb.Booster, npt.NDArray[np.int64]]:
    """One Booster per Python worker and model (keyed by the model string's hash)."""
    import lightgbm as lgb

    key = hashlib.sha1(model_str.encode()).hexdigest()
    if key not in _BOOSTERS:
        booster = lgb.Booster(model_str=model_str)
        _BOOSTERS.clear()
        _BOOSTERS[key] = (booster, leaf_offsets(booster))
    return _BOOSTERS[key]


def vector_udf(
    spark: SparkSession, spec: FeatureSpec, booster: lgb.Booster | None, with_raw: bool
) -> Callable[..., Column]:
    """A pandas UDF ``struct(c0.., n0..) -> VectorUDT``: leaf one-hot (when ``booster``) and/or the
    raw one-hot. The booster travels as one broadcast variable."""
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql.functions import pandas_udf

    if booster is None and not with_raw:
        raise ValueError("nothing to encode: no booster and with_raw=False")
    bc = spark.sparkContext.broadcast(booster.model_to_string()) if booster is not None else None
    spec_d = spec.to_dict()

    @pandas_udf(VectorUDT())  # type: ignore[call-overload]
    def encode(f: pd.DataFrame) -> pd.Series:
        local_spec = FeatureSpec.from_dict(spec_d)
        x = to_matrix(f, local_spec)
        b, offs = _load_booster(bc.value) if bc is not None else (None, None)
        return pd.Series(encode_rows(x, local_spec, b, offs, with_raw))

    return encode


def tree_prob_udf(spark: SparkSession, spec: FeatureSpec, booster: lgb.Booster, w: float) -> Callable[..., Column]:
    """A pandas UDF ``struct -> double``: the trees-only click probability, re-calibrated for the
    negative down-sampling rate ``w`` of the tree sample."""
    from pyspark.sql.functions import pandas_udf

    from catalog2vec.ctr.metrics import recalibrate

    bc = spark.sparkContext.broadcast(booster.model_to_string())
    spec_d = spec.to_dict()

    @pandas_udf("double")  # type: ignore[call-overload]
    def prob(f: pd.DataFrame) -> pd.Series:
        local_spec = FeatureSpec.from_dict(spec_d)
        b, offs = _load_booster(bc.value)
        p = b.predict(to_matrix(f, local_spec), num_iteration=len(offs) - 1)
        return pd.Series(recalibrate(p, w))

    return prob


def tree_curve_udf(
    spark: SparkSession, spec: FeatureSpec, booster: lgb.Booster, w: float, trees: list[int]
) -> Callable[..., Column]:
    """A pandas UDF ``struct -> array<double>``: the re-calibrated trees-only probability using the
    first ``trees[i]`` trees, for every ``i`` (the NE-by-number-of-trees curve, in the executors)."""
    from pyspark.sql.functions import pandas_udf

    from catalog2vec.ctr.metrics import recalibrate

    bc = spark.sparkContext.broadcast(booster.model_to_string())
    spec_d = spec.to_dict()
    grid = [int(t) for t in trees]

    @pandas_udf("array<double>")  # type: ignore[call-overload]
    def probs(f: pd.DataFrame) -> pd.Series:
        local_spec = FeatureSpec.from_dict(spec_d)
        b, _ = _load_booster(bc.value)
        x = to_matrix(f, local_spec)
        cols = np.stack([recalibrate(b.predict(x, num_iteration=t), w) for t in grid], axis=1)
        return pd.Series(list(cols))

    return probs
