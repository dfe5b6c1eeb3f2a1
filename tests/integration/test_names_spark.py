"""Names that become Delta predicates and Spark SQL literals, against Spark 4.2's own parser: a
version built to break out of a ``replaceWhere`` predicate is rejected before any Spark work and
every other version of the table stays intact; the one Spark escaper round-trips hostile strings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from catalog2vec import names
from catalog2vec.errors import InvalidInput
from catalog2vec.lakehouse import gold, read_table, write_table
from catalog2vec.schemas import gold as gold_schemas

pytestmark = pytest.mark.spark

INJECTIONS = ["x\\' OR true --", "x' OR '1'='1", "x\\\\' OR model_version <> '", "v1' OR 1=1 --"]


def _tags(spark: Any, version: str, n: int) -> Any:
    rows = [(version, f"i{i}", "red", 0.5, 1, "r1") for i in range(n)]
    return spark.createDataFrame(rows, gold_schemas.ITEM_TAGS.spark_schema())


@pytest.mark.parametrize("value", [*INJECTIONS, "it's", "a\\b", "\\", "'", "--", "/* x */"])
def test_spark_literal_round_trips_through_sparks_parser(spark: Any, value: str) -> None:
    assert spark.sql(f"SELECT {names.spark_literal(value)} AS v").first()["v"] == value


@pytest.mark.parametrize("value", INJECTIONS)
def test_example_queries_keep_a_hostile_value_a_literal(spark: Any, value: str) -> None:
    sql = gold.query("tag_counts", "spark", model_version=value)
    where = sql.split("WHERE model_version = ", 1)[1].split(" AND ", 1)[0]
    assert spark.sql(f"SELECT {where} AS v").first()["v"] == value  # one literal: no OR escaped out


def test_replace_where_refuses_an_injected_version_before_spark(spark: Any, tmp_path: Path) -> None:
    root = str(tmp_path / "lake")
    write_table(spark, _tags(spark, "v1", 3), gold_schemas.ITEM_TAGS, root, mode="replace_where", version="v1")
    write_table(spark, _tags(spark, "v2", 4), gold_schemas.ITEM_TAGS, root, mode="replace_where", version="v2")
    before = sorted(tuple(r) for r in read_table(spark, root, gold_schemas.ITEM_TAGS).collect())
    for bad in INJECTIONS:
        with pytest.raises(InvalidInput, match="invalid model_version"):
            write_table(spark, _tags(spark, bad, 1), gold_schemas.ITEM_TAGS, root, mode="replace_where", version=bad)
    after = sorted(tuple(r) for r in read_table(spark, root, gold_schemas.ITEM_TAGS).collect())
    assert after == before and {r[0] for r in after} == {"v1", "v2"} and len(after) == 7
