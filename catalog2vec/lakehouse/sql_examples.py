"""The documented example queries (``sql/examples.sql``, the one registry, shipped in the wheel as
``catalog2vec/resources/sql/examples.sql``): parsing them, and running them on DuckDB or Spark SQL
with their ``:name`` parameters bound.

>>> examples = {e.name: e for e in load("sql/examples.sql")}
>>> run_duckdb(duckdb_connect("lakehouse"), examples["top_tags_of_item"], item_id="10039")

:func:`load` gives the queries over the ``*_latest`` views; ``load(..., pinned=True)`` the
version-pinned forms over the base tables that :func:`catalog2vec.lakehouse.gold.query` fills in
(:func:`render`). :func:`literal` is the one quoting rule of a parameter value per engine.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from catalog2vec import names
from catalog2vec.errors import InvalidInput

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    from pyspark.sql import SparkSession

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
#: the line that starts the version-pinned part of the file
PINNED_MARKER = "-- pinned:"
ENGINES = ("duckdb", "spark")
#: what a ``:name`` parameter may be bound to
SqlValue = str | int | float


@dataclass(frozen=True)
class SqlExample:
    name: str
    engines: tuple[str, ...]
    doc: str
    sql: str  # one statement, without the final ';'
    pinned: bool = False  # a version-pinned form (base tables, ``:model_version``)

    @property
    def params(self) -> list[str]:
        """The ``:name`` parameters the statement uses, in order of first use."""
        return list(dict.fromkeys(_PARAM.findall(_strip_comments(self.sql))))


def _strip_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def parse(text: str) -> list[SqlExample]:
    """Split an examples file into its queries (see the header of ``sql/examples.sql``): those over
    the ``*_latest`` views, then the version-pinned ones (``pinned=True``)."""
    latest, _, pinned = text.partition("\n" + PINNED_MARKER)
    out = _parse_part(latest, pinned=False)
    if pinned:
        out += _parse_part(pinned.split("\n", 1)[-1], pinned=True)
    return out


def _parse_part(text: str, pinned: bool) -> list[SqlExample]:
    out: list[SqlExample] = []
    blocks = re.split(r"^-- name:\s*", text, flags=re.MULTILINE)[1:]
    for block in blocks:
        lines = block.splitlines()
        name = lines[0].strip()
        engines: tuple[str, ...] = ()
        doc: list[str] = []
        body: list[str] = []
        for line in lines[1:]:
            if not body and line.startswith("-- engines:"):
                engines = tuple(e.strip() for e in line.split(":", 1)[1].split(",") if e.strip())
            elif not body and line.startswith("--"):
                doc.append(line[2:].strip())
            elif line.strip() or body:
                body.append(line)
        sql = "\n".join(body).strip()
        if not sql.endswith(";") or not engines:
            raise InvalidInput(f"example {name!r}: needs an '-- engines:' line and one statement ending with ';'")
        out.append(SqlExample(name, engines, " ".join(doc), sql[:-1].rstrip(), pinned))
    return out


def packaged_path() -> str:
    """The registry as the package ships it (``sql/examples.sql`` of the source tree)."""
    return str(resources.files("catalog2vec.resources") / "sql" / "examples.sql")


def load(path: str | os.PathLike[str] | None = None, *, pinned: bool = False) -> list[SqlExample]:
    """The queries of an examples file (default: the packaged registry) over the ``*_latest``
    views, or with ``pinned`` its version-pinned forms."""
    with open(path if path is not None else packaged_path(), encoding="utf-8") as fh:
        return [e for e in parse(fh.read()) if e.pinned == pinned]


def find(name: str, engine: str, *, pinned: bool = False, path: str | os.PathLike[str] | None = None) -> SqlExample:
    """The example ``name`` that runs on ``engine`` (``duckdb`` | ``spark``)."""
    examples = load(path, pinned=pinned)
    for e in examples:
        if e.name == name and engine in e.engines:
            return e
    raise InvalidInput(f"no example query {name!r} for {engine!r}; have {sorted({e.name for e in examples})}")


def _bind(example: SqlExample, params: dict[str, SqlValue]) -> dict[str, SqlValue]:
    missing = [p for p in example.params if p not in params]
    if missing:
        raise InvalidInput(f"example {example.name!r} needs parameter(s) {missing}")
    return {p: params[p] for p in example.params}


def run_duckdb(con: duckdb.DuckDBPyConnection, example: SqlExample, **params: SqlValue) -> pd.DataFrame:
    """Run ``example`` on a DuckDB connection (``:name`` bound as ``$name``); a pandas DataFrame."""
    args = _bind(example, params)
    sql = _PARAM.sub(lambda m: "$" + m.group(1), example.sql)
    return con.execute(sql, args or None).df()


def literal(value: SqlValue, engine: str) -> str:
    """``value`` as one SQL literal of ``engine``: a number as written, anything else as a string
    quoted by that engine's rule (:func:`catalog2vec.names.spark_literal` /
    :func:`~catalog2vec.names.duckdb_literal`: Spark un-escapes backslashes, DuckDB does not)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    if engine not in ENGINES:
        raise InvalidInput(f"engine must be one of {ENGINES}, got {engine!r}")
    return names.spark_literal(str(value)) if engine == "spark" else names.duckdb_literal(str(value))


def render(example: SqlExample, engine: str, **params: SqlValue) -> str:
    """The statement with every ``:name`` parameter replaced by its :func:`literal` (text to run
    or to show; :func:`run_duckdb` binds instead)."""
    args = _bind(example, params)
    return _PARAM.sub(lambda m: literal(args[m.group(1)], engine), example.sql)


def run_spark(spark: SparkSession, example: SqlExample, **params: SqlValue) -> pd.DataFrame:
    """Run ``example`` with Spark SQL; a pandas DataFrame. The ``:name`` parameters are bound as
    quoted literals here: ``spark.sql(text, args=…)`` named markers left ``item_id`` unbound
    (UNBOUND_SQL_PARAMETER) on pyspark 4.2 in the metastore test, so the runner does not rely on them."""
    return spark.sql(render(example, "spark", **params)).toPandas()


__all__ = ["SqlExample", "find", "literal", "load", "packaged_path", "parse", "render", "run_duckdb", "run_spark"]
