"""Crawled catalog files → ``bronze/catalog_items`` (+ ``bronze/quarantine``).

Reader (CSV / JSON lines / Parquet, every value kept as text) → pure transforms
(``canonicalize`` → ``validate``) → writer (dedupe on item_id, latest crawled_at wins, MERGE).
Accounting: ``read = written + quarantined + duplicates``.
"""

from __future__ import annotations

import glob as globlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog2vec.config import Config
from catalog2vec.quality import Reason

CANONICAL = (
    "item_id",
    "title",
    "description",
    "category",
    "brand",
    "color",
    "gender",
    "image_uri",
    "url",
    "crawled_at",
)
# fields whose size is limited (ingest.max_field_chars)
TEXT_FIELDS = ("title", "description", "category", "brand", "color", "gender", "image_uri", "url")
CORRUPT = "_corrupt_record"
FORMATS = ("csv", "json", "parquet")


class IngestError(ValueError):
    """Invalid job arguments (bad mapping, unknown format, no input files)."""


@dataclass(frozen=True)
class IngestCounts:
    read: int
    written: int
    quarantined: int
    duplicates: int

    def check(self) -> None:
        if self.read != self.written + self.quarantined + self.duplicates:
            raise AssertionError(f"ingest accounting does not add up: {self}")

    def __str__(self) -> str:
        return (
            f"read={self.read} written={self.written} quarantined={self.quarantined} duplicates={self.duplicates}"
        )


def parse_mapping(text: str | None, canonical: tuple[str, ...] = CANONICAL) -> dict[str, str]:
    """``"id=item_id,productDisplayName=title"`` → ``{"id": "item_id", ...}``, validated against
    the ``canonical`` column names of the target table."""
    mapping: dict[str, str] = {}
    if not text:
        return mapping
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise IngestError(f"mapping entry {part!r} must look like source_column=canonical_column")
        src, dst = (x.strip() for x in part.split("=", 1))
        if dst not in canonical:
            raise IngestError(f"mapping target {dst!r} is not a canonical column; choose from {list(canonical)}")
        if dst in mapping.values():
            raise IngestError(f"canonical column {dst!r} is mapped twice")
        if src in mapping:
            raise IngestError(f"source column {src!r} is mapped twice")
        mapping[src] = dst
    return mapping


def resolve_inputs(input_path: str) -> list[str]:
    """Expand a path or glob to files; URIs are passed through to Spark."""
    if "://" in input_path:
        return [input_path]
    files = sorted(p for p in globlib.glob(os.path.expanduser(input_path)) if os.path.isfile(p))
    if not files and os.path.isdir(input_path):
        files = [input_path]
    if not files:
        raise IngestError(f"no input files match {input_path!r}")
    return [str(Path(f).resolve()) for f in files]


def input_base_dir(input_path: str) -> str:
    """The directory relative image templates resolve against: the glob's fixed prefix."""
    if "://" in input_path:
        return input_path.rsplit("/", 1)[0]
    fixed = re.split(r"[*?\[]", input_path, maxsplit=1)[0]
    if fixed.endswith("/") or (fixed == input_path and Path(fixed).is_dir()):
        return str(Path(fixed).resolve())
    return str(Path(fixed).parent.resolve())


def read_source(spark: Any, files: list[str], fmt: str) -> Any:
    """Read the input as all-string columns plus ``_corrupt_record`` and ``_raw``/file metadata."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r}; choose from {FORMATS}")
    if fmt == "csv":
        header = spark.read.option("header", True).option("multiLine", True).csv(files).schema
        schema = T.StructType([T.StructField(f.name, T.StringType(), True) for f in header.fields])
        schema = schema.add(T.StructField(CORRUPT, T.StringType(), True))
        df = (
            spark.read.schema(schema)
            .option("header", True)
            .option("multiLine", True)
            .option("escape", '"')
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT)
            .option("enforceSchema", False)
            .csv(files)
        )
    elif fmt == "json":
        df = (
            spark.read.option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT)
            .option("primitivesAsString", True)
            .json(files)
        )
        if CORRUPT not in df.columns:
            df = df.withColumn(CORRUPT, F.lit(None).cast("string"))
    else:
        df = spark.read.parquet(*files)
        df = df.withColumn(CORRUPT, F.lit(None).cast("string"))

    def as_text(name: str) -> Any:
        dtype, col = df.schema[name].dataType, F.col(f"`{name}`")
        if isinstance(dtype, T.StringType):
            return col
        if isinstance(dtype, (T.StructType, T.ArrayType, T.MapType)):
            return F.to_json(col)
        return col.cast("string")

    return df.select(
        *[as_text(c).alias(c) for c in df.columns if c != CORRUPT],
        F.col(CORRUPT),
        F.col("_metadata.file_path").alias("_file"),
        F.col("_metadata.file_modification_time").alias("_file_mtime"),
    )


def _template_expr(template: str, base_dir: str, mapped: dict[str, Any]) -> Any:
    from pyspark.sql import functions as F

    parts: list[Any] = []
    pos = 0
    for m in re.finditer(r"\{(\w+)\}", template):
        if m.start() > pos:
            parts.append(F.lit(template[pos : m.start()]))
        name = m.group(1)
        if name not in mapped:
            raise IngestError(f"image template field {{{name}}} is not a canonical column")
        parts.append(mapped[name])
        pos = m.end()
    if pos < len(template):
        parts.append(F.lit(template[pos:]))
    expr = F.concat(*parts)
    if not (template.startswith("/") or "://" in template):
        expr = F.concat(F.lit(base_dir.rstrip("/") + "/"), expr)
    return expr


def canonicalize(
    df: Any,
    mapping: dict[str, str],
    source: str,
    image_template: str | None = None,
    base_dir: str = ".",
) -> Any:
    """Rename mapped columns to canonical names; keep the rest in ``extra``; add ``_record``."""
    from pyspark.sql import functions as F

    src_cols = [c for c in df.columns if c not in (CORRUPT, "_file", "_file_mtime")]
    for src in mapping:
        if src not in src_cols:
            raise IngestError(f"mapping source column {src!r} not in input columns {src_cols}")
    target = dict(mapping)
    for c in src_cols:  # identity mapping for columns already named canonically
        if c in CANONICAL and c not in target and c not in target.values():
            target[c] = c
    by_dst = {dst: src for src, dst in target.items()}
    mapped: dict[str, Any] = {}
    for name in CANONICAL:
        if name in by_dst:
            mapped[name] = F.col(f"`{by_dst[name]}`")
        else:
            mapped[name] = F.lit(None).cast("string")
    mapped["item_id"] = F.trim(mapped["item_id"])
    if image_template:
        mapped["image_uri"] = _template_expr(image_template, base_dir, mapped)
    unmapped = [c for c in src_cols if c not in target]
    extra = (
        F.map_from_arrays(
            F.array(*[F.lit(c) for c in unmapped]),
            F.array(*[F.col(f"`{c}`") for c in unmapped]),
        )
        if unmapped
        else F.create_map().cast("map<string,string>")
    )
    record = F.coalesce(F.col(CORRUPT), F.to_json(F.struct(*[F.col(f"`{c}`") for c in src_cols])))
    crawled = F.coalesce(F.try_to_timestamp(mapped["crawled_at"]), F.col("_file_mtime"))
    return df.select(
        *[mapped[n].alias(n) for n in CANONICAL if n != "crawled_at"],
        crawled.alias("crawled_at"),
        F.lit(source).alias("source"),
        extra.alias("extra"),
        record.alias("_record"),
        F.col(CORRUPT).alias(CORRUPT),
    )


def validate(df: Any, max_field_chars: int) -> Any:
    """Add ``_reason`` / ``_detail`` (null when valid). First failing check wins, in the
    documented order: malformed_record, invalid_utf8, missing_item_id, field_too_large, no_text."""
    from pyspark.sql import functions as F

    blank = lambda c: F.col(c).isNull() | (F.trim(F.col(c)) == "")  # noqa: E731
    has_fffd = F.lit(False)
    for c in (*TEXT_FIELDS, "item_id"):
        has_fffd = has_fffd | F.coalesce(F.col(c).contains("\ufffd"), F.lit(False))
    has_fffd = has_fffd | F.coalesce(F.col("_record").contains("\ufffd"), F.lit(False))
    too_large = [F.when(F.length(F.col(c)) > max_field_chars, F.lit(c)) for c in TEXT_FIELDS]
    too_large_col = F.concat_ws(",", *too_large)
    reason = (
        F.when(F.col(CORRUPT).isNotNull(), F.lit(Reason.MALFORMED_RECORD.value))
        .when(has_fffd, F.lit(Reason.INVALID_UTF8.value))
        .when(blank("item_id"), F.lit(Reason.MISSING_ITEM_ID.value))
        .when(too_large_col != "", F.lit(Reason.FIELD_TOO_LARGE.value))
        .when(blank("title") & blank("description"), F.lit(Reason.NO_TEXT.value))
    )
    detail = (
        F.when(F.col(CORRUPT).isNotNull(), F.lit("could not parse the record"))
        .when(has_fffd, F.lit("bytes that are not valid UTF-8"))
        .when(blank("item_id"), F.lit("item_id is missing or blank"))
        .when(too_large_col != "", F.concat(F.lit(f"over {max_field_chars} chars: "), too_large_col))
        .when(blank("title") & blank("description"), F.lit("no title and no description"))
    )
    return df.withColumn("_reason", reason).withColumn("_detail", detail)


def dedupe_latest(df: Any) -> Any:
    """One row per item_id: latest crawled_at wins; ties broken by content hash (deterministic)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("item_id").orderBy(F.col("crawled_at").desc_nulls_last(), F.col("record_sha256").desc())
    return df.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")


def ingest_catalog(
    spark: Any,
    cfg: Config,
    input_path: str,
    fmt: str,
    mapping: dict[str, str] | None = None,
    source: str | None = None,
    image_template: str | None = None,
) -> IngestCounts:
    """Run the whole ingest; returns the counts (which add up, or this raises)."""
    from pyspark.sql import functions as F

    from catalog2vec.lakehouse import write_table
    from catalog2vec.quality import write_quarantine
    from catalog2vec.schemas import bronze

    files = resolve_inputs(input_path)
    if not source:
        source = files[0].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    raw = read_source(spark, files, fmt)
    canon = canonicalize(raw, mapping or {}, source, image_template, input_base_dir(input_path))
    checked = validate(canon, cfg.ingest.max_field_chars).cache()
    n_read = checked.count()

    bad = checked.where(F.col("_reason").isNotNull()).select(
        F.col("source"),
        F.col("_record").alias("record"),
        F.col("item_id"),
        F.col("_reason").alias("reason"),
        F.col("_detail").alias("detail"),
    )
    n_bad = write_quarantine(spark, bad, cfg.lakehouse, "ingest_catalog", cfg.run_id)

    good = checked.where(F.col("_reason").isNull())
    content = F.to_json(
        F.struct(*[F.col(c) for c in CANONICAL if c != "crawled_at"], F.col("crawled_at").cast("string"), F.col("extra"))
    )
    good = good.withColumn("record_sha256", F.sha2(content, 256))
    n_good = good.count()
    latest = dedupe_latest(good).select(
        *[c for c in CANONICAL],
        "source",
        "extra",
        "record_sha256",
        F.lit(cfg.run_id).alias("run_id"),
        F.current_timestamp().alias("ingested_at"),
    )
    latest = latest.cache()
    n_written = latest.count()
    if n_written:
        write_table(
            spark,
            latest,
            bronze.CATALOG_ITEMS,
            cfg.lakehouse,
            mode="merge",
            update_if="t.crawled_at IS NULL OR s.crawled_at >= t.crawled_at",
        )
    latest.unpersist()
    checked.unpersist()
    counts = IngestCounts(read=n_read, written=n_written, quarantined=n_bad, duplicates=n_good - n_written)
    counts.check()
    return counts
