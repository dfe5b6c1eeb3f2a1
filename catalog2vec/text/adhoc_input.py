"""The vocabulary job's ad-hoc input: a CSV / JSON-lines / Parquet file read by Spark into one row
per item (id + text fields), every unreadable or id-less row kept as a quarantine row.

The reject rules and details are those of :mod:`catalog2vec.ingest.formats` (the Beam pipeline
applies them per record), so both engines quarantine the same rows with the same words.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from catalog2vec.errors import InvalidInput
from catalog2vec.ingest import formats
from catalog2vec.ingest.catalog import CORRUPT, read_source, resolve_inputs, text_column
from catalog2vec.quality import Reason
from catalog2vec.text.parquet_splits import FILE_COLUMN, needs_split_read, split_read_frame

__all__ = ["adhoc_items", "dedupe_items", "read_adhoc"]


def _record_json(df: DataFrame, columns: list[str]) -> Column:
    return F.to_json(F.struct(*[F.col(f"`{c}`") for c in columns]))


def read_adhoc(
    spark: SparkSession, input_path: str, fmt: str, id_column: str, fields: Mapping[str, int]
) -> tuple[DataFrame, DataFrame, str, DataFrame]:
    """Read an ad-hoc file/glob → (items[item_id, fields…], rejected[source, record, item_id,
    reason, detail], source, keys[item_id, reason]). Missing ids and unparseable rows are
    rejected; ``keys`` is every row's id and reject reason (null = good), read with as few
    columns as the reader allows (for counting)."""
    files = resolve_inputs(input_path)
    source = files[0].rsplit("/", 1)[-1]
    split = fmt == "parquet" and needs_split_read(files)
    raw = _split_read_source(spark, files) if split else read_source(spark, files, fmt)
    src_cols = [c for c in raw.columns if c not in (CORRUPT, "_file", "_file_mtime")]
    missing = [c for c in (id_column, *fields) if c not in src_cols]
    if missing:
        raise InvalidInput(f"column(s) {missing} not in the input; it has {src_cols}")
    record = F.coalesce(F.col(CORRUPT), _record_json(raw, src_cols))
    item_id = F.trim(F.col(f"`{id_column}`"))
    reason = F.when(F.col(CORRUPT).isNotNull(), F.lit(Reason.MALFORMED_RECORD.value)).when(
        item_id.isNull() | (item_id == ""), F.lit(Reason.MISSING_ITEM_ID.value)
    )
    detail = F.when(F.col(CORRUPT).isNotNull(), F.lit(formats.MALFORMED_DETAIL)).otherwise(
        F.lit(formats.MISSING_ITEM_ID_DETAIL.format(column=id_column))
    )
    checked = raw.select(
        item_id.alias("item_id"),
        *[F.col(f"`{c}`").alias(c) for c in fields],
        reason.alias("_reason"),
        detail.alias("_detail"),
        record.alias("_record"),
        F.col("_file"),
    )
    rejected = checked.where(F.col("_reason").isNotNull()).select(
        F.col("_file").alias("source"),
        F.col("_record").alias("record"),
        F.col("item_id"),
        F.col("_reason").alias("reason"),
        F.col("_detail").alias("detail"),
    )
    good = checked.where(F.col("_reason").isNull()).drop("_reason", "_detail", "_file")
    # Spark's readers prune columns themselves; the split reader is told to read the id only
    key_raw = _split_read_source(spark, files, [id_column]) if split else raw
    keys = key_raw.select(item_id.alias("item_id"), reason.alias("reason"))
    return good, rejected, source, keys


def _split_read_source(spark: SparkSession, files: list[str], columns: list[str] | None = None) -> DataFrame:
    """:func:`catalog2vec.ingest.catalog.read_source`'s columns (all text, ``_corrupt_record``,
    ``_file``) for Parquet files with row groups too large for one task (see ``parquet_splits``)."""
    df = split_read_frame(spark, files, columns)

    def as_text(name: str) -> Column:
        return text_column(df, name)

    data_cols = [c for c in df.columns if c != FILE_COLUMN]
    return df.select(
        *[as_text(c).alias(c) for c in data_cols],
        F.lit(None).cast("string").alias(CORRUPT),
        # Spark's _metadata.file_path spells a local file "file:/abs/path"
        (F.col(FILE_COLUMN) if "://" in files[0] else F.concat(F.lit("file:"), F.col(FILE_COLUMN))).alias("_file"),
    )


BROADCAST_DUPLICATE_IDS = 200_000  # above this many duplicated ids, de-duplicate with a window


def adhoc_items(keys: DataFrame, parsed: DataFrame, fields: list[str]) -> tuple[DataFrame, int, dict[str, int]]:
    """(one row per item_id, rows with an id, {reject reason: rows}) from one aggregation over
    the ids alone. Rows whose id is unique pass straight through (no shuffle of the text); only
    the duplicated ids (broadcast) go through :func:`dedupe_items`."""
    per_key = keys.groupBy("reason", "item_id").agg(F.count(F.lit(1)).alias("n"))
    summary = per_key.groupBy("reason").agg(
        F.sum("n").alias("rows"), F.sum(F.when(F.col("n") > 1, 1).otherwise(0)).alias("dup_ids")
    ).collect()
    n_parsed, n_dup_ids, reasons = 0, 0, {}
    for r in summary:
        if r["reason"] is None:
            n_parsed, n_dup_ids = int(r["rows"]), int(r["dup_ids"])
        else:
            reasons[r["reason"]] = int(r["rows"])
    if not n_dup_ids:
        return parsed, n_parsed, reasons
    if n_dup_ids > BROADCAST_DUPLICATE_IDS:
        return dedupe_items(parsed, fields), n_parsed, reasons
    good_keys = keys.where(F.col("reason").isNull())
    dup = F.broadcast(good_keys.groupBy("item_id").count().where(F.col("count") > 1).select("item_id"))
    unique = parsed.join(dup, "item_id", "left_anti")
    return unique.unionByName(dedupe_items(parsed.join(dup, "item_id", "left_semi"), fields)), n_parsed, reasons


def dedupe_items(items: DataFrame, fields: list[str]) -> DataFrame:
    """One row per item_id: the row whose field texts joined by U+0001 sort first (the Beam
    pipeline applies the identical rule)."""
    key = F.concat_ws("\u0001", *[F.coalesce(F.col(f"`{c}`"), F.lit("")) for c in fields])
    w = Window.partitionBy("item_id").orderBy(key.asc())
    return items.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")
