"""Data-quality reasons and the quarantine writer.

Nothing is dropped silently: every record a job rejects is written to ``bronze/quarantine``
with one of these reason codes, and every job reports ``rows in = rows out + quarantined``.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from catalog2vec.lakehouse import write_table
from catalog2vec.schemas import bronze

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


class Reason(StrEnum):
    # ingest_catalog
    MALFORMED_RECORD = "malformed_record"  # unparseable JSON line / CSV row (wrong field count, bad quoting)
    MISSING_ITEM_ID = "missing_item_id"  # no item_id, or blank
    NO_TEXT = "no_text"  # neither title nor description
    FIELD_TOO_LARGE = "field_too_large"  # a text field over ingest.max_field_chars
    INVALID_UTF8 = "invalid_utf8"  # bytes that are not UTF-8, or a \\u escape that is no character
    DUPLICATE_KEY = "duplicate_key"  # a JSON object / CSV header / Parquet schema repeats a key
    INVALID_ID = "invalid_id"  # item_id breaks the id policy (length, control characters)
    INVALID_TIMESTAMP = "invalid_timestamp"  # crawled_at given but not an ISO-8601 time in range
    IMAGE_PATH_INVALID = "image_path_invalid"  # image path outside the allowed directories / not a file
    RECORD_TOO_LARGE = "record_too_large"  # a raw record or its extra map over ingest.max_record_chars
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
    IMAGE_FETCH_FAILED = "image_fetch_failed"  # a remote image_uri (s3://, http://) could not be read
    IMAGE_TOO_LARGE = "image_too_large"  # the source file is over images.max_bytes
    # neighbors / cluster / evaluate / train_similarity (gold.item_embeddings rows)
    INVALID_EMBEDDING = "invalid_embedding"  # empty, wrong dimension, NaN/inf or zero-norm vector
    # impressions
    MISSING_LABEL = "missing_label"
    INVALID_VALUE = "invalid_value"


MAX_RECORD_CHARS = 1_048_576


class JobCounts:
    """Base of a job's frozen counts dataclass: :meth:`check` raises unless every input row is
    accounted for (each pair of :meth:`balances` equal); ``str()`` is ``name=value`` per field."""

    JOB: ClassVar[str] = "job"

    def balances(self) -> tuple[tuple[int, int], ...]:
        """``(rows in, rows out + quarantined + …)`` pairs that must be equal."""
        raise NotImplementedError

    def check(self) -> None:
        if any(a != b for a, b in self.balances()):
            raise AssertionError(f"{self.JOB} accounting does not add up: {self}")

    def __str__(self) -> str:
        return " ".join(f"{k}={v}" for k, v in vars(self).items())

# reason -> count of every record quarantined by this process since the last reset: the job runner
# (jobs/_common.py) puts it in the run record <lakehouse>/_runs/<run_id>/<job>.json
_REASON_COUNTS: Counter[str] = Counter()


def reason_counts(reset: bool = False) -> dict[str, int]:
    """Records quarantined by :func:`write_quarantine` in this process, per reason."""
    out = dict(sorted(_REASON_COUNTS.items()))
    if reset:
        _REASON_COUNTS.clear()
    return out


def record_sha256(record: str | None) -> str:
    return hashlib.sha256((record or "").encode("utf-8", "surrogatepass")).hexdigest()


def write_quarantine(
    spark: SparkSession,
    df: DataFrame,
    root: str | os.PathLike[str],
    job: str,
    run_id: str,
) -> int:
    """Append rejected records to ``bronze/quarantine`` (idempotent MERGE on the key).

    ``df`` needs columns ``source, record, reason`` and optionally ``item_id, detail,
    record_bytes``. ``record`` must be valid UTF-8 text; a record whose raw bytes are not UTF-8
    passes them in ``record_bytes`` (kept losslessly as binary, ``record`` then holds them with
    ``\\xNN`` escapes), so delta-rs, DuckDB and pandas always read the table. Returns the number of
    rejected records in ``df``. Byte-identical records from the same source and job share one
    quarantine row (the key: sha256 of the raw bytes), but every one of them is counted.
    """
    from pyspark.sql import functions as F

    for optional in ("item_id", "detail"):
        if optional not in df.columns:
            df = df.withColumn(optional, F.lit(None).cast("string"))
    if "record_bytes" not in df.columns:
        df = df.withColumn("record_bytes", F.lit(None).cast("binary"))
    text = F.col("record").cast("string")
    raw = F.coalesce(F.col("record_bytes"), F.encode(F.coalesce(text, F.lit("")), "UTF-8"))
    out = (
        df.select(
            F.lit(job).alias("job"),
            F.col("source").cast("string").alias("source"),
            F.substring(text, 1, MAX_RECORD_CHARS).alias("record"),
            F.substring(F.col("record_bytes"), 1, MAX_RECORD_CHARS).alias("record_bytes"),
            F.sha2(raw, 256).alias("record_sha256"),
            F.col("item_id").cast("string").alias("item_id"),
            F.col("reason").cast("string").alias("reason"),
            F.col("detail").cast("string").alias("detail"),
            F.lit(run_id).alias("run_id"),
            F.lit(datetime.now(UTC)).cast("timestamp").alias("quarantined_at"),
        )
    ).cache()
    by_reason = {str(r["reason"]): int(r["count"]) for r in out.groupBy("reason").count().collect()}
    n = sum(by_reason.values())
    _REASON_COUNTS.update(by_reason)
    if n:
        write_table(spark, out.dropDuplicates(["job", "source", "record_sha256"]), bronze.QUARANTINE, root, mode="merge")
    out.unpersist()
    return int(n)
