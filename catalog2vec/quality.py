"""Data-quality reasons and the quarantine writer.

Nothing is dropped silently: every record a job rejects is written to ``bronze/quarantine``
with one of these reason codes, and every job reports ``rows in = rows out + quarantined``.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Reason(StrEnum):
    # ingest_catalog
    MALFORMED_RECORD = "malformed_record"  # unparseable JSON line / CSV row (wrong field count, bad quoting)
    MISSING_ITEM_ID = "missing_item_id"  # no item_id, or blank
    NO_TEXT = "no_text"  # neither title nor description
    FIELD_TOO_LARGE = "field_too_large"  # a text field over ingest.max_field_chars
    INVALID_UTF8 = "invalid_utf8"  # bytes that are not UTF-8 (decoded as U+FFFD)
    # build_labels
    NO_VOCAB_WORDS = "no_vocab_words"  # no token of the item is in the vocabulary
    # build_vocab
    NO_TOKENS = "no_tokens"  # text cleaned down to nothing (all stop words, digits, …)
    # ingest_images
    IMAGE_MISSING = "image_missing"  # no image_uri, or the file does not exist
    IMAGE_EMPTY = "image_empty"  # zero bytes
    IMAGE_TRUNCATED = "image_truncated"
    NOT_AN_IMAGE = "not_an_image"
    DECOMPRESSION_BOMB = "decompression_bomb"  # over images.max_pixels
    IMAGE_UNDECODABLE = "image_undecodable"  # anything else Pillow cannot decode
    # neighbors / cluster / evaluate / train_similarity (gold.item_embeddings rows)
    INVALID_EMBEDDING = "invalid_embedding"  # empty, wrong dimension, NaN/inf or zero-norm vector
    # impressions
    MISSING_LABEL = "missing_label"
    INVALID_VALUE = "invalid_value"


MAX_RECORD_CHARS = 1_048_576


def record_sha256(record: str | None) -> str:
    return hashlib.sha256((record or "").encode("utf-8", "surrogatepass")).hexdigest()


def write_quarantine(
    spark: Any,
    df: Any,
    root: str | os.PathLike[str],
    job: str,
    run_id: str,
) -> int:
    """Append rejected records to ``bronze/quarantine`` (idempotent MERGE on the key).

    ``df`` needs columns ``source, record, reason`` and optionally ``item_id, detail``.
    Returns the number of rejected records in ``df``. Byte-identical records from the same
    source and job share one quarantine row (the key), but every one of them is counted.
    """
    from pyspark.sql import functions as F

    from catalog2vec.lakehouse import write_table
    from catalog2vec.schemas import bronze

    for optional in ("item_id", "detail"):
        if optional not in df.columns:
            df = df.withColumn(optional, F.lit(None).cast("string"))
    out = (
        df.select(
            F.lit(job).alias("job"),
            F.col("source").cast("string").alias("source"),
            F.substring(F.col("record").cast("string"), 1, MAX_RECORD_CHARS).alias("record"),
            F.sha2(F.coalesce(F.col("record").cast("string"), F.lit("")), 256).alias("record_sha256"),
            F.col("item_id").cast("string").alias("item_id"),
            F.col("reason").cast("string").alias("reason"),
            F.col("detail").cast("string").alias("detail"),
            F.lit(run_id).alias("run_id"),
            F.lit(datetime.now(UTC)).cast("timestamp").alias("quarantined_at"),
        )
    ).cache()
    n = out.count()
    if n:
        write_table(spark, out.dropDuplicates(["job", "source", "record_sha256"]), bronze.QUARANTINE, root, mode="merge")
    out.unpersist()
    return int(n)
