"""Crawled catalog files → ``bronze/catalog_items`` (+ ``bronze/quarantine``).

Reader (CSV / JSON lines / Parquet bytes, every value kept as text) → the pure per-record parser
and checks of :mod:`catalog2vec.ingest.formats` and :mod:`~catalog2vec.ingest.canonical` (inside
``mapInPandas``: one bad record becomes a quarantine row, never a failed job) → writer (dedupe on
item_id, latest crawled_at wins, MERGE).
Accounting: ``read = written + quarantined + duplicates``. The job fails (one line, exit 2) only
for whole-input problems: no input file, an input file over ``ingest.max_file_bytes``, no record
at all, no readable record at all, a mapping naming a column no record has, an unwritable
lakehouse (checked before any input is read).
"""

from __future__ import annotations

import glob as globlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalog2vec import layout, storage
from catalog2vec.config import Config
from catalog2vec.errors import InvalidInput, MissingInput
from catalog2vec.ingest import canonical, formats, image_paths
from catalog2vec.lakehouse import write_table
from catalog2vec.quality import MAX_RECORD_CHARS, JobCounts, Reason, write_quarantine
from catalog2vec.schemas import bronze

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame, SparkSession

MAX_RECORD_BYTES = 4 * MAX_RECORD_CHARS  # raw bytes kept per quarantined record

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
FORMATS = formats.FORMATS


class IngestError(InvalidInput):
    """Invalid job arguments or unusable input as a whole (bad mapping, unknown format, no
    input files, no readable record)."""


class NoInputError(IngestError, MissingInput):
    """No input file matches."""


@dataclass(frozen=True)
class IngestCounts(JobCounts):
    JOB = "ingest"
    read: int
    written: int
    quarantined: int
    duplicates: int

    def balances(self) -> tuple[tuple[int, int], ...]:
        return ((self.read, self.written + self.quarantined + self.duplicates),)


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
        raise NoInputError(f"no input files match {input_path!r}")
    return [str(Path(f).resolve()) for f in files]


def input_base_dir(input_path: str) -> str:
    """The directory relative image templates resolve against: the glob's fixed prefix."""
    if "://" in input_path:
        return input_path.rsplit("/", 1)[0]
    fixed = re.split(r"[*?\[]", input_path, maxsplit=1)[0]
    if fixed.endswith("/") or (fixed == input_path and Path(fixed).is_dir()):
        return str(Path(fixed).resolve())
    return str(Path(fixed).parent.resolve())


def text_column(df: DataFrame, name: str) -> Column:
    """Column ``name`` of ``df`` as text: strings as they are, nested values as JSON, the rest cast."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    dtype, col = df.schema[name].dataType, F.col(f"`{name}`")
    if isinstance(dtype, T.StringType):
        return col
    if isinstance(dtype, (T.StructType, T.ArrayType, T.MapType)):
        return F.to_json(col)
    return col.cast("string")


def read_source(spark: SparkSession, files: list[str], fmt: str) -> DataFrame:
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

    def as_text(name: str) -> Column:
        return text_column(df, name)

    return df.select(
        *[as_text(c).alias(c) for c in df.columns if c != CORRUPT],
        F.col(CORRUPT),
        F.col("_metadata.file_path").alias("_file"),
        F.col("_metadata.file_modification_time").alias("_file_mtime"),
    )


PARSED_SCHEMA = (
    "item_id string, title string, description string, category string, brand string, color string, "
    "gender string, image_uri string, url string, crawled_at string, extra map<string,string>, "
    "_keys array<string>, _file string, _mtime_us long, _record string, _record_bytes binary, "
    "_reason string, _detail string"
)


def _rows_to_pandas(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    names = [c.split()[0] for c in PARSED_SCHEMA.split(", ")]
    df = pd.DataFrame(rows, columns=names)
    df["_mtime_us"] = df["_mtime_us"].astype("Int64")
    return df


def _finish(rec: formats.Record, file: str, mtime_us: Any, rules: canonical.CanonicalRules) -> dict[str, Any]:
    """Canonicalise one record; any failure of the record's own becomes a quarantine reason."""
    try:
        row = canonical.canonical_row(rec, CANONICAL, rules)
    except Exception as exc:
        row = dict.fromkeys(CANONICAL)
        row.update(extra=None, _keys=None, _reason=Reason.MALFORMED_RECORD.value,
                   _detail=f"{type(exc).__name__}: {exc}"[:500])
    row["_file"], row["_mtime_us"] = file, None if mtime_us is None else int(mtime_us)
    if row["_reason"] is not None:
        row["_record"] = formats.raw_text(rec.raw[: MAX_RECORD_BYTES])
        row["_record_bytes"] = formats.raw_bytes_if_not_utf8(rec.raw[: MAX_RECORD_BYTES])
        row["extra"] = None
    else:
        row["_record"] = row["_record_bytes"] = None
    return row


def _file_sizes(target: str) -> Iterator[tuple[str, int]]:
    """(file, bytes) of every input file ``target`` stands for: itself, a directory's files, a URI
    glob's matches — from listings only, nothing is read."""
    if storage.is_local(target):
        if os.path.isdir(target):
            for d, _, names in os.walk(target):
                for name in names:
                    yield os.path.join(d, name), os.path.getsize(os.path.join(d, name))
        else:
            yield target, os.path.getsize(target)
        return
    fs, p = storage.filesystem(target)
    try:
        if globlib.has_magic(p):
            found = {m: fs.info(m) for m in fs.glob(p)}
        elif fs.isdir(p):
            found = fs.find(p, detail=True)
        else:
            found = {p: fs.info(p)}
    except FileNotFoundError as exc:
        raise NoInputError(f"no input files match {target!r}") from exc
    for name, info in found.items():
        yield f"{storage.scheme(target)}://{str(name).split('://', 1)[-1].lstrip('/')}", int(info.get("size") or 0)


def check_file_sizes(files: list[str], max_bytes: int) -> None:
    """Raise :class:`IngestError` naming the first input file over ``max_bytes`` bytes
    (``ingest.max_file_bytes``): CSV and Parquet files are parsed whole per task."""
    for target in files:
        for name, size in _file_sizes(target):
            if size > max_bytes:
                raise IngestError(f"input file {name} has {size} bytes, over ingest.max_file_bytes={max_bytes}; "
                                  "split it into smaller files")


def read_records(spark: SparkSession, files: list[str], fmt: str, rules: canonical.CanonicalRules,
                 bounds: formats.Bounds = formats.DEFAULT_BOUNDS) -> DataFrame:
    """Every record of the input as one row of :data:`PARSED_SCHEMA` (canonical columns, or
    ``_reason``/``_detail`` and the raw record): JSON lines split by Spark's text reader (raw
    bytes, any file size, split across tasks); CSV and Parquet files parsed whole per task."""
    from pyspark.sql import functions as F

    if fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r}; choose from {FORMATS}")
    uris = [storage.to_spark_uri(f) for f in files]
    if fmt == "json":
        src = spark.read.text(uris).select(
            F.col("value").cast("binary").alias("data"),
            F.col("_metadata.file_path").alias("file"),
            F.unix_micros(F.col("_metadata.file_modification_time")).alias("mtime_us"),
        )

        def parse(batches: Iterator[Any]) -> Iterator[Any]:
            for pdf in batches:
                out = []
                for data, file, mtime in zip(pdf["data"], pdf["file"], pdf["mtime_us"], strict=True):
                    rec = formats.parse_json_line(bytes(data), bounds=bounds)
                    if rec is not None:
                        out.append(_finish(rec, file, mtime, rules))
                yield _rows_to_pandas(out)
    else:
        src = spark.read.format("binaryFile").load(uris).select(
            F.col("content").alias("data"), F.col("path").alias("file"),
            F.unix_micros(F.col("modificationTime")).alias("mtime_us"),
        )

        def parse(batches: Iterator[Any]) -> Iterator[Any]:
            for pdf in batches:
                for data, file, mtime in zip(pdf["data"], pdf["file"], pdf["mtime_us"], strict=True):
                    out = [_finish(rec, file, mtime, rules) for rec in formats.iter_records(bytes(data), fmt, bounds)]
                    yield _rows_to_pandas(out)

    return src.mapInPandas(parse, PARSED_SCHEMA)


def dedupe_latest(df: DataFrame) -> DataFrame:
    """One row per item_id: latest crawled_at wins; ties broken by content hash (deterministic)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("item_id").orderBy(F.col("crawled_at").desc_nulls_last(), F.col("record_sha256").desc())
    return df.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")


def _rules(cfg: Config, input_path: str, mapping: dict[str, str] | None,
           image_template: str | None) -> canonical.CanonicalRules:
    """The per-record rules of this ingest (mapping, id policy, where image paths may point)."""
    if image_template:
        for name in image_paths.template_fields(image_template):
            if name not in CANONICAL:
                raise IngestError(f"image template field {{{name}}} is not a canonical column")
    return canonical.CanonicalRules(
        mapping=dict(mapping or {}),
        image_template=image_template,
        base_dir=input_base_dir(input_path),
        images=image_paths.ImagePolicy.from_config(cfg.ingest, cfg.lakehouse),
        max_field_chars=cfg.ingest.max_field_chars,
        max_record_chars=cfg.ingest.max_record_chars,
        ids=canonical.IdPolicy(cfg.ingest.max_id_chars),
    )


def bounds(cfg: Config) -> formats.Bounds:
    """The per-record size bounds of ``[ingest]``."""
    return formats.Bounds(max_record_chars=cfg.ingest.max_record_chars, max_json_depth=cfg.ingest.max_json_depth)


def _quarantine_rejects(spark: SparkSession, cfg: Config, checked: DataFrame) -> int:
    """Every record the checks rejected → bronze/quarantine (raw bytes kept); returns how many."""
    from pyspark.sql import functions as F

    bad = checked.where(F.col("_reason").isNotNull()).select(
        F.col("source"),
        F.col("_record").alias("record"),
        F.col("_record_bytes").alias("record_bytes"),
        F.col("item_id"),
        F.col("_reason").alias("reason"),
        F.col("_detail").alias("detail"),
    )
    return write_quarantine(spark, bad, cfg.lakehouse, "ingest_catalog", cfg.run_id)


def _merge_latest(spark: SparkSession, cfg: Config, checked: DataFrame) -> tuple[int, int]:
    """The accepted records, latest crawl per item_id, MERGEd into bronze/catalog_items (a row is
    updated only by a crawl at least as new); returns (accepted records, items written)."""
    from pyspark.sql import functions as F

    crawled = F.coalesce(F.expr("try_cast(crawled_at AS timestamp)"), F.timestamp_micros(F.col("_mtime_us")))
    good = checked.where(F.col("_reason").isNull()).withColumn("crawled_at", crawled)
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
        write_table(spark, latest, bronze.CATALOG_ITEMS, cfg.lakehouse, mode="merge",
                    update_if="t.crawled_at IS NULL OR s.crawled_at >= t.crawled_at")
    latest.unpersist()
    return n_good, n_written


def ingest_catalog(
    spark: SparkSession,
    cfg: Config,
    input_path: str,
    fmt: str,
    mapping: dict[str, str] | None = None,
    source: str | None = None,
    image_template: str | None = None,
) -> IngestCounts:
    """Run the whole ingest; returns the counts (which add up, or this raises)."""
    from pyspark.sql import functions as F

    storage.check_writable(cfg.lakehouse, layout.runs_dir(cfg.lakehouse))  # one clear error before any input is read
    files = resolve_inputs(input_path)
    if not source:
        source = files[0].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    rules = _rules(cfg, input_path, mapping, image_template)
    check_file_sizes(files, cfg.ingest.max_file_bytes)
    checked = read_records(spark, files, fmt, rules, bounds(cfg)).withColumn("source", F.lit(source)).cache()
    try:
        n_read = checked.count()
        if n_read == 0:
            raise IngestError(f"no record in {input_path} ({len(files)} file(s), all empty)")
        keys = {r[0] for r in checked.select(F.explode("_keys")).distinct().collect()}
        missing = sorted(src for src in (mapping or {}) if src not in keys)
        if keys and missing:
            raise IngestError(f"mapping source column(s) {missing} not in input columns {sorted(keys)}")
        n_bad = _quarantine_rejects(spark, cfg, checked)
        if n_bad == n_read and not keys:
            raise IngestError(f"no readable record in {input_path}: all {n_read} quarantined (see bronze/quarantine)")
        n_good, n_written = _merge_latest(spark, cfg, checked)
    finally:
        checked.unpersist()
    counts = IngestCounts(read=n_read, written=n_written, quarantined=n_bad, duplicates=n_good - n_written)
    counts.check()
    return counts
