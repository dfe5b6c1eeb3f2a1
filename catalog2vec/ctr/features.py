"""Impressions + item features → ``gold/ctr_features`` with a time-ordered split.

* categorical: the impression's ``features`` map, plus ``item_id`` where there is one;
* numeric (only with a ``model_version``): ``tag:<word>`` = predicted probability of each of
  the item's top ``ctr.top_tags`` tags (``gold/item_tags``), and ``emb_pca_<i>`` = the item
  embedding (``gold/item_embeddings``) projected on ``ctr.pca_components`` principal components
  fitted on the items seen in the TRAIN window only (no look-ahead);
* split: ``ts`` below the ``train_fraction`` quantile → train, below the
  ``train_fraction + validation_fraction`` quantile → validation, the rest → test.

Scale: every pass over impressions and items is a Spark join or aggregate. The driver holds
O(``ctr.pca_sample``): the PCA is fitted with scikit-learn on at most that many train-window items
(a deterministic sample by a hash of item_id, chosen by a semi-join in Spark) and its components
are broadcast to a pandas UDF that projects every item in the executors. Logs without item ids
(iPinYou) get raw features only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from catalog2vec import layout, models, storage
from catalog2vec.config import Config
from catalog2vec.errors import InvalidInput
from catalog2vec.lakehouse import read_table, write_table
from catalog2vec.lakehouse.sampling import cap_by_hash
from catalog2vec.quality import JobCounts
from catalog2vec.schemas import bronze, ctr, gold

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


@dataclass(frozen=True)
class FeatureCounts(JobCounts):
    JOB = "build_ctr_features"
    feature_version: str
    rows: int
    train: int
    validation: int
    test: int
    with_tags: int
    with_embedding: int

    def balances(self) -> tuple[tuple[int, int], ...]:
        return ((self.rows, self.train + self.validation + self.test),)


# percentile_approx accuracy of the split cutoffs: exact up to 1M impressions (rank error
# < N / accuracy), a summary of at most ~accuracy entries in ONE executor task above that.
SPLIT_QUANTILE_ACCURACY = 1_000_000


def split_cutoffs(impressions: DataFrame, train_fraction: float, validation_fraction: float) -> tuple[int, int]:
    """Time quantiles (µs since epoch) that end the train and validation windows: a Spark SQL
    ``percentile_approx`` aggregate (the driver receives one row), exact up to
    :data:`SPLIT_QUANTILE_ACCURACY` impressions."""
    from pyspark.sql import functions as F

    if not (0 < train_fraction < 1 and 0 < validation_fraction < 1 and train_fraction + validation_fraction < 1):
        raise InvalidInput("need 0 < train_fraction, validation_fraction and train + validation < 1")
    q = impressions.select(
        F.percentile_approx(
            F.unix_micros("ts").cast("double"),
            F.array(F.lit(train_fraction), F.lit(train_fraction + validation_fraction)),
            SPLIT_QUANTILE_ACCURACY,
        ).alias("q")
    ).first()
    assert q is not None  # a global aggregation has exactly one row
    return int(q["q"][0]), int(q["q"][1])


def assign_split(df: DataFrame, c1: int, c2: int) -> DataFrame:
    from pyspark.sql import functions as F

    t = F.unix_micros("ts")
    return df.withColumn(
        "split", F.when(t < c1, "train").when(t < c2, "validation").otherwise("test")
    )


def tag_features(spark: SparkSession, root: str, model_version: str, top_tags: int) -> DataFrame:
    """item_id → map(tag:<word> → probability) of the item's top-ranked tags."""
    from pyspark.sql import functions as F

    tags = read_table(spark, root, gold.ITEM_TAGS).where(F.col("model_version") == model_version)
    tags = tags.where(F.col("rank") <= top_tags)
    return tags.groupBy("item_id").agg(
        F.map_from_entries(
            F.collect_list(F.struct(F.concat(F.lit("tag:"), F.lower("tag")), F.col("probability").cast("double")))
        ).alias("tag_map")
    )


def projection_udf(
    spark: SparkSession, components: npt.NDArray[np.float64], mean: npt.NDArray[np.float64]
) -> Callable[..., Column]:
    """A pandas UDF ``array<float> -> array<double>``: ``(x - mean) @ components.T`` (scikit-learn's
    ``PCA.transform``), the (k, d) components broadcast once."""
    from pyspark.sql.functions import pandas_udf

    bc = spark.sparkContext.broadcast((np.asarray(components, np.float64), np.asarray(mean, np.float64)))

    @pandas_udf("array<double>")  # type: ignore[call-overload]
    def project(e: pd.Series) -> pd.Series:
        comp, mu = bc.value
        if len(e) == 0:
            return pd.Series([], dtype=object)
        z = np.stack(e.to_numpy()).astype(np.float64) @ comp.T - mu.reshape(1, -1) @ comp.T
        return pd.Series(list(z))

    return project


def embedding_pca(
    spark: SparkSession, root: str, model_version: str, train_items: DataFrame, k: int, seed: int, max_fit: int
) -> tuple[DataFrame, dict[str, Any]]:
    """item_id → map(emb_pca_i → value) for every item with an embedding, as a Spark DataFrame.

    The PCA is fitted (scikit-learn, on the driver) on the embeddings of the ``train_items``
    (a semi-join: train-window items only, no look-ahead), at most ``max_fit`` of them chosen by a
    seeded hash of item_id; the projection runs in a pandas UDF with the components broadcast."""
    from pyspark.sql import functions as F
    from sklearn.decomposition import PCA

    if max_fit < 2:
        raise InvalidInput(f"ctr.pca_sample must be at least 2, got {max_fit}")
    emb = (
        read_table(spark, root, gold.ITEM_EMBEDDINGS)
        .where((F.col("model_version") == model_version) & F.col("embedding").isNotNull())
        .select("item_id", "embedding")
    )
    if emb.limit(1).count() == 0:
        raise InvalidInput(f"gold.item_embeddings has no rows for model_version {model_version!r}")
    fit = emb.join(train_items, "item_id", "left_semi")
    n_train = fit.count()
    if n_train < 2:
        raise InvalidInput("fewer than 2 train-window items have embeddings: cannot fit the PCA")
    fit = cap_by_hash(fit, max_fit, "item_id", seed, rows=n_train)
    fit_pdf: pd.DataFrame = fit.toPandas()  # <= max_fit rows
    fit_pdf = fit_pdf.sort_values("item_id", kind="stable")
    x = np.stack(fit_pdf["embedding"].to_numpy()).astype(np.float64)
    n_comp = int(min(k, x.shape[0], x.shape[1]))
    pca = PCA(n_components=n_comp, random_state=seed).fit(x)
    names = [f"emb_pca_{i}" for i in range(n_comp)]
    project = projection_udf(spark, pca.components_, pca.mean_)
    sdf = emb.select(
        F.col("item_id").cast("string").alias("item_id"),
        F.map_from_arrays(F.array(*[F.lit(n) for n in names]), project("embedding")).alias("emb_map"),
    )
    info = {
        "components": n_comp,
        "fitted_on_items": int(x.shape[0]),
        "train_items_with_embedding": int(n_train),
        "pca_sample": max_fit,
        "explained_variance_ratio": [float(v) for v in pca.explained_variance_ratio_],
    }
    return sdf, info


def build_ctr_features(
    spark: SparkSession,
    cfg: Config,
    model_version: str | None = None,
    source: str | None = None,
    feature_version: str | None = None,
) -> FeatureCounts:
    from pyspark.sql import functions as F

    c = cfg.ctr
    # None = no item features from a model; any name (latest included) is resolved by the model owner
    model_version = None if model_version is None else models.resolve(cfg.lakehouse, model_version)
    imps = read_table(spark, cfg.lakehouse, bronze.IMPRESSIONS)
    if source:
        imps = imps.where(F.col("source") == source)
    imps = imps.cache()
    n = imps.count()
    if n == 0:
        raise InvalidInput(f"bronze.impressions has no rows{f' for source {source!r}' if source else ''}")
    version = feature_version or f"{source or 'all'}-{model_version or 'raw'}"
    c1, c2 = split_cutoffs(imps, c.train_fraction, c.validation_fraction)
    df = assign_split(imps, c1, c2)
    empty_num = F.create_map().cast("map<string,double>")
    info: dict[str, Any] = {"feature_version": version, "model_version": model_version, "source": source}
    if model_version:
        tags = tag_features(spark, cfg.lakehouse, model_version, c.top_tags)
        train_items = df.where("split = 'train' AND item_id IS NOT NULL").select("item_id").distinct()
        emb, info["pca"] = embedding_pca(
            spark, cfg.lakehouse, model_version, train_items, c.pca_components, c.seed, c.pca_sample
        )
        # catalog-sized on both sides: shuffle joins (Spark broadcasts them only under its size threshold)
        df = df.join(tags, "item_id", "left").join(emb, "item_id", "left")
        numeric = F.map_concat(F.coalesce("tag_map", empty_num), F.coalesce("emb_map", empty_num))
        has_tags, has_emb = F.col("tag_map").isNotNull(), F.col("emb_map").isNotNull()
    else:
        numeric, has_tags, has_emb = empty_num, F.lit(False), F.lit(False)
    item_map = F.when(
        F.col("item_id").isNotNull(), F.create_map(F.lit("item_id"), F.col("item_id"))
    ).otherwise(F.create_map().cast("map<string,string>"))
    features = F.coalesce(F.col("features"), F.create_map().cast("map<string,string>"))
    out = df.select(
        F.lit(version).alias("feature_version"),
        "impression_id",
        "ts",
        "split",
        "click",
        "item_id",
        "source",
        F.map_concat(features, item_map).alias("categorical"),
        numeric.alias("numeric"),
        F.lit(cfg.run_id).alias("run_id"),
        has_tags.alias("_has_tags"),
        has_emb.alias("_has_emb"),
    ).cache()
    stats = out.groupBy().agg(
        F.count("*").alias("rows"),
        F.sum(F.when(F.col("split") == "train", 1).otherwise(0)).alias("train"),
        F.sum(F.when(F.col("split") == "validation", 1).otherwise(0)).alias("validation"),
        F.sum(F.when(F.col("split") == "test", 1).otherwise(0)).alias("test"),
        F.sum(F.col("_has_tags").cast("int")).alias("with_tags"),
        F.sum(F.col("_has_emb").cast("int")).alias("with_embedding"),
    ).first()
    assert stats is not None  # a global aggregation has exactly one row
    if stats["rows"] != n:
        raise AssertionError(f"feature rows {stats['rows']} != impressions {n}")
    write_table(
        spark, out.drop("_has_tags", "_has_emb"), ctr.CTR_FEATURES, cfg.lakehouse, mode="replace_where", version=version
    )
    counts = FeatureCounts(version, *(int(stats[k] or 0) for k in ("rows", "train", "validation", "test", "with_tags", "with_embedding")))
    info.update(counts.__dict__)
    info["split_cutoffs_utc_us"] = [c1, c2]
    storage.write_json(layout.ctr_features_file(cfg.lakehouse, version), info)
    out.unpersist()
    imps.unpersist()
    return counts
