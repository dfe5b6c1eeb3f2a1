"""Reading lakehouse tables without a JVM: delta-rs (``deltalake``) → Arrow / pandas / Polars /
DuckDB, and registering them as Spark tables (``gold.item_embeddings``) for Spark SQL users."""

from __future__ import annotations

import os
from typing import Any

from catalog2vec.lakehouse.io import table_exists, table_path
from catalog2vec.lakehouse.table import TableSpec


def _delta(root: str | os.PathLike[str], spec: TableSpec | str) -> Any:
    from deltalake import DeltaTable

    if not table_exists(root, spec):
        raise FileNotFoundError(f"no Delta table at {table_path(root, spec)}")
    return DeltaTable(table_path(root, spec))


def read_arrow(root: str | os.PathLike[str], spec: TableSpec | str, columns: list[str] | None = None) -> Any:
    """The table's current version as a ``pyarrow.Table``."""
    return _delta(root, spec).to_pyarrow_table(columns=columns)


def read_pandas(root: str | os.PathLike[str], spec: TableSpec | str, columns: list[str] | None = None) -> Any:
    return read_arrow(root, spec, columns).to_pandas()


def read_polars(root: str | os.PathLike[str], spec: TableSpec | str, columns: list[str] | None = None) -> Any:
    import polars as pl

    return pl.from_arrow(read_arrow(root, spec, columns))


def duckdb_connect(root: str | os.PathLike[str], database: str = ":memory:") -> Any:
    """A DuckDB connection with every existing declared table as a view ``layer.table``.

    >>> con = duckdb_connect("lakehouse")
    >>> con.sql("select tag, count(*) from gold.item_tags where rank = 1 group by tag").show()
    """
    import duckdb

    from catalog2vec.schemas import TABLES

    con = duckdb.connect(database)
    for name, spec in TABLES.items():
        if not table_exists(root, spec):
            continue
        dataset = _delta(root, spec).to_pyarrow_dataset()
        alias = f"__{spec.layer}_{spec.name}"
        con.register(alias, dataset)
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {spec.layer}")
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {alias}")
    return con


def register_spark_tables(spark: Any, root: str | os.PathLike[str]) -> list[str]:
    """Register every existing declared table as an external Spark table ``layer.table``."""
    from catalog2vec.schemas import TABLES

    registered = []
    for name, spec in TABLES.items():
        if not table_exists(root, spec):
            continue
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {spec.layer}")
        path = table_path(root, spec).replace("'", "\\'")
        spark.sql(f"CREATE TABLE IF NOT EXISTS {name} USING DELTA LOCATION '{path}'")
        registered.append(name)
    return registered
