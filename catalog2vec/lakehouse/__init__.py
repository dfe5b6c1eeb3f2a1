"""Lakehouse helpers: table paths, schema-enforced idempotent Delta writes, Spark reads, and
JVM-free reads for analysts (delta-rs → Arrow / pandas / Polars / DuckDB)."""

from catalog2vec.lakehouse.analyst import (
    delta_table,
    duckdb_connect,
    read_arrow,
    read_pandas,
    read_polars,
    register_spark_tables,
    scan_polars,
    vector_view,
)
from catalog2vec.lakehouse.io import (
    Migration,
    SchemaMismatchError,
    conform,
    delta_storage_options,
    delta_version,
    ensure_table,
    migrate_table,
    open_delta,
    read_table,
    table_exists,
    table_path,
    write_table,
)
from catalog2vec.lakehouse.table import Column, TableSpec

__all__ = [
    "Column",
    "Migration",
    "SchemaMismatchError",
    "TableSpec",
    "conform",
    "delta_storage_options",
    "delta_table",
    "delta_version",
    "duckdb_connect",
    "ensure_table",
    "migrate_table",
    "open_delta",
    "read_arrow",
    "read_pandas",
    "read_polars",
    "read_table",
    "register_spark_tables",
    "scan_polars",
    "table_exists",
    "table_path",
    "vector_view",
    "write_table",
]
