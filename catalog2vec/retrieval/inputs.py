"""Reading the analysis inputs with Spark (the jobs' extract step) and validating embeddings.

* ``gold.item_embeddings`` for one model version -> ids + (n, d) matrix; rows that are empty,
  of the wrong dimension (not the majority one), non-finite or zero-norm are returned separately
  so the job quarantines them (``invalid_embedding``) instead of dropping them silently;
* ``bronze.catalog_items`` attributes (title, category, colour, gender);
* ``silver.item_labels`` + ``silver.vocab`` of the model's vocabulary version.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from catalog2vec import models
from catalog2vec.errors import MissingInput
from catalog2vec.lakehouse import read_table
from catalog2vec.quality import Reason, write_quarantine
from catalog2vec.schemas import bronze, gold, silver

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from catalog2vec.config import Config

log = logging.getLogger(__name__)


@dataclass
class Embeddings:
    item_ids: list[str]
    matrix: np.ndarray
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (item_id, detail)

    @property
    def rows_in(self) -> int:
        return len(self.item_ids) + len(self.invalid)


def validate_embeddings(item_ids: list[str], rows: list[Any]) -> Embeddings:
    """Split rows into a valid (n, d) float32 matrix (sorted by item_id) and invalid rows."""
    lengths = Counter(len(r) for r in rows if r is not None and len(r) > 0)
    dim = lengths.most_common(1)[0][0] if lengths else 0
    good_ids: list[str] = []
    good: list[Any] = []
    invalid: list[tuple[str, str]] = []
    for iid, row in zip(item_ids, rows, strict=True):
        if row is None or len(row) == 0:
            invalid.append((iid, "empty embedding"))
        elif len(row) != dim:
            invalid.append((iid, f"dimension {len(row)} != {dim}"))
        else:
            vals = [float("nan") if v is None else float(v) for v in row]
            if not all(math.isfinite(v) for v in vals):
                invalid.append((iid, "non-finite value (NaN/inf/null)"))
            elif not any(v != 0.0 for v in vals):
                invalid.append((iid, "zero vector"))
            else:
                good_ids.append(iid)
                good.append(vals)
    order = sorted(range(len(good_ids)), key=lambda i: good_ids[i])
    matrix = np.asarray([good[i] for i in order], dtype=np.float32).reshape(len(order), dim)
    return Embeddings([good_ids[i] for i in order], matrix, invalid)


def read_embeddings(
    spark: SparkSession, root: str | os.PathLike[str], model_version: str, items: DataFrame | None = None
) -> Embeddings:
    """``items``: only these item_ids (a bounded sample, :func:`sample_items`), else all."""
    from pyspark.sql import functions as F

    df = read_table(spark, root, gold.ITEM_EMBEDDINGS).where(F.col("model_version") == model_version)
    if items is not None:
        df = df.join(items, "item_id", "left_semi")
    pdf: pd.DataFrame = df.select("item_id", "embedding").toPandas()
    if pdf.empty:
        raise ValueError(
            f"gold.item_embeddings has no rows for model_version {model_version!r}; run the embed job"
        )
    emb = validate_embeddings([str(i) for i in pdf["item_id"]], list(pdf["embedding"]))
    log.info(
        "read %d embeddings (dim %d), %d invalid", len(emb.item_ids), emb.matrix.shape[1], len(emb.invalid)
    )
    return emb


@dataclass
class EmbeddingFrames:
    """One model version's embeddings as Spark frames (nothing collected): ``valid`` (item_id,
    embedding) rows of the majority dimension, ``invalid`` (item_id, detail) rows, and counts."""

    valid: DataFrame
    invalid: DataFrame
    dim: int
    n_valid: int
    n_invalid: int

    @property
    def rows_in(self) -> int:
        return self.n_valid + self.n_invalid


def embedding_frames(spark: SparkSession, root: str | os.PathLike[str], model_version: str) -> EmbeddingFrames:
    """``gold.item_embeddings`` of ``model_version`` split by the rules of
    :func:`validate_embeddings` (empty, wrong dimension, non-finite, zero vector), in Spark: the
    driver receives the dimension histogram's top row and two counts, never a row."""
    from pyspark.sql import functions as F

    df = read_table(spark, root, gold.ITEM_EMBEDDINGS).where(F.col("model_version") == model_version)
    df = df.select("item_id", "embedding")
    size = F.when(F.col("embedding").isNull(), F.lit(0)).otherwise(F.size("embedding"))
    top = (
        df.select(size.alias("n")).where(F.col("n") > 0).groupBy("n").count().orderBy(F.desc("count"), "n").limit(1)
    ).collect()
    dim = int(top[0]["n"]) if top else 0
    detail = (
        F.when(size == 0, F.lit("empty embedding"))
        .when(size != dim, F.concat(F.lit("dimension "), size.cast("string"), F.lit(f" != {dim}")))
        .when(
            F.expr("exists(embedding, x -> x IS NULL OR isnan(x) OR abs(x) = CAST('Infinity' AS FLOAT))"),
            F.lit("non-finite value (NaN/inf/null)"),
        )
        .when(F.expr("forall(embedding, x -> x = 0)"), F.lit("zero vector"))
    )
    checked = df.withColumn("detail", detail)
    counts = checked.agg(
        F.count(F.when(F.col("detail").isNull(), 1)).alias("valid"),
        F.count(F.when(F.col("detail").isNotNull(), 1)).alias("invalid"),
    ).first()
    n_valid, n_invalid = (int(counts["valid"]), int(counts["invalid"])) if counts else (0, 0)
    if n_valid + n_invalid == 0:
        raise MissingInput(
            f"gold.item_embeddings has no rows for model_version {model_version!r}; run the embed job"
        )
    log.info("embeddings of %s: %d valid (dim %d), %d invalid", model_version, n_valid, dim, n_invalid)
    return EmbeddingFrames(
        valid=checked.where(F.col("detail").isNull()).select("item_id", "embedding"),
        invalid=checked.where(F.col("detail").isNotNull()).select("item_id", "detail"),
        dim=dim,
        n_valid=n_valid,
        n_invalid=n_invalid,
    )


def quarantine_invalid_frame(
    spark: SparkSession, root: str | os.PathLike[str], frames: EmbeddingFrames, model_version: str, job: str,
    run_id: str,
) -> int:
    """Write the invalid embedding rows to bronze/quarantine (reason invalid_embedding), from the
    executors; returns how many."""
    from pyspark.sql import functions as F

    if frames.n_invalid == 0:
        return 0
    df = frames.invalid.select(
        F.lit(f"gold.item_embeddings/{model_version}").alias("source"),
        F.to_json(F.struct(F.lit(model_version).alias("model_version"), F.col("item_id"))).alias("record"),
        F.lit(Reason.INVALID_EMBEDDING.value).alias("reason"),
        F.col("item_id"),
        F.col("detail"),
    )
    return write_quarantine(spark, df, root, job, run_id)


def quarantine_invalid(
    spark: SparkSession, root: str | os.PathLike[str], emb: Embeddings, model_version: str, job: str, run_id: str
) -> int:
    """Write invalid embedding rows to bronze/quarantine; returns how many."""
    if not emb.invalid:
        return 0

    rows = [
        (
            f"gold.item_embeddings/{model_version}",
            json.dumps({"model_version": model_version, "item_id": iid}),
            Reason.INVALID_EMBEDDING.value,
            iid,
            detail,
        )
        for iid, detail in emb.invalid
    ]
    df = spark.createDataFrame(
        rows, "source string, record string, reason string, item_id string, detail string"
    )
    return write_quarantine(spark, df, root, job, run_id)


def read_items(spark: SparkSession, root: str | os.PathLike[str], items: DataFrame | None = None) -> pd.DataFrame:
    """pandas: item_id, title, category, color, gender (bronze.catalog_items; ``items``: only those)."""
    df = read_table(spark, root, bronze.CATALOG_ITEMS)
    if items is not None:
        df = df.join(items, "item_id", "left_semi")
    return df.select("item_id", "title", "category", "color", "gender").toPandas()


def model_card(root: str | os.PathLike[str], model_version: str) -> dict[str, Any]:
    """The model card of ``<root>/models/<model_version>`` ({} when absent)."""
    try:
        return models.read_card(root, model_version)
    except models.ModelNotFoundError:
        return {}


def read_labels(
    spark: SparkSession, root: str | os.PathLike[str], vocab_version: str | None, items: DataFrame | None = None
) -> tuple[str, pd.DataFrame, list[str]]:
    """(vocab_version, pandas item_id/labels/split, tokens by index) of one vocabulary version.

    ``vocab_version`` None/empty -> the only version present (error if several)."""
    from pyspark.sql import functions as F

    labels = read_table(spark, root, silver.ITEM_LABELS)
    if not vocab_version:
        versions = [r[0] for r in labels.select("vocab_version").distinct().collect()]
        if len(versions) != 1:
            raise ValueError(
                f"silver.item_labels holds vocab versions {versions}; the model card must name one"
            )
        vocab_version = str(versions[0])
    chosen = labels.where(F.col("vocab_version") == vocab_version)
    if items is not None:
        chosen = chosen.join(items, "item_id", "left_semi")
    pdf: pd.DataFrame = chosen.select("item_id", "labels", "split").toPandas()
    vocab: pd.DataFrame = (
        read_table(spark, root, silver.VOCAB)
        .where(F.col("vocab_version") == vocab_version)
        .select("token", "index")
        .toPandas()
    )
    vocab = vocab.sort_values("index")
    if pdf.empty or vocab.empty:
        raise ValueError(f"no labels / vocabulary for vocab_version {vocab_version!r}")
    tokens = [""] * (int(vocab["index"].max()) + 1)
    for t, i in zip(vocab["token"], vocab["index"], strict=True):
        tokens[int(i)] = str(t)
    pdf["labels"] = [[int(x) for x in v] for v in pdf["labels"]]
    pdf["item_id"] = pdf["item_id"].astype(str)
    return vocab_version, pdf, tokens


def read_images(spark: SparkSession, root: str | os.PathLike[str], item_ids: list[str]) -> dict[str, bytes]:
    """item_id -> normalised JPEG bytes from silver.images for the given items."""
    from pyspark.sql import functions as F

    if not item_ids:
        return {}
    df = (
        read_table(spark, root, silver.IMAGES)
        .where(F.col("item_id").isin(list(item_ids)))
        .select("item_id", "image")
    )
    return {str(r["item_id"]): bytes(r["image"]) for r in df.collect()}


def group_key(category: Any, color: Any) -> str | None:
    """ "category|colour" (lower-cased), or None when either is missing."""
    cat, col = (str(v).strip().lower() if v is not None else "" for v in (category, color))
    if not cat or not col or cat == "nan" or col == "nan":
        return None
    return f"{cat}|{col}"


def sample_items(
    spark: SparkSession,
    root: str | os.PathLike[str],
    model_version: str,
    vocab_version: str | None,
    caps: Mapping[str, int],
    seed: int = 0,
) -> DataFrame:
    """item_id of at most ``caps[split]`` labelled items with an embedding per split named in
    ``caps`` (other splits: none), chosen by a seeded hash of item_id
    (:func:`catalog2vec.lakehouse.sampling.cap_by_hash`): the same items every run, whatever the
    catalog size; a lazy Spark DataFrame (counts are the only thing the driver receives)."""
    from functools import reduce

    from pyspark.sql import functions as F

    from catalog2vec.lakehouse.sampling import cap_by_hash

    labels = read_table(spark, root, silver.ITEM_LABELS)
    if vocab_version:
        labels = labels.where(F.col("vocab_version") == vocab_version)
    embedded = read_table(spark, root, gold.ITEM_EMBEDDINGS).where(F.col("model_version") == model_version)
    candidates = labels.select("item_id", "split").join(embedded.select("item_id"), "item_id", "left_semi")
    parts = [
        cap_by_hash(candidates.where(F.col("split") == split), cap, "item_id", seed).select("item_id")
        for split, cap in caps.items()
    ]
    if not parts:
        raise ValueError("sample_items needs a cap for at least one split")
    return reduce(lambda a, b: a.unionByName(b), parts).distinct()


def split_frame(
    spark: SparkSession, cfg: Config, model_version: str, caps: Mapping[str, int] | None = None, seed: int = 0
) -> tuple[pd.DataFrame, Embeddings, list[str], str]:
    """(pandas frame: item_id, labels, split, category, color, gender, title, group, row;
    embeddings; tokens; vocab_version) joined on item_id for items with a valid embedding.

    ``caps`` (split -> most items, e.g. ``{"test": 5000, "train": 2000}``): only a bounded sample
    of those splits is read (:func:`sample_items`), so the cost does not grow with the catalog."""
    card = model_card(cfg.lakehouse, model_version)
    chosen = sample_items(spark, cfg.lakehouse, model_version, card.get("vocab_version"), caps, seed).cache() if caps else None
    emb = read_embeddings(spark, cfg.lakehouse, model_version, chosen)
    vocab_version, labels, tokens = read_labels(spark, cfg.lakehouse, card.get("vocab_version"), chosen)
    items = read_items(spark, cfg.lakehouse, chosen)
    if chosen is not None:
        chosen.unpersist()
    items["item_id"] = items["item_id"].astype(str)
    frame = labels.merge(items, on="item_id", how="inner")
    pos = {iid: i for i, iid in enumerate(emb.item_ids)}
    frame = frame[frame["item_id"].isin(pos)].copy()
    frame["row"] = [pos[i] for i in frame["item_id"]]
    frame["group"] = [group_key(a, b) for a, b in zip(frame["category"], frame["color"], strict=True)]
    frame = frame.sort_values("item_id").reset_index(drop=True)
    return frame, emb, tokens, vocab_version
