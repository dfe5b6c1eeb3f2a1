"""The vocabulary job: catalog text → silver/catalog_tokens, silver/vocab (+ the vocab files).

The cleaning itself is :func:`catalog2vec.text.columnar.clean_arrow_batch`, run on the executors
by ``mapInArrow``; counting is Spark SQL (explode → groupBy with map-side partial aggregation);
only the final top-K rows of the vocabulary are collected to the driver. An ad-hoc input file is
read by :mod:`catalog2vec.text.adhoc_input`; the labels job is :mod:`catalog2vec.text.labels_job`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from catalog2vec.config import Config
from catalog2vec.errors import InvalidInput
from catalog2vec.lakehouse import read_table, table_exists, table_path, write_table
from catalog2vec.quality import JobCounts, Reason, write_quarantine
from catalog2vec.schemas import bronze, silver
from catalog2vec.text.adhoc_input import adhoc_items, read_adhoc
from catalog2vec.text.clean import CleanerSettings
from catalog2vec.text.columnar import clean_arrow_batch
from catalog2vec.text.vocab import VocabEntry, finalize_vocab, write_vocab_files, write_vocab_parquet

log = logging.getLogger(__name__)

__all__ = ["VocabCounts", "VocabResult", "build_vocab", "clean_frame", "token_stats", "top_k_vocab"]

BRONZE_SOURCE = "bronze.catalog_items"
#: what :func:`clean_frame` returns per item (the columns of :func:`clean_arrow_batch`)
CLEAN_BATCH_DDL = (
    "item_id string, tokens array<string>, n_raw_tokens int, truncated boolean, "
    "uniq_tokens array<string>, uniq_counts array<bigint>"
)


@dataclass(frozen=True)
class VocabCounts(JobCounts):
    JOB = "build_vocab"
    read: int  # input rows
    tokenised: int  # items written to catalog_tokens (at least one token)
    quarantined: int  # rows rejected with a reason (no_tokens, missing_item_id, malformed_record)
    duplicates: int  # ad-hoc input rows whose item_id repeats (one row per id is kept)
    truncated: int = 0  # items whose text was cut at text.max_chars (still tokenised)

    def balances(self) -> tuple[tuple[int, int], ...]:
        return ((self.read, self.tokenised + self.quarantined + self.duplicates),)


@dataclass(frozen=True)
class VocabResult:
    vocab: list[VocabEntry]
    counts: VocabCounts
    paths: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.vocab[0].vocab_version if self.vocab else ""


RAW_PREFIX = "_raw_"


def clean_frame(df: DataFrame, settings: CleanerSettings, keep_empty_text: bool = False) -> DataFrame:
    """``df`` (item_id + the settings' fields) → item_id, tokens, n_raw_tokens, truncated,
    uniq_tokens, uniq_counts: :func:`clean_arrow_batch` (whole-batch Arrow kernels) on the
    executors. ``keep_empty_text`` adds ``_raw_<field>``: the field texts of the rows that
    cleaned to nothing (null elsewhere), so their quarantine record needs no second read."""
    cols = [F.col("item_id").cast("string").alias("item_id")]
    cols += [F.col(f"`{name}`").cast("string").alias(name) for name in settings.field_names]
    schema = T.StructType.fromDDL(CLEAN_BATCH_DDL)
    assert isinstance(schema, T.StructType)
    if keep_empty_text:
        for name in settings.field_names:
            schema = schema.add(T.StructField(RAW_PREFIX + name, T.StringType(), True))

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            out = clean_arrow_batch(batch, settings)
            if keep_empty_text:
                empty = pc.equal(pc.list_value_length(out.column("tokens")), 0)
                nulls = pa.nulls(batch.num_rows, pa.string())
                for name in settings.field_names:
                    out = out.append_column(RAW_PREFIX + name, pc.if_else(empty, batch.column(name), nulls))
            yield out

    return df.select(*cols).mapInArrow(run, schema)


def token_stats(cleaned: DataFrame) -> DataFrame:
    """token, count (weighted occurrences), doc_freq (items containing it)."""
    pairs = cleaned.select(F.explode(F.arrays_zip("uniq_tokens", "uniq_counts")).alias("p"))
    return pairs.groupBy(F.col("p.uniq_tokens").alias("token")).agg(
        F.sum("p.uniq_counts").cast("long").alias("count"), F.count(F.lit(1)).cast("long").alias("doc_freq")
    )


def top_k_vocab(stats: DataFrame, vocab_size: int, min_count: int, fingerprint: str) -> list[VocabEntry]:
    """Collect only the top ``vocab_size`` rows (ordered in Spark) and number them on the driver."""
    top = (
        stats.where(F.col("count") >= min_count)
        .orderBy(F.col("count").desc(), F.col("token").asc())
        .limit(vocab_size)
        .collect()
    )
    return finalize_vocab(((r["token"], r["count"], r["doc_freq"]) for r in top), vocab_size, min_count, fingerprint)


def vocab_frame(spark: SparkSession, entries: list[VocabEntry]) -> DataFrame:
    rows = [(e.vocab_version, e.token, e.index, e.count, e.doc_freq) for e in entries]
    return spark.createDataFrame(rows, schema=silver.VOCAB.spark_schema())


@dataclass
class _VocabInput:
    items: DataFrame  # item_id + the text fields, one row per item
    settings: CleanerSettings
    source: str
    rejected: DataFrame | None = None  # ad-hoc parse/id rejects (quarantine rows) or None
    n_parsed: int = 0
    input_reasons: dict[str, int] = field(default_factory=dict)


def _vocab_input(spark: SparkSession, cfg: Config, input_path: str | None, fmt: str, id_column: str,
                 text_columns: Mapping[str, int] | None) -> _VocabInput:
    """The items to clean: an ad-hoc file (parsed per record, rejects kept) or bronze.catalog_items."""
    if input_path is not None:
        fields = dict(text_columns or cfg.text.fields)
        parsed, rejected, source, keys = read_adhoc(spark, input_path, fmt, id_column, fields)
        items, n_parsed, reasons = adhoc_items(keys, parsed, list(fields))
        return _VocabInput(items, CleanerSettings.from_config(cfg.text, fields), source,
                           rejected if reasons else None, n_parsed, reasons)
    settings = CleanerSettings.from_config(cfg.text, text_columns)
    bronze_df = read_table(spark, cfg.lakehouse, bronze.CATALOG_ITEMS)
    missing = [f for f in settings.field_names if f not in bronze_df.columns]
    if missing:
        raise InvalidInput(f"text.fields {missing} are not columns of bronze.catalog_items {bronze_df.columns}")
    return _VocabInput(bronze_df.select("item_id", *settings.field_names), settings, BRONZE_SOURCE)


def _clean_counts(cleaned: DataFrame) -> tuple[int, int, int]:
    """(items, items with no token left, items truncated) of the cleaned frame, in one job."""
    agg = cleaned.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.when(F.size("tokens") == 0, 1).otherwise(0)).alias("empty"),
        F.sum(F.when(F.col("truncated"), 1).otherwise(0)).alias("truncated"),
    ).collect()[0]
    return int(agg["n"]), int(agg["empty"] or 0), int(agg["truncated"] or 0)


def _rejects(cleaned: DataFrame, inp: _VocabInput, n_empty: int) -> DataFrame | None:
    """Quarantine rows: items whose text cleaned down to nothing (+ ad-hoc parse/id rejects)."""
    no_tokens = None
    if n_empty:
        raw_fields = [F.col(RAW_PREFIX + name).alias(name) for name in inp.settings.field_names]
        no_tokens = cleaned.where(F.size("tokens") == 0).select(
            F.lit(inp.source).alias("source"),
            F.to_json(F.struct(F.col("item_id"), *raw_fields)).alias("record"),
            F.col("item_id"),
            F.lit(Reason.NO_TOKENS.value).alias("reason"),
            F.concat(F.lit("raw tokens: "), F.col("n_raw_tokens").cast("string"), F.lit(", none survived filtering")).alias(
                "detail"
            ),
        )
    bad: DataFrame | None = None
    for part in (d for d in (inp.rejected, no_tokens) if d is not None):
        bad = part if bad is None else bad.unionByName(part)
    return bad


def build_vocab(
    spark: SparkSession,
    cfg: Config,
    *,
    input_path: str | None = None,
    fmt: str = "csv",
    id_column: str = "item_id",
    text_columns: Mapping[str, int] | None = None,
    output: str | None = None,
    vocab_size: int | None = None,
    min_count: int | None = None,
    write_tokens: bool = True,
) -> VocabResult:
    """Lakehouse mode (``input_path`` None): bronze/catalog_items → silver/catalog_tokens,
    silver/vocab (+ ``<lakehouse>/vocab/<version>/vocab.parquet`` and ``vocab/CURRENT``),
    rejects to bronze/quarantine. Ad-hoc mode (``input_path`` and ``output``): the same outputs as
    plain Parquet under ``output`` (``vocab.parquet``, ``catalog_tokens/``, ``quarantine/``)."""
    k = int(vocab_size if vocab_size is not None else cfg.text.vocab_size)
    mc = int(min_count if min_count is not None else cfg.text.min_count)
    if input_path is not None and not output:
        raise InvalidInput("--input needs --output (ad-hoc mode writes plain Parquet, no lakehouse)")
    if k < 1:
        raise InvalidInput(f"--vocab-size must be >= 1, got {k}")
    inp = _vocab_input(spark, cfg, input_path, fmt, id_column, text_columns)
    fingerprint = inp.settings.fingerprint()
    # the one cleaned frame: every later figure and output is read from it (no second Python pass)
    # DISK_ONLY: PySpark's MEMORY_AND_DISK is serialized, and a task reading a serialized block
    # back holds all of it deserialized outside Spark's accounting: 5M rows ran out of a 3 GiB heap
    cleaned = clean_frame(inp.items, inp.settings, keep_empty_text=True).persist(StorageLevel.DISK_ONLY)
    n_items, n_empty, n_trunc = _clean_counts(cleaned)
    log.info("cleaned %d items (%d with no token left, %d truncated)", n_items, n_empty, n_trunc)

    good = cleaned.where(F.size("tokens") > 0)
    vocab = top_k_vocab(token_stats(good), k, mc, fingerprint)
    if not vocab:
        cleaned.unpersist()
        raise InvalidInput(
            f"the vocabulary is empty: no token occurs at least min_count={mc} times in {n_items} items"
        )
    bad = _rejects(cleaned, inp, n_empty)
    tokens_out = good.select("item_id", "tokens", "n_raw_tokens", "truncated", F.lit(cfg.run_id).alias("run_id"))
    manifest = {
        "vocab_version": vocab[0].vocab_version,
        "vocab_size": len(vocab),
        "requested_vocab_size": k,
        "min_count": mc,
        "fields": dict(inp.settings.fields),
        "cleaning_fingerprint": fingerprint,
        "run_id": cfg.run_id,
        "created_at": datetime.now(UTC).isoformat(),
        "source": input_path or BRONZE_SOURCE,
    }
    if output is not None and input_path is not None:
        counts, paths, reasons = _write_adhoc(cfg, output, inp, vocab, manifest, bad, tokens_out,
                                              (n_items, n_empty, n_trunc), write_tokens)
    else:
        counts, paths, reasons = _write_lakehouse(spark, cfg, vocab, manifest, bad, tokens_out,
                                                  (n_items, n_empty, n_trunc), write_tokens)
    cleaned.unpersist()
    counts.check()
    return VocabResult(vocab=vocab, counts=counts, paths=paths, reasons=reasons)


Written = tuple[VocabCounts, dict[str, str], dict[str, int]]  # counts, output paths, quarantine reasons


def _write_adhoc(cfg: Config, output: str, inp: _VocabInput, vocab: list[VocabEntry], manifest: dict[str, Any],
                 bad: DataFrame | None, tokens_out: DataFrame, figures: tuple[int, int, int],
                 write_tokens: bool) -> Written:
    """Ad-hoc outputs as plain Parquet under ``output``: quarantine/, catalog_tokens/, vocab.parquet."""
    n_items, n_empty, n_trunc = figures
    out = output.rstrip("/")
    paths: dict[str, str] = {}
    reasons: dict[str, int] = {}
    n_bad = 0
    if bad is not None:
        reasons.update(inp.input_reasons)
        if n_empty:
            reasons[Reason.NO_TOKENS.value] = n_empty
        n_bad = sum(reasons.values())
        bad.withColumn("run_id", F.lit(cfg.run_id)).write.mode("overwrite").parquet(f"{out}/quarantine")
        paths["quarantine"] = f"{out}/quarantine"
    if write_tokens:
        tokens_out.write.mode("overwrite").parquet(f"{out}/catalog_tokens")
        paths["catalog_tokens"] = f"{out}/catalog_tokens"
    counts = VocabCounts(read=inp.n_parsed + n_bad - n_empty, tokenised=n_items - n_empty, quarantined=n_bad,
                         duplicates=inp.n_parsed - n_items, truncated=n_trunc)
    manifest["counts"] = asdict(counts)
    paths["vocab"] = write_vocab_parquet(vocab, out, manifest)
    return counts, paths, reasons


def _write_lakehouse(spark: SparkSession, cfg: Config, vocab: list[VocabEntry], manifest: dict[str, Any],
                     bad: DataFrame | None, tokens_out: DataFrame, figures: tuple[int, int, int],
                     write_tokens: bool) -> Written:
    """Lakehouse outputs: bronze/quarantine, silver/catalog_tokens (MERGE), silver/vocab, vocab files."""
    n_items, n_empty, n_trunc = figures
    paths: dict[str, str] = {}
    reasons: dict[str, int] = {}
    n_bad = 0
    if bad is not None:
        n_bad = write_quarantine(spark, bad, cfg.lakehouse, "build_vocab", cfg.run_id)
        reasons[Reason.NO_TOKENS.value] = n_bad
    if write_tokens:
        paths["catalog_tokens"] = _merge_tokens(spark, cfg, tokens_out)
    paths["vocab_table"] = _write_vocab_table(spark, cfg, vocab)
    manifest["counts"] = {"read": n_items, "tokenised": n_items - n_empty, "quarantined": n_bad, "duplicates": 0}
    paths["vocab"] = write_vocab_files(vocab, cfg.lakehouse, manifest)
    counts = VocabCounts(read=n_items, tokenised=n_items - n_empty, quarantined=n_bad, duplicates=0, truncated=n_trunc)
    return counts, paths, reasons


def _merge_tokens(spark: SparkSession, cfg: Config, tokens_out: DataFrame) -> str:
    """MERGE into silver/catalog_tokens, skipped (no Delta commit) when no row would change."""
    if table_exists(cfg.lakehouse, silver.CATALOG_TOKENS):
        content = ["item_id", "tokens", "n_raw_tokens", "truncated"]
        existing = read_table(spark, cfg.lakehouse, silver.CATALOG_TOKENS).select(*content)
        if not tokens_out.select(*content).exceptAll(existing).limit(1).count():
            log.info("silver/catalog_tokens is up to date: nothing to merge")
            return table_path(cfg.lakehouse, silver.CATALOG_TOKENS)
    return write_table(spark, tokens_out, silver.CATALOG_TOKENS, cfg.lakehouse, mode="merge")


def _write_vocab_table(spark: SparkSession, cfg: Config, vocab: list[VocabEntry]) -> str:
    """silver/vocab: replace_where on vocab_version, skipped when that version is already there
    (the version is a content hash, so an existing version has exactly this content)."""
    version = vocab[0].vocab_version
    if table_exists(cfg.lakehouse, silver.VOCAB):
        existing = read_table(spark, cfg.lakehouse, silver.VOCAB).where(F.col("vocab_version") == version).count()
        if existing == len(vocab):
            log.info("silver/vocab already holds %s (%d rows): nothing to write", version, existing)
            return table_path(cfg.lakehouse, silver.VOCAB)
    return write_table(spark, vocab_frame(spark, vocab), silver.VOCAB, cfg.lakehouse, mode="replace_where", version=version)
