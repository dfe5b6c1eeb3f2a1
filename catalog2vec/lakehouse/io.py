"""Reading and writing lakehouse tables.

Writes are idempotent: ``merge`` upserts on the table key (rows whose content is unchanged are
not rewritten, so a re-run commits nothing new) and ``replace_where`` atomically replaces one
version (``vocab_version = '…'``) of a versioned table. Every write is checked against the
table's declaration in ``schemas/`` first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from catalog2vec.lakehouse.table import SchemaMismatchError, TableSpec, check_spark_schema

WriteMode = Literal["merge", "replace_where", "overwrite", "append"]


def table_path(root: str | os.PathLike[str], spec: TableSpec | str) -> str:
    """``<root>/<layer>/<table>`` — absolute for local paths, unchanged for URIs."""
    rel = spec.relpath if isinstance(spec, TableSpec) else spec.replace(".", "/", 1)
    root_s = str(root)
    if "://" in root_s:
        return f"{root_s.rstrip('/')}/{rel}"
    return str(Path(root_s).resolve() / rel)


def table_exists(root: str | os.PathLike[str], spec: TableSpec | str) -> bool:
    path = table_path(root, spec)
    if "://" in path:
        from deltalake import DeltaTable

        return bool(DeltaTable.is_deltatable(path))
    return (Path(path) / "_delta_log").is_dir()


def conform(df: Any, spec: TableSpec) -> Any:
    """Check ``df`` against the declaration and return it with the declared column order.

    Non-nullable declared columns must hold no nulls in the data: checked on write by Delta's
    NOT NULL constraint (created with the table).
    """
    check_spark_schema(spec, df.schema)
    return df.select(*spec.column_names)


def ensure_table(spark: Any, root: str | os.PathLike[str], spec: TableSpec) -> str:
    """Create the Delta table with its declared schema (NOT NULL constraints included) if absent."""
    from delta.tables import DeltaTable

    path = table_path(root, spec)
    builder = DeltaTable.createIfNotExists(spark).location(path)
    for col, field in zip(spec.columns, spec.spark_schema().fields, strict=True):
        builder = builder.addColumn(col.name, field.dataType, nullable=col.nullable, comment=col.doc or None)
    if spec.partition_by:
        builder = builder.partitionedBy(*spec.partition_by)
    if spec.doc:
        builder = builder.comment(spec.doc)
    builder.execute()
    return path


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
    spark: Any,
    df: Any,
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
        (
            DeltaTable.forPath(spark, path)
            .alias("t")
            .merge(df.alias("s"), cond)
            .whenMatchedUpdateAll(
                condition=f"NOT ({_unchanged_condition(spec)})" + (f" AND ({update_if})" if update_if else "")
            )
            .whenNotMatchedInsertAll()
            .execute()
        )
    elif mode == "replace_where":
        if not spec.version_column or version is None:
            raise ValueError(f"{spec.qualified_name}: replace_where needs a version column and a version")
        bad = df.where(F.col(spec.version_column) != F.lit(version)).limit(1).count()
        if bad:
            raise ValueError(f"{spec.qualified_name}: rows with {spec.version_column} != {version!r}")
        escaped = version.replace("'", "''")
        (
            df.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", f"{spec.version_column} = '{escaped}'")
            .save(path)
        )
    elif mode in ("overwrite", "append"):
        df.write.format("delta").mode(mode).save(path)
    else:  # pragma: no cover
        raise ValueError(f"unknown write mode {mode!r}")
    return path


def read_table(spark: Any, root: str | os.PathLike[str], spec: TableSpec | str, version: int | None = None) -> Any:
    """Read a table as a Spark DataFrame (optionally a past Delta version: time travel)."""
    path = table_path(root, spec)
    if not table_exists(root, spec):
        name = spec.qualified_name if isinstance(spec, TableSpec) else spec
        raise FileNotFoundError(f"table {name} does not exist at {path}; run the job that writes it first")
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path)


def delta_version(root: str | os.PathLike[str], spec: TableSpec | str) -> int:
    """Current Delta commit version of a table (delta-rs, no JVM)."""
    from deltalake import DeltaTable

    return int(DeltaTable(table_path(root, spec)).version())


__all__ = [
    "SchemaMismatchError",
    "conform",
    "delta_version",
    "ensure_table",
    "read_table",
    "table_exists",
    "table_path",
    "write_table",
]
