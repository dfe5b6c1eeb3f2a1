"""The small Spark transforms of the text stage, each on a tiny DataFrame against the expected
frame (``pyspark.testing.assertDataFrameEqual``), not only through whole jobs."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.spark


def test_token_stats_counts_occurrences_and_documents(spark: Any) -> None:
    from pyspark.testing import assertDataFrameEqual

    from catalog2vec.text.vocab_job import token_stats

    cleaned = spark.createDataFrame(
        [("a", ["red", "dress"], [2, 1]), ("b", ["red"], [1]), ("c", [], [])],
        "item_id string, uniq_tokens array<string>, uniq_counts array<int>",
    )
    expected = spark.createDataFrame([("red", 3, 2), ("dress", 1, 1)], "token string, count long, doc_freq long")
    assertDataFrameEqual(token_stats(cleaned), expected)


def test_dedupe_items_keeps_the_row_whose_joined_text_sorts_first(spark: Any) -> None:
    from pyspark.testing import assertDataFrameEqual

    from catalog2vec.text.adhoc_input import dedupe_items

    items = spark.createDataFrame(
        [("1", "b title", "x"), ("1", "a title", None), ("1", "a title", "z"), ("2", None, "only")],
        "item_id string, title string, `odd col` string",
    )
    expected = spark.createDataFrame([("1", "a title", None), ("2", None, "only")],
                                     "item_id string, title string, `odd col` string")
    assertDataFrameEqual(dedupe_items(items, ["title", "odd col"]), expected)


def test_split_column_equals_the_python_rule(spark: Any) -> None:
    from pyspark.sql import functions as F
    from pyspark.testing import assertDataFrameEqual

    from catalog2vec.text.labels_job import split_column
    from catalog2vec.text.vocab import split_for

    ids = [f"item-{i}" for i in range(200)] + ["", "é✓", "a/b"]
    df = spark.createDataFrame([(i,) for i in ids], "item_id string")
    got = df.select("item_id", split_column(F.col("item_id"), 0.7, 0.1, 0.2, "s1").alias("split"))
    expected = spark.createDataFrame([(i, split_for(i, 0.7, 0.1, 0.2, "s1")) for i in ids], "item_id string, split string")
    assertDataFrameEqual(got, expected)
    assert {r.split for r in got.collect()} == {"train", "val", "test"}
    with pytest.raises(ValueError):
        split_column(F.col("item_id"), 0.7, 0.2, 0.2, "s1")


def test_label_frame_maps_tokens_to_sorted_distinct_indices(spark: Any) -> None:
    from pyspark.testing import assertDataFrameEqual

    from catalog2vec.text.labels_job import label_frame

    tokens = spark.createDataFrame(
        [("a", ["red", "dress", "red"]), ("b", ["unknown"]), ("c", ["shirt", "red"])],
        "item_id string, tokens array<string>",
    )
    vocab = spark.createDataFrame([("red", 0), ("shirt", 1), ("dress", 2)], "token string, index int")
    expected = spark.createDataFrame(
        [("a", ["red", "dress", "red"], [0, 2]), ("b", ["unknown"], None), ("c", ["shirt", "red"], [0, 1])],
        "item_id string, tokens array<string>, labels array<int>",
    )
    assertDataFrameEqual(label_frame(tokens, vocab), expected)
