"""Bounded, deterministic samples of Spark DataFrames: the driver-side steps that need rows
(a PCA fit, the CTR tree sample, the evaluation report's items, PAN training items) take at most
a configured number of them, whatever the table size.

The sample key is a seeded 64-bit hash of an id column mapped to [0, 1): the same rows are chosen
on every run and on any partitioning, and a row keeps its place when others are added (a larger
catalog only adds rows to a fixed-size sample at the margin). Example::

    rows = cap_by_hash(items, 50_000, "item_id", seed=0)   # <= 50,000 rows, same ones every run
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

_MANTISSA = 1 << 52


def hash_unit(column: str, seed: int) -> Column:
    """A uniform value in [0, 1) from a seeded xxhash64 of ``column``."""
    from pyspark.sql import functions as F

    return F.xxhash64(F.lit(seed), F.col(column)).bitwiseAND(F.lit(_MANTISSA - 1)).cast("double") / float(_MANTISSA)


def cap_by_hash(df: DataFrame, cap: int, key: str, seed: int, rows: int | None = None) -> DataFrame:
    """``df`` itself when it has at most ``cap`` rows (``rows``: its count, when known), else ``cap``
    of its rows: those with the smallest :func:`hash_unit` of ``key``.
    Counting is a Spark aggregate; the result is still a lazy DataFrame."""
    from pyspark.sql import functions as F

    if cap < 1:
        raise ValueError(f"a row cap must be at least 1, got {cap}")
    n = df.count() if rows is None else rows
    if n <= cap:
        return df
    unit = hash_unit(key, seed)
    # the filter keeps cap + 4 sqrt(cap) + 16 rows on average (fewer than cap with probability
    # < 1e-4); ordering that O(cap) remainder by the hash cuts exactly the cap smallest hashes,
    # independent of partition order
    margin = cap + 4.0 * cap**0.5 + 16.0
    return df.where(unit < F.lit(min(1.0, margin / n))).orderBy(unit).limit(cap)
