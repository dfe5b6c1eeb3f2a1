"""catalog2vec.text.parquet_splits (no Spark): a one-row-group file is planned into row ranges
that cover every row exactly once, each read back streaming; and the spark-defaults memory
settings that make a bare spark-submit fit the machine."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from catalog2vec.spark import local_memory_defaults
from catalog2vec.text import parquet_splits as ps


def _file(path: Path, rows: int, row_group_size: int) -> pa.Table:
    table = pa.table({
        "item_id": [f"i{i}" for i in range(rows)],
        "title": [f"red dress {i}" if i % 7 else None for i in range(rows)],
        "price": np.arange(rows, dtype=np.int64),
    })
    pq.write_table(table, path, row_group_size=row_group_size)
    return table


def test_one_big_row_group_is_split_and_read_back_exactly(tmp_path: Path) -> None:
    path = tmp_path / "one.parquet"
    table = _file(path, 50_000, 50_000)
    size = pq.ParquetFile(path).metadata.row_group(0).total_byte_size
    assert ps.needs_split_read([str(path)], split_bytes=size // 2)
    assert not ps.needs_split_read([str(path)], split_bytes=size * 2)
    splits = ps.plan_splits([str(path)], split_bytes=size // 5, min_splits=2)
    assert len(splits) >= 5 and splits[0].start == 0 and splits[-1].stop == 50_000
    assert all(a.stop == b.start for a, b in itertools.pairwise(splits))
    parts = [b for s in splits for b in ps.read_split(s, ["item_id", "title"], batch_rows=3000)]
    back = pa.Table.from_batches(parts)
    assert back.column_names == ["item_id", "title", ps.FILE_COLUMN]
    assert back.select(["item_id", "title"]).equals(table.select(["item_id", "title"]))
    assert set(back.column(ps.FILE_COLUMN).to_pylist()) == {str(path)}
    assert max(b.num_rows for b in parts) <= 3000  # streamed in batches, never the whole split


def test_min_splits_spreads_a_small_file_and_many_row_groups_keep_their_bounds(tmp_path: Path) -> None:
    one = tmp_path / "small.parquet"
    _file(one, 1000, 1000)
    assert len(ps.plan_splits([str(one)], split_bytes=1 << 30, min_splits=4)) == 4
    many = tmp_path / "many.parquet"
    _file(many, 10_000, 1000)
    splits = ps.plan_splits([str(many), str(one)], split_bytes=1 << 30)
    assert [(s.row_group, s.start, s.stop) for s in splits[:2]] == [(0, 0, 1000), (1, 0, 1000)]
    assert sum(s.stop - s.start for s in splits) == 11_000


def test_local_memory_defaults_fit_the_machine() -> None:
    assert local_memory_defaults(24 * 1024)["spark.driver.memory"] == "3072m"  # clamped: shared machine
    assert local_memory_defaults(6 * 1024)["spark.driver.memory"] == "1536m"
    assert local_memory_defaults(2 * 1024)["spark.driver.memory"] == "1024m"
    assert local_memory_defaults(0)["spark.driver.memory"] == "3072m"
    assert local_memory_defaults(24 * 1024)["spark.sql.files.maxPartitionBytes"] == "32m"
