"""Registering the lakehouse tables in a metastore, so any Spark session, SQL client or BI tool
on that metastore finds them by name: ``SELECT * FROM catalog2vec_gold.item_embeddings``.

Every declared table that exists under the lakehouse root becomes an EXTERNAL Delta table
``<prefix>_<layer>.<table>`` (``LOCATION`` = the table's path; dropping it never deletes data), its
table and column comments taken from ``schemas/``. Each gold table versioned by ``model_version``
also gets a view ``<table>_latest`` restricted to the model version named by ``models/LATEST``
at registration time; re-registering (the DAG does it after every embed) moves the views on.

Where the metastore is (``[metastore]`` of the run configuration):

* ``kind = "embedded"`` (one machine, the default): a Hive metastore on Derby in
  ``metastore.dir`` (default ``<lakehouse>/_metastore``: ``metastore_db/``, ``warehouse/``). The
  Hive client and Derby ship inside the pyspark wheel (``spark-hive_2.13``, Hive 2.3 metastore
  jars), so nothing is downloaded. Derby is single-process: one Spark driver at a time opens it.
  :func:`embedded_conf` is the Spark configuration a session needs to see the tables.
* ``kind = "session"``: whatever metastore the Spark session is configured with — a cluster Hive
  metastore (``spark.hadoop.hive.metastore.uris``), AWS Glue (EMR's Glue client factory), or Unity
  Catalog (``metastore.catalog`` names the catalog of the three-level name).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from catalog2vec import layout, models, names, storage
from catalog2vec.errors import InvalidInput
from catalog2vec.lakehouse.io import table_exists, table_path
from catalog2vec.lakehouse.table import TableSpec

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from catalog2vec.config import Config

log = logging.getLogger(__name__)

KINDS = ("embedded", "session")
LAYER_DOCS = {
    "bronze": "catalog2vec bronze: data as received (crawled catalog rows, quarantine, impressions)",
    "silver": "catalog2vec silver: cleaned, validated, versioned derivations (tokens, vocabulary, labels, images)",
    "gold": "catalog2vec gold: model outputs per model_version (embeddings, tags, neighbours, clusters, CTR)",
}


@dataclass(frozen=True)
class Registration:
    """What :func:`register_tables` registered: ``layer.table`` -> metastore name, and the views."""

    tables: dict[str, str] = field(default_factory=dict)
    views: dict[str, str] = field(default_factory=dict)
    latest_model_version: str | None = None
    comments_updated: int = 0


def metastore_dir(cfg: Config) -> str:
    """Directory of the embedded metastore: ``metastore.dir``, else ``<lakehouse>/_metastore``."""
    if cfg.metastore.dir:
        directory = cfg.metastore.dir
    elif storage.is_local(cfg.lakehouse):
        directory = layout.metastore_dir(cfg.lakehouse)
    else:
        raise InvalidInput(
            f"the embedded metastore (Derby) needs a local directory: set metastore.dir (the lakehouse "
            f"{cfg.lakehouse} is not on local disk), or metastore.kind = \"session\" for the cluster's metastore"
        )
    if not storage.is_local(directory):
        raise InvalidInput(f"metastore.dir must be a local directory for the embedded metastore, got {directory}")
    return storage.normalize(directory)


def embedded_conf(directory: str | os.PathLike[str]) -> dict[str, str]:
    """Spark configuration of a session on the embedded Hive metastore in ``directory``.

    >>> spark = SparkSession.builder.config(map=embedded_conf("lakehouse/_metastore")).getOrCreate()
    """
    d = storage.normalize(directory)
    return {
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={d}/metastore_db;create=true",
        "spark.sql.warehouse.dir": f"{d}/warehouse",
    }


def spark_conf(cfg: Config) -> dict[str, str]:
    """The Spark configuration ``register_tables`` (and an analyst's session) needs for ``cfg``."""
    if cfg.metastore.kind not in KINDS:
        raise ValueError(f"metastore.kind must be one of {KINDS}, got {cfg.metastore.kind!r}")
    return embedded_conf(metastore_dir(cfg)) if cfg.metastore.kind == "embedded" else {}


def check_session(spark: SparkSession, cfg: Config) -> None:
    """Raise :class:`InvalidInput` (one line, exit 2) unless ``spark`` runs on a *persistent*
    metastore of the kind ``cfg`` asks for — a registration must never vanish with the process.

    * ``embedded``: the session needs ``spark.sql.catalogImplementation=hive`` and the embedded
      Derby URL from its start (static settings);
    * ``session``: the session's own catalog must outlive it — a Unity Catalog / Iceberg-style
      catalog named by ``metastore.catalog`` (``spark.sql.catalog.<name>`` set), or Hive support with
      a metastore service (``hive.metastore.uris``), AWS Glue (EMR's
      ``hive.metastore.client.factory.class``) or an explicit JDBC metastore. A plain session's
      in-memory catalog (or Hive on a Derby in the driver's working directory) is refused.
    """
    if cfg.metastore.kind == "session":
        problem = _ephemeral_catalog(spark, cfg.metastore.catalog)
        if problem:
            raise InvalidInput(
                f"metastore.kind = \"session\" but {problem}: the tables would be registered in a catalog that "
                "dies with this job. Start the job on the cluster's metastore (Glue: "
                "spark.hadoop.hive.metastore.client.factory.class=com.amazonaws.glue.catalog.metastore."
                "AWSGlueDataCatalogHiveClientFactory; Hive: spark.hadoop.hive.metastore.uris; Unity Catalog: "
                "metastore.catalog) or use metastore.kind = \"embedded\""
            )
        return
    if cfg.metastore.kind != "embedded":
        return
    want = embedded_conf(metastore_dir(cfg))
    keys = ("spark.sql.catalogImplementation", "spark.hadoop.javax.jdo.option.ConnectionURL")
    if any(spark.conf.get(k, None) != want[k] for k in keys):
        raise InvalidInput(
            "this Spark session is not on the embedded metastore (it was started without "
            f"{ {k: want[k] for k in keys} }); run jobs/register_tables.py in its own process"
        )
    # Derby writes derby.log into the working directory unless told otherwise; it boots lazily,
    # on the first catalog access, so setting the property now is in time
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    jvm.java.lang.System.setProperty("derby.stream.error.file", os.path.join(metastore_dir(cfg), "derby.log"))


# settings that make a Hive-enabled session's metastore outlive the session
_PERSISTENT_HIVE_KEYS = (
    "spark.hadoop.hive.metastore.uris",
    "spark.hive.metastore.uris",
    "spark.hadoop.hive.metastore.client.factory.class",  # AWS Glue on EMR
    "spark.hive.metastore.client.factory.class",
    "spark.hadoop.javax.jdo.option.ConnectionURL",  # an explicit (JDBC) metastore database
)


def _ephemeral_catalog(spark: SparkSession, catalog: str) -> str:
    """Why ``spark``'s catalog would not outlive the session (``""``: it would)."""
    if catalog and catalog != "spark_catalog":
        if spark.conf.get(f"spark.sql.catalog.{catalog}", None):
            return ""
        return f"metastore.catalog {catalog!r} is not configured in this session (no spark.sql.catalog.{catalog})"
    impl = spark.conf.get("spark.sql.catalogImplementation", "in-memory")
    if impl != "hive":
        return f"this session's catalog is {impl!r} (spark.sql.catalogImplementation)"
    hadoop = spark.sparkContext._jsc.hadoopConfiguration() if spark.sparkContext._jsc is not None else None
    for key in _PERSISTENT_HIVE_KEYS:
        if spark.conf.get(key, None):
            return ""
        bare = key.removeprefix("spark.hadoop.").removeprefix("spark.")
        if hadoop is not None and hadoop.get(bare):
            return ""
    return "this session's Hive catalog has no metastore service, Glue client or JDBC URL (a Derby in the working directory)"


def database_name(layer: str, prefix: str = "catalog2vec", catalog: str = "") -> str:
    """``<prefix>_<layer>``, qualified by ``catalog`` when one is given (Unity Catalog)."""
    db = f"`{prefix}_{layer}`"
    return f"`{catalog}`.{db}" if catalog else db


def _sync_comments(spark: SparkSession, name: str, spec: TableSpec) -> int:
    """Set the table and column comments of ``name`` to the declaration's where they differ."""
    updated = 0
    current = spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
    table_comment = next((r.data_type for r in current if r.col_name == "Comment"), None) or ""
    if spec.doc and table_comment != spec.doc:
        spark.sql(f"COMMENT ON TABLE {name} IS {names.spark_literal(spec.doc)}")
        updated += 1
    column_comments: dict[str, str] = {}
    for r in current:
        if not r.col_name or r.col_name.startswith("#"):
            break  # the partition / detail sections follow the column list
        column_comments[r.col_name] = r.comment or ""
    for col in spec.columns:
        if col.doc and column_comments.get(col.name, "") != col.doc:
            spark.sql(f"ALTER TABLE {name} ALTER COLUMN `{col.name}` COMMENT {names.spark_literal(col.doc)}")
            updated += 1
    return updated


def _location(spark: SparkSession, name: str) -> str:
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
    return next((str(r.data_type) for r in rows if r.col_name == "Location"), "")


def _same_location(a: str, b: str) -> bool:
    return a.removeprefix("file:").rstrip("/") == b.removeprefix("file:").rstrip("/")


def register_tables(
    spark: SparkSession,
    root: str | os.PathLike[str],
    prefix: str = "catalog2vec",
    catalog: str = "",
    specs: Iterable[TableSpec] | None = None,
    model_version: str | None = None,
) -> Registration:
    """Register every existing declared table of ``lakehouse`` as an external table, sync its
    comments from ``schemas/`` and (re)create the ``*_latest`` views.

    Idempotent: a table already registered at the same location is left as is (only differing
    comments are updated); one registered at another location (a moved lakehouse) is re-pointed.
    ``model_version`` overrides ``models/LATEST`` for the views; with neither, no views are made.
    """
    from catalog2vec.schemas import TABLES

    chosen = list(specs) if specs is not None else list(TABLES.values())
    latest = model_version or models.read_latest(root) or None
    tables: dict[str, str] = {}
    views: dict[str, str] = {}
    comments = 0
    made_dbs: set[str] = set()
    for spec in chosen:
        if not table_exists(root, spec):
            continue
        db = database_name(spec.layer, prefix, catalog)
        if db not in made_dbs:
            doc = LAYER_DOCS.get(spec.layer, f"catalog2vec {spec.layer}")
            spark.sql(f"CREATE DATABASE IF NOT EXISTS {db} COMMENT {names.spark_literal(doc)}")
            made_dbs.add(db)
        name = f"{db}.`{spec.name}`"
        path = table_path(root, spec)
        if spark.catalog.tableExists(name.replace("`", "")):
            where = _location(spark, name)
            if not _same_location(where, path):
                log.warning("%s pointed at %s; re-registering it at %s", name, where, path)
                spark.sql(f"DROP TABLE {name}")  # external: metadata only, the data stays
        spark.sql(f"CREATE TABLE IF NOT EXISTS {name} USING DELTA LOCATION {names.spark_literal(path)}")
        comments += _sync_comments(spark, name, spec)
        tables[spec.qualified_name] = name.replace("`", "")
        if latest and spec.version_column == "model_version":
            view = f"{db}.`{spec.name}_latest`"
            comment = f"{spec.doc} Rows of model_version {latest} (models/LATEST when registered)."
            spark.sql(
                f"CREATE OR REPLACE VIEW {view} COMMENT {names.spark_literal(comment)} AS "
                f"SELECT * FROM {name} WHERE model_version = {names.spark_literal(latest)}"
            )
            views[f"{spec.qualified_name}_latest"] = view.replace("`", "")
    if not latest:
        log.warning("no models/LATEST under %s: no *_latest views (train a model first)", root)
    return Registration(tables=tables, views=views, latest_model_version=latest, comments_updated=comments)


__all__ = [
    "KINDS",
    "Registration",
    "check_session",
    "database_name",
    "embedded_conf",
    "metastore_dir",
    "register_tables",
    "spark_conf",
]
