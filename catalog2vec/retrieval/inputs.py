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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from catalog2vec import models
from catalog2vec.lakehouse import read_table
from catalog2vec.quality import Reason, write_quarantine
from catalog2vec.schemas import bronze, gold, silver

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

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


def read_embeddings(spark: SparkSession, root: str | os.PathLike[str], model_version: str) -> Embeddings:
    from pyspark.sql import functions as F

    df = read_table(spark, root, gold.ITEM_EMBEDDINGS).where(F.col("model_version") == model_version)
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


def read_items(spark: SparkSession, root: str | os.PathLike[str]) -> pd.DataFrame:
    """pandas: item_id, title, category, color, gender (bronze.catalog_items)."""
    return (
        read_table(spark, root, bronze.CATALOG_ITEMS)
        .select("item_id", "title", "category", "color", "gender")
        .toPandas()
    )


def model_card(root: str | os.PathLike[str], model_version: str) -> dict[str, Any]:
    """The model card of ``<root>/models/<model_version>`` ({} when absent)."""
    try:
        return models.read_card(root, model_version)
    except models.ModelNotFoundError:
        return {}


def read_labels(
    spark: SparkSession, root: str | os.PathLike[str], vocab_version: str | None
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
    pdf: pd.DataFrame = (
        labels.where(F.col("vocab_version") == vocab_version).select("item_id", "labels", "split").toPandas()
    )
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


def split_frame(
    spark: SparkSession, cfg: Config, model_version: str
) -> tuple[pd.DataFrame, Embeddings, list[str], str]:
    """(pandas frame: item_id, labels, split, category, color, gender, title, group, row;
    embeddings; tokens; vocab_version) joined on item_id for items with a valid embedding."""
    emb = read_embeddings(spark, cfg.lakehouse, model_version)
    card = model_card(cfg.lakehouse, model_version)
    vocab_version, labels, tokens = read_labels(spark, cfg.lakehouse, card.get("vocab_version"))
    items = read_items(spark, cfg.lakehouse)
    items["item_id"] = items["item_id"].astype(str)
    frame = labels.merge(items, on="item_id", how="inner")
    pos = {iid: i for i, iid in enumerate(emb.item_ids)}
    frame = frame[frame["item_id"].isin(pos)].copy()
    frame["row"] = [pos[i] for i in frame["item_id"]]
    frame["group"] = [group_key(a, b) for a, b in zip(frame["category"], frame["color"], strict=True)]
    frame = frame.sort_values("item_id").reset_index(drop=True)
    return frame, emb, tokens, vocab_version
