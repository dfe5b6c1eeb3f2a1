"""Delta upkeep of the lakehouse tables: compaction (OPTIMIZE), Z-ordering, VACUUM.

Daily MERGEs and ``replaceWhere`` rewrites leave many small files and, for every rewritten file,
a tombstone whose data file stays on storage until VACUUM removes it. :func:`maintain_tables`
(the weekly ``maintain_tables`` job) does, per existing declared table:

1. ``OPTIMIZE``: bin-packs small files (``DeltaTable.optimize().executeCompaction()``), or
   ``executeZOrderBy(*spec.zorder_by)`` for tables that declare Z-order columns (silver/images by
   item_id: a lookup of a few images then reads only the files whose item_id range holds them);
2. ``VACUUM`` with the table's declared ``delta.deletedFileRetentionDuration`` (``schemas/``;
   applied to the table first, since Delta 4 VACUUMs by the table property and ignores an
   explicit ``RETAIN`` other than 0 hours): data files no snapshot within that horizon references
   are deleted; time travel to versions inside the horizon keeps working;
3. optionally (``repartition=True``) rewrites a table whose physical partitioning differs from its
   declaration (created before ``partition_by`` was declared) — one full rewrite, in one commit.

With ``min_interval_days`` a table whose last OPTIMIZE / VACUUM is more recent is skipped, so the
job can run daily and still touch each table only that often. Compaction and VACUUM never change
table content, so re-runs (Airflow retries) are safe.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from catalog2vec.lakehouse.io import migrate_table, table_exists, table_path, with_conflict_retry
from catalog2vec.lakehouse.table import TableSpec

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

MAINTENANCE_OPERATIONS = ("OPTIMIZE", "VACUUM END")


@dataclass(frozen=True)
class TableUpkeep:
    """What :func:`maintain_tables` did to one table."""

    table: str
    skipped: str = ""  # why the table was left alone ("" = maintained)
    files_before: int = 0
    files_after: int = 0
    files_compacted: int = 0  # small files OPTIMIZE replaced
    files_written: int = 0  # files OPTIMIZE wrote in their place
    zorder_by: tuple[str, ...] = ()
    vacuumed_files: int = 0  # data files VACUUM deleted from storage
    retention_hours: float | None = None
    repartitioned: bool = False

    def line(self) -> str:
        if self.skipped:
            return f"{self.table}: skipped ({self.skipped})"
        how = f"zorder by {','.join(self.zorder_by)}" if self.zorder_by else "compaction"
        return (
            f"{self.table}: files {self.files_before} -> {self.files_after} ({how}: {self.files_compacted} "
            f"-> {self.files_written}); vacuum removed {self.vacuumed_files} files older than "
            f"{self.retention_hours if self.retention_hours is not None else 'the default'} h"
            + ("; repartitioned" if self.repartitioned else "")
        )


def last_maintained(spark: SparkSession, path: str) -> datetime | None:
    """Time of the table's last OPTIMIZE or VACUUM commit (``None`` if never)."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    rows = (
        DeltaTable.forPath(spark, path).history()
        .where(F.col("operation").isin(*MAINTENANCE_OPERATIONS))
        .agg(F.max("timestamp").alias("t"))
        .collect()
    )
    when = rows[0]["t"] if rows else None
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _num_files(spark: SparkSession, path: str) -> int:
    from delta.tables import DeltaTable

    return int(DeltaTable.forPath(spark, path).detail().collect()[0]["numFiles"] or 0)


def _vacuumed(spark: SparkSession, path: str) -> int:
    """``numDeletedFiles`` of the VACUUM END commit just made (0 when VACUUM logged nothing)."""
    from delta.tables import DeltaTable

    last = DeltaTable.forPath(spark, path).history(1).collect()[0]
    metrics: dict[str, Any] = last["operationMetrics"] or {}
    return int(metrics.get("numDeletedFiles", 0)) if last["operation"] == "VACUUM END" else 0


def repartition_table(spark: SparkSession, path: str, spec: TableSpec) -> None:
    """Rewrite the table at ``path`` with the declared partitioning, content unchanged (one commit)."""
    df = spark.read.format("delta").load(path)
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if spec.partition_by:
        writer = writer.partitionBy(*spec.partition_by)
    writer.save(path)


def maintain_table(
    spark: SparkSession,
    root: str | os.PathLike[str],
    spec: TableSpec,
    *,
    optimize: bool = True,
    zorder: bool = True,
    vacuum: bool = True,
    repartition: bool = False,
    min_interval_days: float = 0.0,
    now: datetime | None = None,
) -> TableUpkeep:
    """OPTIMIZE (compaction or Z-order), VACUUM and optionally repartition one table."""
    from delta.tables import DeltaTable

    name = spec.qualified_name
    if not table_exists(root, spec):
        return TableUpkeep(name, skipped="no table")
    path = table_path(root, spec)
    if min_interval_days > 0:
        last = last_maintained(spark, path)
        now = now or datetime.now(UTC)
        if last is not None and now - last < timedelta(days=min_interval_days):
            return TableUpkeep(name, skipped=f"maintained {last:%Y-%m-%d %H:%M} UTC, < {min_interval_days:g} days ago")
    migrate_table(spark, root, spec)  # the declared properties (the VACUUM horizon) are in force first
    before = _num_files(spark, path)
    repartitioned = False
    if repartition:
        partitioning = tuple(DeltaTable.forPath(spark, path).detail().collect()[0]["partitionColumns"] or ())
        if partitioning != spec.partition_by:
            log.info("%s: repartitioning %s -> %s", name, list(partitioning), list(spec.partition_by))
            repartition_table(spark, path, spec)
            repartitioned = True
    compacted = written = 0
    zcols = spec.zorder_by if zorder else ()
    if optimize:

        def run_optimize() -> Any:
            builder = DeltaTable.forPath(spark, path).optimize()
            return (builder.executeZOrderBy(*zcols) if zcols else builder.executeCompaction()).collect()

        # a writer committing to the same files meanwhile (embed's MERGE) makes OPTIMIZE conflict:
        # compaction of the then-current files is idempotent, so it is retried like a MERGE is
        metrics = with_conflict_retry(f"optimize {name}", run_optimize)[0]["metrics"]
        compacted, written = int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"])
    hours = spec.deleted_file_retention_hours
    vacuumed = 0
    if vacuum:
        # the horizon is the table's delta.deletedFileRetentionDuration, set from the declaration by
        # migrate_table above (Delta 4 ignores an explicit RETAIN other than 0 hours)
        DeltaTable.forPath(spark, path).vacuum()
        vacuumed = _vacuumed(spark, path)
    return TableUpkeep(
        name,
        files_before=before,
        files_after=_num_files(spark, path),
        files_compacted=compacted,
        files_written=written,
        zorder_by=zcols if optimize else (),
        vacuumed_files=vacuumed,
        retention_hours=hours,
        repartitioned=repartitioned,
    )


def maintain_tables(
    spark: SparkSession,
    root: str | os.PathLike[str],
    specs: Iterable[TableSpec] | None = None,
    **options: Any,
) -> list[TableUpkeep]:
    """:func:`maintain_table` on every declared table (or ``specs``) that exists under ``root``.

    >>> for r in maintain_tables(spark, "lakehouse", min_interval_days=6.5):
    ...     print(r.line())
    """
    from catalog2vec.schemas import TABLES

    results = []
    for spec in specs if specs is not None else TABLES.values():
        result = maintain_table(spark, root, spec, **options)
        if result.skipped != "no table":
            log.info("%s", result.line())
        results.append(result)
    return results


__all__ = ["TableUpkeep", "last_maintained", "maintain_table", "maintain_tables", "repartition_table"]
