"""Lakehouse helpers: table paths, schema-enforced idempotent Delta writes, Spark reads, and
JVM-free reads for analysts (delta-rs → Arrow / pandas / Polars / DuckDB)."""

from catalog2vec.lakehouse.analyst import (
    duckdb_connect,
    read_arrow,
    read_pandas,
    read_polars,
    register_spark_tables,
)
from catalog2vec.lakehouse.io import (
    SchemaMismatchError,
    conform,
    delta_version,
    ensure_table,
    read_table,
    table_exists,
    table_path,
    write_table,
)
from catalog2vec.lakehouse.table import Column, TableSpec

__all__ = [
    "Column",
    "SchemaMismatchError",
    "TableSpec",
    "conform",
    "delta_version",
    "duckdb_connect",
    "ensure_table",
    "read_arrow",
    "read_pandas",
    "read_polars",
    "read_table",
    "register_spark_tables",
    "table_exists",
    "table_path",
    "write_table",
]
