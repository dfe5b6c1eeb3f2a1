"""The labels job: silver/catalog_tokens × silver/vocab[version] → silver/item_labels.

Each item's labels are the sorted distinct vocabulary indices of its tokens; its split
(train/val/test) is the hash rule of :func:`catalog2vec.text.vocab.split_for`, computed in Spark.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from catalog2vec.config import Config
from catalog2vec.errors import InvalidInput
from catalog2vec.lakehouse import read_table, write_table
from catalog2vec.quality import JobCounts, Reason, write_quarantine
from catalog2vec.schemas import silver
from catalog2vec.text.vocab import SPLIT_HEX_DIGITS, check_ratios, current_vocab_version

__all__ = ["LabelCounts", "build_labels", "label_frame", "split_column"]

TOKENS_SOURCE = "silver.catalog_tokens"


@dataclass(frozen=True)
class LabelCounts(JobCounts):
    JOB = "build_labels"
    read: int
    labelled: int
    quarantined: int
    splits: dict[str, int]

    def balances(self) -> tuple[tuple[int, int], ...]:
        return ((self.read, self.labelled + self.quarantined),)


def split_column(item_id: Column, train: float, val: float, test: float, salt: str) -> Column:
    """Spark expression identical to :func:`catalog2vec.text.vocab.split_for`."""
    check_ratios(train, val, test)
    frac = F.conv(F.substring(F.sha2(F.concat(F.lit(f"{salt}:"), item_id), 256), 1, SPLIT_HEX_DIGITS), 16, 10).cast(
        "double"
    ) / float(16**SPLIT_HEX_DIGITS)
    return F.when(frac < train, "train").when(frac < train + val, "val").otherwise("test")


def label_frame(tokens: DataFrame, vocab: DataFrame) -> DataFrame:
    """tokens[item_id, tokens] × vocab[token, index] → item_id, labels (sorted distinct indices;
    null when no token is in the vocabulary). The vocabulary is broadcast (K rows)."""
    exploded = tokens.select("item_id", F.explode(F.array_distinct("tokens")).alias("token"))
    hits = exploded.join(F.broadcast(vocab.select("token", "index")), "token", "inner")
    labels = hits.groupBy("item_id").agg(F.array_sort(F.collect_set("index")).alias("labels"))
    return tokens.select("item_id", "tokens").join(labels, "item_id", "left")


def resolve_vocab_version(cfg: Config, requested: str | None) -> str:
    return requested or current_vocab_version(cfg.lakehouse)


def build_labels(spark: SparkSession, cfg: Config, vocab_version: str | None = None) -> tuple[str, LabelCounts]:
    """silver/catalog_tokens + silver/vocab[vocab_version] → silver/item_labels (replace_where on
    the version); items with no vocabulary word → bronze/quarantine (no_vocab_words)."""
    lc = cfg.labels
    check_ratios(lc.train, lc.val, lc.test)
    version = resolve_vocab_version(cfg, vocab_version)
    vocab = read_table(spark, cfg.lakehouse, silver.VOCAB).where(F.col("vocab_version") == version)
    if not vocab.limit(1).count():
        raise InvalidInput(f"vocab_version {version!r} is not in silver/vocab; run build_vocab or pick another version")
    tokens = read_table(spark, cfg.lakehouse, silver.CATALOG_TOKENS)
    joined = label_frame(tokens, vocab).persist(StorageLevel.MEMORY_AND_DISK)
    ok = joined.where(F.col("labels").isNotNull())
    out = ok.select(
        F.lit(version).alias("vocab_version"),
        "item_id",
        F.col("labels").cast("array<int>").alias("labels"),
        split_column(F.col("item_id"), lc.train, lc.val, lc.test, lc.salt).alias("split"),
        F.lit(cfg.run_id).alias("run_id"),
    ).persist(StorageLevel.MEMORY_AND_DISK)
    splits = {r["split"]: int(r["count"]) for r in out.groupBy("split").count().collect()}
    n_ok = sum(splits.values())
    n_read = int(joined.count())
    bad = joined.where(F.col("labels").isNull()).select(
        F.lit(TOKENS_SOURCE).alias("source"),
        F.to_json(F.struct("item_id", "tokens")).alias("record"),
        F.col("item_id"),
        F.lit(Reason.NO_VOCAB_WORDS.value).alias("reason"),
        F.lit(f"no token in vocabulary {version}").alias("detail"),
    )
    n_bad = write_quarantine(spark, bad, cfg.lakehouse, "build_labels", cfg.run_id)
    if n_ok:
        write_table(spark, out, silver.ITEM_LABELS, cfg.lakehouse, mode="replace_where", version=version)
    out.unpersist()
    joined.unpersist()
    counts = LabelCounts(read=n_read, labelled=n_ok, quarantined=n_bad, splits=splits)
    counts.check()
    return version, counts
