"""Bulk embedding: ``silver/images`` × model directory → ``gold/item_embeddings`` + ``gold/item_tags``
(+ ``gold/item_tag_probabilities`` when ``embed.full_probabilities``).

* The model version is resolved by the model owner (:func:`catalog2vec.models.resolve`: an unknown
  version is a :class:`catalog2vec.models.ModelNotFoundError`) and checked (model card, vocabulary,
  ``silver/vocab``) before any image is read: a model/vocabulary mismatch is an :class:`EmbedError`.
* Incremental: an item whose ``(item_id, sha256)`` already has an embedding row for this
  model_version is skipped; ``full=True`` recomputes everything.
* Pending images are processed in chunks of ``embed.commit_rows``; each chunk is computed once
  (persisted), then MERGEd (appended to a table that holds no row of the version yet:
  :func:`_first_write`): tags first, embeddings last. An embedding row therefore marks a finished
  item, and a run killed anywhere resumes with exactly the unfinished items (one row per item).
* Accounting: ``images = skipped + pending`` and ``pending = embedded + quarantined``
  (undecodable images go to ``bronze/quarantine`` with reason ``image_undecodable``).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from catalog2vec import models, tracking
from catalog2vec.config import Config
from catalog2vec.embed.core import crash_after_commits
from catalog2vec.errors import InvalidInput
from catalog2vec.lakehouse import conform, ensure_table, read_table, table_exists, write_table
from catalog2vec.quality import JobCounts, Reason, write_quarantine
from catalog2vec.schemas import gold, silver

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from catalog2vec.vision.model import LoadedModel

log = logging.getLogger(__name__)

RESULT_COLUMNS = ("item_id", "sha256", "ok", "embedding", "norm", "tag_index", "tag_probability")


class EmbedError(InvalidInput):
    """The embedding job cannot start: unknown model version, incomplete or inconsistent model."""


@dataclass(frozen=True)
class EmbedCounts(JobCounts):
    JOB = "embed"
    images: int  # rows in silver/images (or staged rows for --from-staging)
    skipped: int  # already embedded for this model_version with the same sha256
    pending: int
    embedded: int
    quarantined: int
    commits: int  # Delta commits made

    def balances(self) -> tuple[tuple[int, int], ...]:
        return ((self.images, self.skipped + self.pending), (self.pending, self.embedded + self.quarantined))


# --------------------------------------------------------------------------- model resolution


def open_model(root: str | os.PathLike[str], model_version: str) -> LoadedModel:
    """Load ``<lakehouse>/models/<model_version>`` (CPU) and check it is self-consistent."""
    from catalog2vec.vision.model import load_model_dir

    path = models.model_dir(root, model_version)
    try:
        loaded = load_model_dir(path)
    except (FileNotFoundError, ValueError) as exc:
        raise EmbedError(f"model {model_version!r} cannot be used: {exc}") from exc
    model = loaded.model
    if len(loaded.tokens) != int(model.num_words):
        raise EmbedError(
            f"model {model_version!r}: vocabulary has {len(loaded.tokens)} tokens, model has {model.num_words} words"
        )
    if len(set(loaded.tokens)) != len(loaded.tokens):
        raise EmbedError(f"model {model_version!r}: vocab.parquet holds duplicate tokens")
    card_version = loaded.card.get("model_version")
    if card_version and card_version != model_version:
        raise EmbedError(f"{path}/model_card.json says model_version={card_version!r}, directory is {model_version!r}")
    return loaded


def check_vocabulary(spark: SparkSession, root: str | os.PathLike[str], loaded: LoadedModel, model_version: str) -> None:
    """When ``silver/vocab`` holds the model's vocab_version, its tokens must equal the model's
    (same token at every index); a version absent from silver/vocab is only logged."""
    from pyspark.sql import functions as F

    if not table_exists(root, silver.VOCAB):
        return
    rows = (
        read_table(spark, root, silver.VOCAB)
        .where(F.col("vocab_version") == loaded.vocab_version)
        .select("index", "token")
        .collect()
    )
    if not rows:
        log.warning("silver/vocab has no vocab_version %s (model %s); using the model's vocab.parquet",
                    loaded.vocab_version, model_version)
        return
    table_tokens = {int(r["index"]): str(r["token"]) for r in rows}
    model_tokens = dict(enumerate(loaded.tokens))
    if table_tokens != model_tokens:
        diff = sorted(i for i in set(table_tokens) | set(model_tokens) if table_tokens.get(i) != model_tokens.get(i))
        raise EmbedError(
            f"model {model_version!r} does not match silver/vocab version {loaded.vocab_version}: "
            f"{len(model_tokens)} model tokens vs {len(table_tokens)} in the table, first differing index {diff[0]}"
        )


# --------------------------------------------------------------------------- selection


def pending_images(spark: SparkSession, root: str | os.PathLike[str], model_version: str, full: bool) -> DataFrame:
    """``silver/images`` rows (item_id, sha256, image) that still need an embedding for this version."""
    from pyspark.sql import functions as F

    images = read_table(spark, root, silver.IMAGES).select("item_id", "sha256", "image")
    if full or not table_exists(root, gold.ITEM_EMBEDDINGS):
        return images
    done = (
        read_table(spark, root, gold.ITEM_EMBEDDINGS)
        .where(F.col("model_version") == model_version)
        .select("item_id", "sha256")
    )
    return images.join(done, ["item_id", "sha256"], "left_anti")


# --------------------------------------------------------------------------- writing


class _Commits:
    """Counts Delta commits; the test hook ``CATALOG2VEC_EMBED_CRASH_AFTER=n`` SIGKILLs this process
    right after the n-th commit (simulates a driver killed mid-job)."""

    def __init__(self) -> None:
        self.n = 0
        self.crash_after = crash_after_commits()

    def __call__(self) -> None:
        self.n += 1
        if self.crash_after and self.n >= self.crash_after:
            print(f"[embed] CATALOG2VEC_EMBED_CRASH_AFTER={self.crash_after} reached: killing the driver",
                  file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)


def _merge_tags(spark: SparkSession, root: str | os.PathLike[str], tags: DataFrame, items: DataFrame) -> None:
    """MERGE the new top-N tags of ``items`` (model_version, item_id) and delete the item's old tags
    that are no longer in its top N (a recomputed item never keeps stale rows)."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    spec = gold.ITEM_TAGS
    tags = conform(tags, spec)
    path = ensure_table(spark, root, spec)
    key = list(spec.key)
    existing = read_table(spark, root, spec).select(*key).join(items, ["model_version", "item_id"], "left_semi")
    stale = (
        existing.join(tags.select(*key), key, "left_anti")
        .withColumn("probability", F.lit(0.0).cast("float"))
        .withColumn("rank", F.lit(0))
        .withColumn("run_id", F.lit(""))
        .withColumn("_op", F.lit("delete"))
    )
    source = tags.withColumn("_op", F.lit("upsert")).unionByName(stale)
    cols: dict[str, Any] = {c: f"s.`{c}`" for c in spec.column_names}
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(source.alias("s"), " AND ".join(f"t.`{k}` = s.`{k}`" for k in key))
        .whenMatchedDelete(condition="s._op = 'delete'")
        .whenMatchedUpdate(
            condition="s._op = 'upsert' AND NOT (t.probability <=> s.probability AND t.`rank` <=> s.`rank`)",
            set=cols,
        )
        .whenNotMatchedInsert(condition="s._op = 'upsert'", values=cols)
        .execute()
    )


def _first_write(spark: SparkSession, root: str | os.PathLike[str], spec: Any, model_version: str) -> bool:
    """True when ``spec``'s table holds no row of ``model_version`` (one partition-pruned probe). The
    write of such a version can append instead of MERGE: no key of the source can match a row (the
    source is unique on the key: one row per item, distinct tags per item), so the table ends the
    same, with fewer Spark jobs. Checked per table, so a run killed between the tag and the
    embedding commit resumes with a MERGE of the tags and an append of the embeddings."""
    from pyspark.sql import functions as F

    if not table_exists(root, spec):
        return True
    rows = read_table(spark, root, spec).where(F.col("model_version") == model_version)
    return not rows.limit(1).collect()


def write_results(
    spark: SparkSession,
    cfg: Config,
    results: DataFrame,
    model_version: str,
    tokens: list[str],
    on_commit: Callable[[], None],
    source: str = "silver/images",
) -> tuple[int, int]:
    """Write one computed chunk (columns :data:`RESULT_COLUMNS` [+ probabilities]); ``results`` must
    be materialised (persisted) by the caller. Returns (embedded, quarantined)."""
    from pyspark.sql import functions as F

    root = cfg.lakehouse
    run_id = cfg.run_id
    bad = results.where(F.col("ok") != 1)
    quarantined = write_quarantine(
        spark,
        bad.select(
            F.lit(source).alias("source"),
            F.concat_ws(":", "item_id", "sha256").alias("record"),
            F.lit(Reason.IMAGE_UNDECODABLE.value).alias("reason"),
            "item_id",
            F.lit(f"embed: image bytes could not be decoded (model_version {model_version})").alias("detail"),
        ),
        root,
        "embed",
        run_id,
    )
    if quarantined:
        on_commit()
    good = results.where(F.col("ok") == 1).withColumn("model_version", F.lit(model_version))
    n_good = good.count()
    if n_good == 0:
        return 0, quarantined

    vocab = spark.createDataFrame(list(enumerate(tokens)), "tag_index int, tag string")
    tags = (
        good.select("model_version", "item_id", F.posexplode(F.arrays_zip("tag_index", "tag_probability")))
        .select(
            "model_version",
            "item_id",
            F.col("col.tag_index").alias("tag_index"),
            F.col("col.tag_probability").cast("float").alias("probability"),
            (F.col("pos") + 1).cast("int").alias("rank"),
        )
        .join(F.broadcast(vocab), "tag_index")
        .withColumn("run_id", F.lit(run_id))
        .drop("tag_index")
    )
    if _first_write(spark, root, gold.ITEM_TAGS, model_version):
        write_table(spark, tags, gold.ITEM_TAGS, root, mode="append")
    else:
        _merge_tags(spark, root, tags, good.select("model_version", "item_id"))
    on_commit()
    if "probabilities" in results.columns:
        probs = good.select("model_version", "item_id", "probabilities", F.lit(run_id).alias("run_id"))
        first = _first_write(spark, root, gold.ITEM_TAG_PROBABILITIES, model_version)
        write_table(spark, probs, gold.ITEM_TAG_PROBABILITIES, root, mode="append" if first else "merge")
        on_commit()
    embeddings = good.select(
        "model_version",
        "item_id",
        "sha256",
        "embedding",
        F.col("norm").cast("float").alias("norm"),
        F.lit(run_id).alias("run_id"),
    )
    first = _first_write(spark, root, gold.ITEM_EMBEDDINGS, model_version)
    # last: marks items done
    write_table(spark, embeddings, gold.ITEM_EMBEDDINGS, root, mode="append" if first else "merge")
    on_commit()
    return int(n_good), quarantined


# --------------------------------------------------------------------------- jobs


def prepare(spark: SparkSession, cfg: Config, model_version: str) -> tuple[str, LoadedModel]:
    """Resolve + load + check the model (before any data is read)."""
    version = models.resolve(cfg.lakehouse, model_version, tracking.registry(cfg))
    loaded = open_model(cfg.lakehouse, version)
    check_vocabulary(spark, cfg.lakehouse, loaded, version)
    return version, loaded


def run_embed(
    spark: SparkSession,
    cfg: Config,
    model_version: str,
    batch_size: int | None = None,
    full: bool = False,
) -> tuple[str, EmbedCounts]:
    """Embed pending ``silver/images`` rows with ``predict_batch_udf``; returns (model_version, counts)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from catalog2vec.embed.udf import embedding_udf

    ec = cfg.embed
    bs = int(batch_size or ec.batch_size)
    if bs < 1 or ec.commit_rows < 1:
        raise EmbedError(f"batch size and embed.commit_rows must be >= 1 (got {bs}, {ec.commit_rows})")
    version, loaded = prepare(spark, cfg, model_version)
    log.info("model %s: %s/%s, %d words, %d px, embedding_dim %d", version, loaded.card.get("arch"),
             loaded.card.get("loss"), len(loaded.tokens), loaded.image_size, loaded.model.embedding_dim)
    n_images = read_table(spark, cfg.lakehouse, silver.IMAGES).count()
    pending = pending_images(spark, cfg.lakehouse, version, full).persist(StorageLevel.DISK_ONLY)
    n_pending = pending.count()
    skipped = n_images - n_pending
    log.info("silver/images: %d rows, %d already embedded for %s, %d to embed%s", n_images, skipped, version,
             n_pending, " (--full)" if full else "")
    udf = embedding_udf(models.model_dir(cfg.lakehouse, version), ec.top_n, bs, ec.device, ec.torch_threads,
                        ec.full_probabilities)
    commits = _Commits()
    embedded = quarantined = 0
    n_chunks = max(1, math.ceil(n_pending / ec.commit_rows)) if n_pending else 0
    parallelism = int(spark.sparkContext.defaultParallelism)
    try:
        for i in range(n_chunks):
            chunk = pending if n_chunks == 1 else pending.where(F.pmod(F.xxhash64("item_id"), F.lit(n_chunks)) == i)
            rows = n_pending if n_chunks == 1 else chunk.count()
            parts = max(1, min(parallelism, math.ceil(rows / bs)))
            if chunk.rdd.getNumPartitions() < parts:
                chunk = chunk.repartition(parts)
            out = chunk.select("item_id", "sha256", udf("image").alias("r"))
            results = out.select("item_id", "sha256", "r.*").persist(StorageLevel.MEMORY_AND_DISK)
            results.count()  # run the model exactly once per chunk
            e, q = write_results(spark, cfg, results, version, loaded.tokens, commits)
            results.unpersist()
            embedded += e
            quarantined += q
            log.info("chunk %d/%d: %d embedded, %d quarantined (%d/%d done)", i + 1, n_chunks, e, q,
                     embedded + quarantined, n_pending)
    finally:
        pending.unpersist()
    counts = EmbedCounts(n_images, skipped, n_pending, embedded, quarantined, commits.n)
    counts.check()
    return version, counts


def merge_staged(
    spark: SparkSession,
    cfg: Config,
    staging: str,
    model_version: str,
    full: bool = False,
) -> tuple[str, EmbedCounts]:
    """Merge Parquet results staged by the Beam pipeline (``pipelines/embed.py``) into the gold tables."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    version, loaded = prepare(spark, cfg, model_version)
    try:
        staged = spark.read.parquet(staging)
    except Exception as exc:  # AnalysisException: path does not exist / not parquet
        raise EmbedError(f"cannot read staged results at {staging}: {exc}") from exc
    missing = [c for c in (*RESULT_COLUMNS, "model_version") if c not in staged.columns]
    if missing:
        raise EmbedError(f"{staging}: not an embed staging output (missing columns {missing})")
    versions = [r[0] for r in staged.select("model_version").distinct().collect()]
    if versions != [version]:
        raise EmbedError(f"{staging} holds model_version(s) {versions}, expected only {version!r}")
    cols = list(RESULT_COLUMNS) + (["probabilities"] if cfg.embed.full_probabilities else [])
    if "probabilities" in cols and "probabilities" not in staged.columns:
        raise EmbedError(f"{staging}: embed.full_probabilities is set but the staged rows carry no probabilities")
    staged = staged.select(*cols)
    n_rows = staged.count()
    dupes = staged.groupBy("item_id").count().where(F.col("count") > 1).limit(1).collect()
    if dupes:
        raise EmbedError(f"{staging}: item {dupes[0]['item_id']!r} staged more than once")
    todo = staged
    if not full and table_exists(cfg.lakehouse, gold.ITEM_EMBEDDINGS):
        done = (
            read_table(spark, cfg.lakehouse, gold.ITEM_EMBEDDINGS)
            .where(F.col("model_version") == version)
            .select("item_id", "sha256")
        )
        todo = staged.join(done, ["item_id", "sha256"], "left_anti")
    todo = todo.persist(StorageLevel.MEMORY_AND_DISK)
    n_todo = todo.count()
    commits = _Commits()
    e = q = 0
    if n_todo:
        e, q = write_results(spark, cfg, todo, version, loaded.tokens, commits, source=f"staging:{staging}")
    todo.unpersist()
    counts = EmbedCounts(n_rows, n_rows - n_todo, n_todo, e, q, commits.n)
    counts.check()
    return version, counts


__all__ = [
    "EmbedCounts",
    "EmbedError",
    "check_vocabulary",
    "merge_staged",
    "open_model",
    "pending_images",
    "run_embed",
    "write_results",
]
