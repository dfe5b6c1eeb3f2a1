"""Read Parquet files whose row groups are too large for one task, in row-range splits.

Spark's Parquet reader never splits a row group: a catalog written as one file with one large row
group (pyarrow's default is 1 Mi rows per group; ``row_group_size=len(table)`` gives one) becomes
one task that holds the whole compressed row group in JVM heap and then cleans every row on one
core. When a file has a row group larger than ``split_bytes`` (uncompressed, from the footer),
build_vocab reads it here instead: the driver plans ``(file, row group, first row, end row)``
splits from the footers alone (O(row groups)), and each Spark task streams its rows with pyarrow
(``pre_buffer=False``, 1 MiB reads, ``batch_size`` rows at a time; rows before its range are
decoded and dropped), so a task's memory is a few batches whatever the file size.

File I/O is kept to :func:`_open` and :func:`_footer` so it moves to ``catalog2vec.storage`` with
the other artifact I/O.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_schema

__all__ = ["Split", "needs_split_read", "plan_splits", "read_split", "split_read_frame"]

DEFAULT_SPLIT_BYTES = 64 << 20
BATCH_ROWS = 8192
FILE_COLUMN = "_file"


@dataclass(frozen=True)
class Split:
    path: str
    row_group: int
    start: int  # first row inside the row group
    stop: int  # one past the last row


def _open(path: str) -> pa.NativeFile:
    from pyarrow import fs

    if "://" in path:
        filesystem, inner = fs.FileSystem.from_uri(path)
        return filesystem.open_input_file(inner)
    return fs.LocalFileSystem().open_input_file(path)


def _footer(path: str) -> pq.FileMetaData:
    with _open(path) as fh:
        return pq.read_metadata(fh)


def needs_split_read(files: Sequence[str], split_bytes: int = DEFAULT_SPLIT_BYTES) -> bool:
    """True when some row group of ``files`` is larger than ``split_bytes`` (uncompressed)."""
    for path in files:
        meta = _footer(path)
        if any(meta.row_group(i).total_byte_size > split_bytes for i in range(meta.num_row_groups)):
            return True
    return False


def plan_splits(files: Sequence[str], split_bytes: int = DEFAULT_SPLIT_BYTES, min_splits: int = 1) -> list[Split]:
    """Row-range splits of at most ~``split_bytes`` each (at least ``min_splits`` in all: a
    one-row-group file still uses every core)."""
    groups: list[tuple[str, int, int, int]] = []
    for path in files:
        meta = _footer(path)
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            if rg.num_rows:
                groups.append((path, g, rg.num_rows, rg.total_byte_size))
    total = sum(size for *_, size in groups) or 1
    splits: list[Split] = []
    for path, g, rows, size in groups:
        parts = max(math.ceil(size / split_bytes), math.ceil(min_splits * size / total), 1)
        parts = min(parts, rows)
        bounds = [rows * i // parts for i in range(parts + 1)]
        splits += [Split(path, g, a, b) for a, b in itertools.pairwise(bounds) if b > a]
    return splits


def read_split(split: Split, columns: Sequence[str], batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Stream the rows of one split (``columns`` only) plus ``_file`` (the file's path)."""
    with _open(split.path) as fh:
        pf = pq.ParquetFile(fh, buffer_size=1 << 20, pre_buffer=False)
        seen = 0
        for batch in pf.iter_batches(batch_size=batch_rows, row_groups=[split.row_group], columns=list(columns),
                                     use_threads=False):
            lo, hi = max(split.start - seen, 0), min(split.stop - seen, batch.num_rows)
            seen += batch.num_rows
            if hi > lo:
                part = batch.slice(lo, hi - lo)
                yield part.append_column(FILE_COLUMN, pa.array([split.path] * part.num_rows, pa.string()))
            if seen >= split.stop:
                return


def split_read_frame(spark: SparkSession, files: Sequence[str], columns: Sequence[str] | None = None,
                     split_bytes: int = DEFAULT_SPLIT_BYTES) -> DataFrame:
    """A DataFrame of ``files`` (``columns`` or all, plus ``_file``) read by :func:`read_split`,
    one Spark task per split."""
    arrow_schema = _footer(files[0]).schema.to_arrow_schema()
    names = list(columns) if columns is not None else list(arrow_schema.names)
    fields = [arrow_schema.field(n) for n in names]
    schema = from_arrow_schema(pa.schema(fields)).add(T.StructField(FILE_COLUMN, T.StringType(), False))
    parallelism = int(spark.sparkContext.defaultParallelism)
    splits = plan_splits(files, split_bytes, min_splits=2 * parallelism)
    rows = [(s.path, s.row_group, s.start, s.stop) for s in splits]
    plan = spark.sparkContext.parallelize(rows, max(len(rows), 1)).toDF(
        "path string, row_group int, start long, stop long"
    )
    target = pa.schema(fields)

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            for path, g, start, stop in zip(*(b.column(i).to_pylist() for i in range(4)), strict=True):
                for part in read_split(Split(path, g, start, stop), names):
                    cols = [part.column(i).cast(target.field(i).type) for i in range(len(names))]
                    yield pa.RecordBatch.from_arrays([*cols, part.column(FILE_COLUMN)], schema=None,
                                                     names=[*names, FILE_COLUMN])

    return plan.mapInArrow(read, schema)
