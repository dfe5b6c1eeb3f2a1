"""Delta upkeep on real local Spark + Delta: declared partitioning and table properties reach the
Delta log, an additive schema migration (new nullable column → ALTER TABLE ADD COLUMNS) applied
by the writer, OPTIMIZE compaction, VACUUM removing files past the declared retention, and the
one-time repartition of a table created before its partitioning was declared."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from catalog2vec.lakehouse import (
    SchemaMismatchError,
    delta_version,
    migrate_table,
    read_table,
    table_path,
    write_table,
)
from catalog2vec.lakehouse.maintenance import maintain_table
from catalog2vec.lakehouse.table import Column, TableSpec
from catalog2vec.schemas import gold, properties

SPEC = TableSpec(
    layer="gold",
    name="upkeep_probe",
    doc="test table",
    key=("model_version", "item_id"),
    version_column="model_version",
    partition_by=("model_version",),
    properties=properties.GOLD,
    columns=(
        Column("model_version", "string", False),
        Column("item_id", "string", False),
        Column("score", "float", False, "a score"),
    ),
)


def _metadata(path: str) -> dict[str, Any]:
    """The latest metaData action of the table's JSON commits."""
    meta: dict[str, Any] = {}
    for commit in sorted(Path(path, "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "metaData" in action:
                meta = action["metaData"]
    return meta


def _data_files(path: str) -> set[str]:
    return {str(p.relative_to(path)) for p in Path(path).rglob("*.parquet") if not p.relative_to(path).parts[0].startswith("_")}


def _rows(spark: Any, version: str, n: int, start: int = 0, spec: TableSpec = SPEC) -> Any:
    data = [(version, f"i{i:03d}", float(i)) for i in range(start, start + n)]
    df = spark.createDataFrame(data, "model_version string, item_id string, score float")
    extra = [c for c in spec.column_names if c not in df.columns]
    for name in extra:
        df = df.withColumn(name, df["score"].cast("double").cast(spec.spark_schema()[name].dataType))
    return df


def test_gold_tables_declare_partitioning_and_properties() -> None:
    for spec in (gold.ITEM_EMBEDDINGS, gold.ITEM_TAGS, gold.ITEM_TAG_PROBABILITIES):
        assert spec.partition_by == ("model_version",)
        assert spec.properties["delta.enableChangeDataFeed"] == "true"
        assert spec.deleted_file_retention_hours == 7 * 24


def test_partitioning_and_properties_are_in_the_delta_log(spark: Any, lakehouse: Path) -> None:
    write_table(spark, _rows(spark, "m1", 5), SPEC, lakehouse, mode="replace_where", version="m1")
    write_table(spark, _rows(spark, "m2", 5), SPEC, lakehouse, mode="replace_where", version="m2")
    path = table_path(lakehouse, SPEC)
    meta = _metadata(path)
    assert meta["partitionColumns"] == ["model_version"]
    assert {k: meta["configuration"][k] for k in SPEC.properties} == SPEC.properties
    assert meta["description"] == "test table"
    assert {p.name for p in Path(path).iterdir() if p.is_dir() and not p.name.startswith("_")} == {
        "model_version=m1", "model_version=m2"}
    # a re-write of the same declaration commits no metadata change (only the data write)
    v = delta_version(lakehouse, SPEC)
    assert not migrate_table(spark, lakehouse, SPEC).changed
    assert delta_version(lakehouse, SPEC) == v
    # the change data feed is on: the replaced version's rows show up as deletes
    write_table(spark, _rows(spark, "m1", 3), SPEC, lakehouse, mode="replace_where", version="m1")
    changes = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", v + 1)
               .load(path).groupBy("_change_type").count().collect())
    assert {r["_change_type"]: r["count"] for r in changes} == {"delete": 5, "insert": 3}


def test_additive_migration_adds_a_nullable_column_old_rows_read_null(spark: Any, lakehouse: Path) -> None:
    write_table(spark, _rows(spark, "m1", 4), SPEC, lakehouse, mode="merge")
    v2 = dataclasses.replace(
        SPEC,
        columns=(*SPEC.columns[:2], Column("quality", "double", True, "new in v2"), *SPEC.columns[2:]),
        properties={**SPEC.properties, "delta.logRetentionDuration": "interval 60 days"},
    )
    before = delta_version(lakehouse, SPEC)
    write_table(spark, _rows(spark, "m1", 2, start=10, spec=v2), v2, lakehouse, mode="merge")  # the writer migrates
    df = read_table(spark, lakehouse, v2)
    assert df.columns == ["model_version", "item_id", "quality", "score"]  # at its declared position
    rows = {r["item_id"]: r["quality"] for r in df.collect()}
    assert rows == {"i000": None, "i001": None, "i002": None, "i003": None, "i010": 10.0, "i011": 11.0}
    path = table_path(lakehouse, SPEC)
    assert _metadata(path)["configuration"]["delta.logRetentionDuration"] == "interval 60 days"
    comment = next(f for f in df.schema.fields if f.name == "quality").metadata.get("comment")
    assert comment == "new in v2"
    ops = [r["operation"] for r in spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()][::-1]
    assert ops[before + 1:] == ["ADD COLUMNS", "SET TBLPROPERTIES", "MERGE"]
    # migrating again is a no-op
    assert not migrate_table(spark, lakehouse, v2).changed

    not_null = dataclasses.replace(v2, columns=(*v2.columns, Column("must", "int", False)))
    with pytest.raises(SchemaMismatchError, match="'must' is declared NOT NULL"):
        migrate_table(spark, lakehouse, not_null)
    retyped = dataclasses.replace(v2, columns=(*v2.columns[:3], Column("score", "double", False)))
    with pytest.raises(SchemaMismatchError, match="'score' is float in the table, declared double"):
        migrate_table(spark, lakehouse, retyped)


def test_optimize_compacts_and_vacuum_removes_files_past_retention(spark: Any, lakehouse: Path) -> None:
    for start in range(0, 12, 3):  # four small appends into one partition
        write_table(spark, _rows(spark, "m1", 3, start=start), SPEC, lakehouse, mode="append")
    path = table_path(lakehouse, SPEC)
    appended = _data_files(path)
    assert len(appended) >= 4

    # declared 7 days: compaction runs, VACUUM keeps the replaced files (they are younger than 7 days)
    kept = maintain_table(spark, lakehouse, SPEC)
    assert kept.files_before == len(appended) and kept.files_after == 1 and kept.files_compacted == len(appended)
    assert kept.vacuumed_files == 0 and appended <= _data_files(path)

    # declared 0 hours (a test-only horizon; Delta refuses < 168 h unless the safety check is off)
    short = dataclasses.replace(SPEC, properties={**SPEC.properties, "delta.deletedFileRetentionDuration": "interval 0 hours"})
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        result = maintain_table(spark, lakehouse, short, optimize=False)
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    assert result.retention_hours == 0.0
    assert result.vacuumed_files == len(appended)
    remaining = _data_files(path)
    assert not (remaining & appended) and len(remaining) == 1
    assert _metadata(path)["configuration"]["delta.deletedFileRetentionDuration"] == "interval 0 hours"
    assert read_table(spark, lakehouse, short).count() == 12  # content unchanged
    with pytest.raises(Exception, match=r"(?i)beyond delta.deletedFileRetentionDuration|file.*(not exist|not found)"):
        read_table(spark, lakehouse, short, version=1).collect()  # the first append's files are gone for good

    # with a minimum interval the freshly maintained table is skipped
    assert "maintained" in maintain_table(spark, lakehouse, SPEC, min_interval_days=7).skipped


def test_repartition_rewrites_a_table_created_unpartitioned(spark: Any, lakehouse: Path) -> None:
    legacy = dataclasses.replace(SPEC, partition_by=())
    write_table(spark, _rows(spark, "m1", 4), legacy, lakehouse, mode="merge")
    path = table_path(lakehouse, SPEC)
    assert _metadata(path)["partitionColumns"] == []
    assert migrate_table(spark, lakehouse, SPEC).partitioning == ()
    result = maintain_table(spark, lakehouse, SPEC, repartition=True, vacuum=False)
    assert result.repartitioned
    assert _metadata(path)["partitionColumns"] == ["model_version"]
    assert sorted(r["item_id"] for r in read_table(spark, lakehouse, SPEC).collect()) == ["i000", "i001", "i002", "i003"]
    assert migrate_table(spark, lakehouse, SPEC).partitioning is None


def test_upkeep_racing_a_writer_and_a_long_reader_loses_nothing(spark: Any, lakehouse: Path) -> None:
    """maintain_table (OPTIMIZE + VACUUM, the declared 7-day horizon) runs while another thread keeps
    MERGEing into the same table (``write_table(mode="merge")``, embed's own write path) and while a
    delta-rs reader holds the snapshot from before both and keeps reading it the whole time: conflicts
    are retried, every merged row is there, and every read of the old snapshot (during and after the
    upkeep) is complete — VACUUM removed no file a snapshot inside the horizon needs."""
    import threading

    from deltalake import DeltaTable

    for start in range(0, 40, 4):  # many small files to compact
        write_table(spark, _rows(spark, "m1", 4, start=start), SPEC, lakehouse, mode="append")
    path = table_path(lakehouse, SPEC)
    pinned = DeltaTable(path)  # a long reader: its snapshot is this version
    pinned_version = pinned.version()
    errors: list[BaseException] = []
    reads: list[int] = []
    upkeep_done = threading.Event()

    def reader() -> None:  # a long delta-rs reader: the pinned snapshot, re-read until upkeep ends
        try:
            while not upkeep_done.is_set() or not reads:
                reads.append(DeltaTable(path, version=pinned_version).to_pyarrow_table().num_rows)
                upkeep_done.wait(0.05)
        except BaseException as exc:
            errors.append(exc)

    def writer() -> None:
        try:
            for start in range(40, 100, 10):  # six MERGEs of new items into the same partition
                write_table(spark, _rows(spark, "m1", 10, start=start), SPEC, lakehouse, mode="merge")
        except BaseException as exc:
            errors.append(exc)

    t, r = threading.Thread(target=writer), threading.Thread(target=reader)
    t.start()
    r.start()
    results = [maintain_table(spark, lakehouse, SPEC) for _ in range(2)]
    t.join(timeout=600)
    upkeep_done.set()
    r.join(timeout=120)
    assert not errors, errors
    assert reads and set(reads) == {40}, reads  # every concurrent read of the old snapshot was complete
    assert all(r.vacuumed_files == 0 for r in results)  # every replaced file is inside the horizon
    assert sorted(r["item_id"] for r in read_table(spark, lakehouse, SPEC).collect()) == [f"i{i:03d}" for i in range(100)]
    old = pinned.to_pyarrow_table()  # the snapshot from before OPTIMIZE/VACUUM/MERGE: still complete
    assert pinned.version() == pinned_version and old.num_rows == 40
    assert sorted(old.column("item_id").to_pylist()) == [f"i{i:03d}" for i in range(40)]
