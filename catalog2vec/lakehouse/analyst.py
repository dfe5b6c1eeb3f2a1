"""Reading lakehouse tables without a JVM: delta-rs (``deltalake``) → Arrow / pandas / Polars /
DuckDB, and registering them as Spark tables (``gold.item_embeddings``) for Spark SQL users.

Reads push work down: ``columns`` projects (other columns are never decoded) and ``filters``
(pyarrow DNF tuples such as ``[("model_version", "=", v), ("item_id", "in", ids)]``) prune whole
files by partition value and by the min/max statistics in the Delta log before any is opened,
then filter rows. ``scan_polars`` hands Polars a lazy ``scan_delta`` so its optimiser pushes
filters and projections itself. On an ``s3://`` root the delta-rs ``storage_options`` come from
:func:`catalog2vec.storage.s3_settings`, the same settings Spark and the artifact writers use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from catalog2vec import models, names, storage
from catalog2vec.lakehouse.io import delta_storage_options, open_delta, table_exists, table_path
from catalog2vec.lakehouse.table import TableSpec

if TYPE_CHECKING:
    import deltalake
    import duckdb
    import pandas as pd
    import polars as pl
    import pyarrow as pa
    from pyspark.sql import SparkSession

# a pyarrow DNF filter: [(column, op, value), ...] ANDed, or a list of such lists ORed
Filters = list[tuple[str, str, Any]] | list[list[tuple[str, str, Any]]]


def storage_options(root: str | os.PathLike[str]) -> dict[str, str] | None:
    """delta-rs ``storage_options`` for tables under ``root`` (``None`` on local disk)."""
    return delta_storage_options(root)


def delta_uri(root: str | os.PathLike[str], spec: TableSpec | str) -> str:
    """The table's URI as delta-rs, Polars and DuckDB open it (``s3a://`` spelled ``s3://``)."""
    return storage.to_object_uri(table_path(root, spec))


def delta_table(root: str | os.PathLike[str], spec: TableSpec | str) -> deltalake.DeltaTable:
    """The table's current snapshot as a ``deltalake.DeltaTable`` (:func:`open_delta`)."""
    return open_delta(root, spec)


def read_arrow(
    root: str | os.PathLike[str],
    spec: TableSpec | str,
    columns: list[str] | None = None,
    filters: Filters | Any | None = None,
    filesystem: Any | None = None,
) -> pa.Table:
    """The table's current version as a ``pyarrow.Table``: only ``columns`` are read, and with
    ``filters`` only the files whose partition values / statistics can match are opened.

    >>> read_arrow("lakehouse", "silver.images", ["item_id", "image"], [("item_id", "in", ["10039"])])
    """
    return delta_table(root, spec).to_pyarrow_table(columns=columns, filters=filters, filesystem=filesystem)


def read_pandas(
    root: str | os.PathLike[str],
    spec: TableSpec | str,
    columns: list[str] | None = None,
    filters: Filters | Any | None = None,
) -> pd.DataFrame:
    return read_arrow(root, spec, columns, filters).to_pandas()


def scan_polars(root: str | os.PathLike[str], spec: TableSpec | str) -> pl.LazyFrame:
    """A lazy Polars scan of the table (``pl.scan_delta``): filters and projections applied to it
    are pushed into the Parquet reads.

    >>> scan_polars("lakehouse", "gold.item_tags").filter(pl.col("rank") == 1).select("tag").collect()
    """
    import polars as pl

    if not table_exists(root, spec):
        raise FileNotFoundError(f"no Delta table at {table_path(root, spec)}")
    return pl.scan_delta(delta_uri(root, spec), storage_options=storage_options(root))


def _polars_predicate(filters: Filters) -> pl.Expr:
    import polars as pl

    ops = {
        "=": lambda c, v: c == v, "==": lambda c, v: c == v, "!=": lambda c, v: c != v,
        "<": lambda c, v: c < v, "<=": lambda c, v: c <= v, ">": lambda c, v: c > v, ">=": lambda c, v: c >= v,
        "in": lambda c, v: c.is_in(list(v)), "not in": lambda c, v: ~c.is_in(list(v)),
    }
    groups = filters if filters and isinstance(filters[0], list) else [filters]
    disjuncts = []
    for group in groups:
        terms = []
        for name, op, value in group:  # type: ignore[misc]
            if op not in ops:
                raise ValueError(f"unsupported filter operator {op!r}; use one of {sorted(ops)}")
            terms.append(ops[op](pl.col(name), value))
        disjuncts.append(pl.all_horizontal(terms))
    return pl.any_horizontal(disjuncts)


def read_polars(
    root: str | os.PathLike[str],
    spec: TableSpec | str,
    columns: list[str] | None = None,
    filters: Filters | None = None,
) -> pl.DataFrame:
    """The table as a Polars DataFrame, read through :func:`scan_polars` (filters and
    projection pushed down)."""
    lf = scan_polars(root, spec)
    if filters:
        lf = lf.filter(_polars_predicate(filters))
    if columns is not None:
        lf = lf.select(columns)
    return lf.collect()


class ExtensionUnavailableError(RuntimeError):
    """A DuckDB extension cannot be loaded (not installed, and installing needs the internet)."""


def duckdb_connect(
    root: str | os.PathLike[str],
    database: str = ":memory:",
    prefix: str = "catalog2vec",
    model_version: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every existing declared table as a view, under two names:
    ``layer.table`` and the metastore's ``<prefix>_<layer>.table`` (so the same SQL runs here and
    in Spark on the tables ``register_tables`` registered). For the model version ``models/LATEST``
    names (or ``model_version``) it adds, like the metastore, ``<prefix>_gold.<table>_latest`` for
    every gold table versioned by model_version, and ``<prefix>_gold.item_vectors_latest``: the
    embeddings as fixed-size ``FLOAT[D]`` arrays (:func:`vector_view`) for
    ``array_cosine_similarity`` and the vss extension's HNSW index.

    DuckDB pushes a query's filters and column list into the Arrow dataset scan, which skips files
    by their Delta partition values and statistics.

    >>> con = duckdb_connect("lakehouse")
    >>> con.sql("select tag, count(*) from gold.item_tags where rank = 1 group by tag").show()
    """
    import duckdb

    from catalog2vec.schemas import TABLES

    con = duckdb.connect(database)
    latest = model_version or models.read_latest(root) or None
    for spec in TABLES.values():
        if not table_exists(root, spec):
            continue
        dataset = delta_table(root, spec).to_pyarrow_dataset()
        alias = f"__{spec.layer}_{spec.name}"
        con.register(alias, dataset)
        db = f"{prefix}_{spec.layer}"
        for schema in (spec.layer, db):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.execute(f"CREATE OR REPLACE VIEW {schema}.{spec.name} AS SELECT * FROM {alias}")
        if latest and spec.version_column == "model_version":
            con.execute(
                f"CREATE OR REPLACE VIEW {db}.{spec.name}_latest AS "
                f"SELECT * FROM {alias} WHERE model_version = {names.duckdb_literal(latest)}"
            )
    if latest and table_exists(root, "gold.item_embeddings"):
        vector_view(con, latest, f"{prefix}_gold.item_vectors_latest", source=f"{prefix}_gold.item_embeddings")
    return con


def vector_view(con: duckdb.DuckDBPyConnection, model_version: str, name: str, source: str = "gold.item_embeddings") -> int:
    """Create view ``name`` (model_version, item_id, vector ``FLOAT[D]``) over one model version
    of ``source`` and return D. DuckDB's ``array_*`` functions and the HNSW index need a
    fixed-size array; the Delta column is a variable-length ``array<float>``, so the cast happens
    here, with D read from the data (a row of another length fails the cast at query time).

    >>> d = vector_view(con, v, "vecs")
    >>> con.sql("select item_id, array_cosine_similarity(vector, (select vector from vecs where item_id = '10039')) s "
    ...         "from vecs order by s desc limit 5")
    """
    row = con.execute(
        f"SELECT len(embedding) FROM {source} WHERE model_version = ? LIMIT 1", [model_version]
    ).fetchone()
    if row is None:
        raise ValueError(f"{source} has no rows for model_version {model_version!r}")
    dim = int(row[0])
    con.execute(
        f"CREATE OR REPLACE VIEW {name} AS SELECT model_version, item_id, CAST(embedding AS FLOAT[{dim}]) AS vector "
        f"FROM {source} WHERE model_version = {names.duckdb_literal(model_version)}"
    )
    return dim


def load_vss(con: duckdb.DuckDBPyConnection) -> None:
    """Load DuckDB's vss extension (HNSW indexes) or raise :class:`ExtensionUnavailableError`.

    DuckDB installs extensions from extensions.duckdb.org at run time (``INSTALL vss``); there is
    no vss wheel on PyPI for every DuckDB release (the ``duckdb-extension-vss`` wheels stop at
    1.5.5, and an extension loads only into the DuckDB version it was built for), so on a machine
    without internet access it is unavailable unless already in ``~/.duckdb/extensions``.
    """
    import duckdb

    try:
        con.execute("LOAD vss")
    except duckdb.Error as exc:
        try:
            con.execute("INSTALL vss")
            con.execute("LOAD vss")
        except duckdb.Error:
            raise ExtensionUnavailableError(f"DuckDB vss extension unavailable: {exc}".splitlines()[0]) from exc


def hnsw_index(con: duckdb.DuckDBPyConnection, vectors: str, table: str, metric: str = "cosine") -> None:
    """Materialise the vector view ``vectors`` as table ``table`` with a vss HNSW index on
    ``vector`` (``metric``: cosine | l2sq | ip). Queries ``ORDER BY array_cosine_distance(vector,
    q) LIMIT k`` then use the index. Needs the vss extension (:func:`load_vss`)."""
    load_vss(con)
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT item_id, vector FROM {vectors}")
    con.execute(f"CREATE INDEX {table.replace('.', '_')}_hnsw ON {table} USING HNSW (vector) WITH (metric = {names.duckdb_literal(metric)})")


def register_spark_tables(spark: SparkSession, root: str | os.PathLike[str]) -> list[str]:
    """Register every existing declared table as an external Spark table ``layer.table``."""
    from catalog2vec.schemas import TABLES

    registered = []
    for name, spec in TABLES.items():
        if not table_exists(root, spec):
            continue
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {spec.layer}")
        spark.sql(f"CREATE TABLE IF NOT EXISTS {name} USING DELTA LOCATION {names.spark_literal(table_path(root, spec))}")
        registered.append(name)
    return registered
