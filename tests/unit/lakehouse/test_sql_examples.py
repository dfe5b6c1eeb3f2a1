"""catalog2vec.lakehouse.sql_examples and gold.query: one query registry (sql/examples.sql, shipped
in the package), one parameter syntax (``:name``), one quoting rule per engine — run on DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from catalog2vec.errors import InvalidInput
from catalog2vec.lakehouse import gold
from catalog2vec.lakehouse import sql_examples as sx

REPO = Path(__file__).resolve().parents[3]
HOSTILE = "v1' OR '1'='1"


def test_the_package_ships_the_one_registry() -> None:
    assert Path(sx.packaged_path()).read_bytes() == (REPO / "sql" / "examples.sql").read_bytes()
    latest, pinned = sx.load(), sx.load(pinned=True)
    assert [e.name for e in latest] == [e.name for e in sx.load(REPO / "sql" / "examples.sql")]
    assert len(latest) == 7 and not any(e.pinned for e in latest)
    assert sorted((e.name, eng) for e in pinned for eng in e.engines) == sorted(
        (n, eng) for n in ("items_with_top_tag", "nearest_neighbours", "tag_counts", "top_tags_of_item")
        for eng in ("duckdb", "spark")
    )
    for e in (*latest, *pinned):
        assert "{" not in e.sql  # one parameter syntax: :name
    assert {p for e in pinned for p in e.params} == {"model_version", "item_id", "tag", "k"}


def test_literal_is_one_rule_per_engine() -> None:
    assert sx.literal(10, "spark") == "10" and sx.literal(0.5, "duckdb") == "0.5"
    assert sx.literal("it's", "duckdb") == "'it''s'" and sx.literal("it's", "spark") == "'it\\'s'"
    assert sx.literal(True, "duckdb") == "'True'"  # not a number: quoted
    with pytest.raises(InvalidInput, match="engine must be one of"):
        sx.literal("x", "postgres")


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA gold")
    con.execute("CREATE TABLE gold.item_tags (model_version VARCHAR, item_id VARCHAR, tag VARCHAR, "
                "probability DOUBLE, rank INTEGER)")
    rows = [("v1", "a", "red", 0.9, 1), ("v1", "a", "dress", 0.5, 2), ("v1", "b", "red", 0.8, 1),
            ("v1", "c", "blue", 0.7, 1), ("v2", "a", "blue", 0.6, 1), (HOSTILE, "z", "red", 0.1, 1)]
    con.executemany("INSERT INTO gold.item_tags VALUES (?, ?, ?, ?, ?)", rows)
    con.execute("CREATE TABLE gold.item_embeddings (model_version VARCHAR, item_id VARCHAR, embedding FLOAT[])")
    con.executemany("INSERT INTO gold.item_embeddings VALUES (?, ?, ?)",
                    [("v1", "a", [1.0, 0.0]), ("v1", "b", [0.8, 0.6]), ("v1", "c", [0.0, 1.0]), ("v2", "b", [1.0, 0.0])])
    return con


def test_gold_query_answers_on_duckdb_for_one_version() -> None:
    con = _con()
    assert con.sql(gold.query("tag_counts", "duckdb", "v1")).fetchall() == [("red", 2), ("blue", 1)]
    assert con.sql(gold.query("top_tags_of_item", "duckdb", "v1", item_id="a")).fetchall() == [
        ("red", 0.9, 1), ("dress", 0.5, 2)]
    assert con.sql(gold.query("items_with_top_tag", "duckdb", "v1", tag="red")).fetchall() == [("a", 0.9), ("b", 0.8)]
    nn = con.sql(gold.query("nearest_neighbours", "duckdb", "v1", item_id="a", k=1)).fetchall()
    assert [r[0] for r in nn] == ["b"] and nn[0][1] == pytest.approx(0.8)
    # a hostile version stays one literal: it selects its own row, not every row
    assert con.sql(gold.query("tag_counts", "duckdb", HOSTILE)).fetchall() == [("red", 1)]
    with pytest.raises(InvalidInput, match="no example query 'nope' for 'duckdb'"):
        gold.query("nope", "duckdb", "v1")
