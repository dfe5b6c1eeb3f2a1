"""The documented example queries (``sql/examples.sql``): parsing and running them on DuckDB or
Spark SQL with their ``:name`` parameters bound.

>>> examples = {e.name: e for e in load("sql/examples.sql")}
>>> run_duckdb(duckdb_connect("lakehouse"), examples["top_tags_of_item"], item_id="10039")
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from catalog2vec import names

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    from pyspark.sql import SparkSession

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@dataclass(frozen=True)
class SqlExample:
    name: str
    engines: tuple[str, ...]
    doc: str
    sql: str  # one statement, without the final ';'

    @property
    def params(self) -> list[str]:
        """The ``:name`` parameters the statement uses, in order of first use."""
        return list(dict.fromkeys(_PARAM.findall(_strip_comments(self.sql))))


def _strip_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def parse(text: str) -> list[SqlExample]:
    """Split an examples file into its queries (see the header of ``sql/examples.sql``)."""
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
            raise ValueError(f"example {name!r}: needs an '-- engines:' line and one statement ending with ';'")
        out.append(SqlExample(name, engines, " ".join(doc), sql[:-1].rstrip()))
    return out


def load(path: str | os.PathLike[str]) -> list[SqlExample]:
    with open(path, encoding="utf-8") as fh:
        return parse(fh.read())


def _bind(example: SqlExample, params: dict[str, Any]) -> dict[str, Any]:
    missing = [p for p in example.params if p not in params]
    if missing:
        raise ValueError(f"example {example.name!r} needs parameter(s) {missing}")
    return {p: params[p] for p in example.params}


def run_duckdb(con: duckdb.DuckDBPyConnection, example: SqlExample, **params: Any) -> pd.DataFrame:
    """Run ``example`` on a DuckDB connection (``:name`` bound as ``$name``); a pandas DataFrame."""
    args = _bind(example, params)
    sql = _PARAM.sub(lambda m: "$" + m.group(1), example.sql)
    return con.execute(sql, args or None).df()


def _spark_literal(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return names.spark_literal(str(value))
    return repr(value)


def run_spark(spark: SparkSession, example: SqlExample, **params: Any) -> pd.DataFrame:
    """Run ``example`` with Spark SQL; a pandas DataFrame. The ``:name`` parameters are bound as
    quoted literals here: ``spark.sql(text, args=…)`` named markers left ``item_id`` unbound
    (UNBOUND_SQL_PARAMETER) on pyspark 4.2 in the metastore test, so the runner does not rely on them."""
    args = _bind(example, params)
    sql = _PARAM.sub(lambda m: _spark_literal(args[m.group(1)]), example.sql)
    return spark.sql(sql).toPandas()


__all__ = ["SqlExample", "load", "parse", "run_duckdb", "run_spark"]
