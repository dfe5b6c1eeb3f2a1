"""Reading and writing lakehouse tables.

Writes are idempotent: ``merge`` upserts on the table key (rows whose content is unchanged are
not rewritten, so a re-run commits nothing new) and ``replace_where`` atomically replaces one
version (``vocab_version = '…'``) of a versioned table. Every write is checked against the
table's declaration in ``schemas/`` first.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

from catalog2vec import layout, names, storage
from catalog2vec.errors import MissingInput
from catalog2vec.lakehouse.table import SchemaMismatchError, TableSpec, check_spark_schema, same_type

if TYPE_CHECKING:
    import deltalake
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

WriteMode = Literal["merge", "replace_where", "overwrite", "append"]
T = TypeVar("T")
log = logging.getLogger(__name__)

# Delta's optimistic-concurrency conflicts (and a concurrent first create of the table): the
# losing writer re-runs its (idempotent) write on the new table version
CONFLICTS = (
    "ConcurrentAppendException",
    "ConcurrentWriteException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "MetadataChangedException",
    "ProtocolChangedException",
    "DELTA_CONCURRENT_",
    "DELTA_METADATA_CHANGED",
    "DELTA_PROTOCOL_CHANGED",
    "DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION",
    "DELTA_TABLE_ALREADY_EXISTS",
    "TableAlreadyExistsException",
    "FileAlreadyExistsException",
)
MAX_ATTEMPTS = 8


class MissingTableError(MissingInput):
    """A table a job reads has not been written yet."""


def is_conflict(exc: BaseException, also: tuple[str, ...] = ()) -> bool:
    text = f"{type(exc).__name__}: {exc}"
    return any(c in text for c in (*CONFLICTS, *also))


_RETRIES: Counter[str] = Counter()


def retry_counts(reset: bool = False) -> dict[str, int]:
    """Retries this process made, per cause (``delta_conflict``): the job runner puts them in the
    run record (``retries``), so a run that rode out contention says so."""
    out = dict(sorted(_RETRIES.items()))
    if reset:
        _RETRIES.clear()
    return out


def with_conflict_retry(what: str, fn: Callable[[], T], attempts: int = MAX_ATTEMPTS,
                        also: tuple[str, ...] = ()) -> T:
    """Run ``fn`` (an idempotent Delta write); on a concurrency conflict wait with jittered
    exponential back-off and run it again, at most ``attempts`` times."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt == attempts or not is_conflict(exc, also):
                raise
            delay = min(8.0, 0.25 * 2 ** (attempt - 1)) * (0.5 + random.random())
            _RETRIES["delta_conflict"] += 1
            log.warning("%s: concurrent Delta commit (%s); retry %d/%d in %.1fs", what,
                        str(exc).splitlines()[0][:200], attempt, attempts - 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def table_path(root: str | os.PathLike[str], spec: TableSpec | str) -> str:
    """``<root>/<layer>/<table>`` as Spark opens it: absolute for local paths, ``s3a://`` for S3."""
    rel = spec.relpath if isinstance(spec, TableSpec) else spec.replace(".", "/", 1)
    return storage.to_spark_uri(layout.table_dir(root, rel))


def table_exists(root: str | os.PathLike[str], spec: TableSpec | str) -> bool:
    return storage.exists(storage.join(table_path(root, spec), "_delta_log"))


def open_delta(root: str | os.PathLike[str], spec: TableSpec | str, version: int | None = None) -> deltalake.DeltaTable:
    """The table as a delta-rs ``DeltaTable`` (no JVM), with the storage options of the lakehouse."""
    from deltalake import DeltaTable

    path = table_path(root, spec)
    if not table_exists(root, spec):
        name = spec.qualified_name if isinstance(spec, TableSpec) else spec
        raise FileNotFoundError(f"table {name} does not exist at {path}; run the job that writes it first")
    return DeltaTable(storage.to_object_uri(path), version=version, storage_options=delta_storage_options(root))


def delta_storage_options(root: str | os.PathLike[str]) -> dict[str, str] | None:
    """delta-rs ``storage_options`` for tables under ``root`` (None on local disk)."""
    if storage.scheme(root) in storage.S3_SCHEMES:
        return storage.s3_settings().delta_rs_options()
    return None


def conform(df: DataFrame, spec: TableSpec) -> DataFrame:
    """Check ``df`` against the declaration and return it with the declared column order.

    Non-nullable declared columns must hold no nulls in the data: checked on write by Delta's
    NOT NULL constraint (created with the table).
    """
    check_spark_schema(spec, df.schema)
    return df.select(*spec.column_names)


def ensure_table(spark: SparkSession, root: str | os.PathLike[str], spec: TableSpec) -> str:
    """Create the Delta table as declared (schema with NOT NULL constraints and column comments,
    partitioning, table comment, properties) if absent; an existing table is brought up to its
    declaration by :func:`migrate_table` (new nullable columns, changed properties). Every writer
    calls this before writing, so a declaration change reaches the table on the next write."""
    from delta.tables import DeltaTable

    path = table_path(root, spec)

    def ensure() -> None:
        if table_exists(root, spec):
            migrate_table(spark, root, spec)
            return
        builder = DeltaTable.createIfNotExists(spark).location(path)
        for col, field in zip(spec.columns, spec.spark_schema().fields, strict=True):
            builder = builder.addColumn(col.name, field.dataType, nullable=col.nullable, comment=col.doc or None)
        if spec.partition_by:
            builder = builder.partitionedBy(*spec.partition_by)
        if spec.doc:
            builder = builder.comment(spec.doc)
        for key, value in spec.properties.items():
            builder = builder.property(key, value)
        builder.execute()

    # a table another writer is creating right now has a _delta_log without its first commit yet
    with_conflict_retry(f"create {spec.qualified_name}", ensure,
                        also=("DELTA_MISSING_DELTA_TABLE", "is not a Delta table", "DELTA_EMPTY_DIRECTORY"))
    return path


@dataclass(frozen=True)
class Migration:
    """What :func:`migrate_table` changed (or found) on an existing table."""

    added_columns: tuple[str, ...] = ()
    set_properties: tuple[tuple[str, str], ...] = ()
    partitioning: tuple[str, ...] | None = None  # the table's, when it differs from the declaration

    @property
    def changed(self) -> bool:
        return bool(self.added_columns or self.set_properties)


def migrate_table(spark: SparkSession, root: str | os.PathLike[str], spec: TableSpec) -> Migration:
    """Bring an existing table up to its declaration in ``schemas/`` — additive changes only.

    * a declared column the table lacks is added with ``ALTER TABLE … ADD COLUMNS`` at its
      declared position, with its comment; it must be nullable (rows written before read null);
    * a declared property whose value differs is set with ``ALTER TABLE … SET TBLPROPERTIES``.

    Nothing is committed when the table already matches, so calling this before every write is
    idempotent. A change that is not additive — a column dropped from or retyped in the
    declaration, a new NOT NULL column — raises :class:`SchemaMismatchError`: it needs a rewrite
    of the table, not a migration. A partitioning that differs from the declaration (a table
    created before ``partition_by`` was declared) is logged and returned; ``maintain_tables
    --repartition`` rewrites such tables.
    """
    from delta.tables import DeltaTable

    path = table_path(root, spec)
    table = DeltaTable.forPath(spark, path)
    detail = table.detail().collect()[0]
    current = {f.name: f for f in table.toDF().schema.fields}
    declared = {f.name: f for f in spec.spark_schema().fields}
    problems = [f"the table has column {name!r}, which the declaration dropped" for name in current.keys() - declared.keys()]
    problems += [
        f"column {name!r} is {current[name].dataType.simpleString()} in the table, declared "
        f"{declared[name].dataType.simpleString()}"
        for name in current.keys() & declared.keys()
        if not same_type(current[name].dataType, declared[name].dataType)
    ]
    missing = [c for c in spec.columns if c.name not in current]
    problems += [f"new column {c.name!r} is declared NOT NULL (add it as nullable)" for c in missing if not c.nullable]
    if problems:
        raise SchemaMismatchError(
            f"{spec.qualified_name} at {path}: not an additive migration: " + "; ".join(sorted(problems))
        )
    target = f"delta.`{path}`"
    columns = spec.column_names
    for col in missing:
        i = columns.index(col.name)
        where = "FIRST" if i == 0 else f"AFTER `{columns[i - 1]}`"
        comment = f" COMMENT {names.spark_literal(col.doc)}" if col.doc else ""
        spark.sql(
            f"ALTER TABLE {target} ADD COLUMNS (`{col.name}` {declared[col.name].dataType.simpleString()}{comment} {where})"
        )
        log.info("%s: added column %s (%s)", spec.qualified_name, col.name, where)
    have = dict(detail.properties or {})
    changed = tuple((k, v) for k, v in spec.properties.items() if have.get(k) != v)
    if changed:
        assignments = ", ".join(f"{names.spark_literal(k)} = {names.spark_literal(v)}" for k, v in changed)
        spark.sql(f"ALTER TABLE {target} SET TBLPROPERTIES ({assignments})")
        log.info("%s: set properties %s", spec.qualified_name, dict(changed))
    partitioning = tuple(detail.partitionColumns or ())
    if partitioning != spec.partition_by:
        log.warning(
            "%s is partitioned by %s, declared %s: run maintain_tables --repartition to rewrite it",
            spec.qualified_name, list(partitioning), list(spec.partition_by),
        )
    return Migration(
        added_columns=tuple(c.name for c in missing),
        set_properties=changed,
        partitioning=partitioning if partitioning != spec.partition_by else None,
    )


def _unchanged_condition(spec: TableSpec, t: str = "t", s: str = "s") -> str:
    parts = []
    for col in spec.columns:
        if col.name in spec.key or col.name in ("run_id", "ingested_at", "quarantined_at"):
            continue
        if col.type.startswith("map<"):
            parts.append(f"to_json({t}.`{col.name}`) <=> to_json({s}.`{col.name}`)")
        else:
            parts.append(f"{t}.`{col.name}` <=> {s}.`{col.name}`")
    return " AND ".join(parts) if parts else "true"


def write_table(
    spark: SparkSession,
    df: DataFrame,
    spec: TableSpec,
    root: str | os.PathLike[str],
    mode: WriteMode = "merge",
    version: str | None = None,
    update_if: str | None = None,
) -> str:
    """Write ``df`` to ``spec``'s table under ``root``; returns the table path.

    * ``merge``: upsert on ``spec.key``; rows identical except for lineage columns (run_id,
      ingested_at) are left untouched, so re-running with the same input commits no change.
      ``update_if`` (SQL over aliases ``t`` = table, ``s`` = source) further restricts which
      matched rows are updated, e.g. ``"s.crawled_at >= t.crawled_at"``.
    * ``replace_where``: replace exactly the rows of ``spec.version_column == version``.
    * ``overwrite`` / ``append``: plain Delta writes (still schema-checked).
    """
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    df = conform(df, spec)
    path = ensure_table(spark, root, spec)
    if mode == "merge":
        dupes = df.groupBy(*spec.key).count().where(F.col("count") > 1).limit(1).collect()
        if dupes:
            raise ValueError(f"{spec.qualified_name}: source rows are not unique on key {spec.key}: {dupes[0]}")
        cond = " AND ".join(f"t.`{k}` = s.`{k}`" for k in spec.key)
        update = f"NOT ({_unchanged_condition(spec)})" + (f" AND ({update_if})" if update_if else "")

        def merge() -> None:
            target = spark.read.format("delta").load(path)
            todo = df.alias("s").join(target.alias("t"), F.expr(cond), "left").where(
                F.expr(f"t.`{spec.key[0]}` IS NULL OR ({update})")
            )
            if not todo.limit(1).collect():
                return  # nothing would change: commit nothing (a re-run adds no table version)
            (
                DeltaTable.forPath(spark, path)
                .alias("t")
                .merge(df.alias("s"), cond)
                .whenMatchedUpdateAll(condition=update)
                .whenNotMatchedInsertAll()
                .execute()
            )

        with_conflict_retry(f"merge into {spec.qualified_name}", merge)
    elif mode == "replace_where":
        if not spec.version_column or version is None:
            raise ValueError(f"{spec.qualified_name}: replace_where needs a version column and a version")
        names.validate_name(version, spec.version_column)  # before any Spark work
        bad = df.where(F.col(spec.version_column) != F.lit(version)).limit(1).count()
        if bad:
            raise ValueError(f"{spec.qualified_name}: rows with {spec.version_column} != {version!r}")
        # the predicate is a string option: the version is a validated name (no quote, no
        # backslash can reach it), and the literal still goes through Spark's own escaping rule
        predicate = f"`{spec.version_column}` = {names.spark_literal(version)}"
        if _same_rows(spark, df, path, spec, predicate):
            return path  # the version already holds exactly these rows: commit nothing
        with_conflict_retry(
            f"replace {spec.qualified_name} {version}",
            lambda: df.write.format("delta").mode("overwrite").option("replaceWhere", predicate).save(path),
        )
    elif mode == "overwrite":
        with_conflict_retry(f"overwrite {spec.qualified_name}", lambda: df.write.format("delta").mode(mode).save(path))
    elif mode == "append":  # not idempotent: a conflict is not retried (it could append twice)
        df.write.format("delta").mode(mode).save(path)
    else:  # pragma: no cover
        raise ValueError(f"unknown write mode {mode!r}")
    return path


LINEAGE_COLUMNS = ("run_id", "ingested_at", "quarantined_at", "created_at")


def _same_rows(spark: SparkSession, df: DataFrame, path: str, spec: TableSpec, where: str) -> bool:
    """True when the table's rows matching ``where`` equal ``df`` (lineage columns aside)."""
    cols = [c.name for c in spec.columns if c.name not in LINEAGE_COLUMNS and not c.type.startswith("map<")]
    old = spark.read.format("delta").load(path).where(where).select(*cols)
    new = df.select(*cols)
    return bool(old.count() == new.count() and new.exceptAll(old).isEmpty() and old.exceptAll(new).isEmpty())


def read_table(spark: SparkSession, root: str | os.PathLike[str], spec: TableSpec | str, version: int | None = None) -> DataFrame:
    """Read a table as a Spark DataFrame (optionally a past Delta version: time travel)."""
    path = table_path(root, spec)
    if not table_exists(root, spec):
        name = spec.qualified_name if isinstance(spec, TableSpec) else spec
        raise MissingTableError(f"table {name} does not exist at {path}; run the job that writes it first")
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path)


def delta_version(root: str | os.PathLike[str], spec: TableSpec | str) -> int:
    """Current Delta commit version of a table (delta-rs, no JVM)."""
    return int(open_delta(root, spec).version())


__all__ = [
    "Migration",
    "MissingTableError",
    "SchemaMismatchError",
    "conform",
    "delta_storage_options",
    "delta_version",
    "ensure_table",
    "migrate_table",
    "open_delta",
    "read_table",
    "table_exists",
    "table_path",
    "write_table",
]
