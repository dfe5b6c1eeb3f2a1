"""simulate_spark: the synthetic impressions with the catalog kept in the executors equal the
in-memory simulate over the same items; sorted_positions numbers a multi-partition frame."""

from __future__ import annotations

import pandas as pd
import pytest

from catalog2vec.ctr.simulate import SimulationParams, simulate, simulate_spark, sorted_positions


def _items(n: int = 500) -> pd.DataFrame:
    colours = ["Red", " blue ", "Black", "", None]
    return pd.DataFrame({"item_id": [f"it{(i * 7919) % n:05d}" for i in range(n)],
                         "color": [colours[i % 5] for i in range(n)],
                         "category": ["Tshirts" if i % 3 else None for i in range(n)]})


def test_sorted_positions_across_partitions(spark) -> None:
    df = spark.createDataFrame(_items(300)).repartition(4)
    out, n = sorted_positions(df, "item_id")
    got = out.select("_pos", "item_id").toPandas().sort_values("_pos")
    assert n == 300 and got["_pos"].tolist() == list(range(300))
    assert got["item_id"].tolist() == sorted(_items(300)["item_id"])


def test_simulate_spark_equals_in_memory(spark) -> None:
    items = _items()
    p = SimulationParams(n_impressions=3000, n_users=200, seed=5)
    got = simulate_spark(spark.createDataFrame(items).repartition(3), p)
    want = simulate(items, p)
    pd.testing.assert_frame_equal(got, want)
    assert want["item_id"].nunique() > 400 and want["true_ctr"].mean() == pytest.approx(0.05, abs=0.002)
    # the same seed gives the same rows; another seed other rows
    assert not simulate(items, SimulationParams(n_impressions=3000, n_users=200, seed=6))["item_id"].equals(want["item_id"])
