"""Table declarations: the column list, key, partitioning and Delta properties of one table.

A declaration converts to a Spark ``StructType`` and to a ``pyarrow.Schema`` from one source of
truth (``schemas/``). Supported column types: string, long, int, double, float, boolean,
timestamp, date, binary, array<T>, map<string,T>.

Upkeep is declared too: ``partition_by`` (physical partitioning, fixed at creation),
``properties`` (Delta table properties such as ``delta.deletedFileRetentionDuration``, applied by
``ensure_table`` on every write) and ``zorder_by`` (the columns ``maintain_tables`` Z-orders by
when it compacts, so file statistics skip files on lookups by those columns).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql.types import DataType, StructType


class SchemaMismatchError(ValueError):
    """A DataFrame does not match the declared schema of the table it is written to."""


_SCALARS = {"string", "long", "int", "double", "float", "boolean", "timestamp", "date", "binary"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True
    doc: str = ""


@dataclass(frozen=True)
class TableSpec:
    layer: str
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    doc: str = ""
    partition_by: tuple[str, ...] = ()
    version_column: str | None = None  # versioned rewrites use replaceWhere on this column
    extra: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)  # Delta TBLPROPERTIES
    zorder_by: tuple[str, ...] = ()  # OPTIMIZE ZORDER BY these (maintain_tables)

    @property
    def qualified_name(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def relpath(self) -> str:
        return f"{self.layer}/{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def deleted_file_retention_hours(self) -> float | None:
        """``delta.deletedFileRetentionDuration`` in hours (the VACUUM horizon), if declared."""
        value = self.properties.get("delta.deletedFileRetentionDuration")
        return None if value is None else interval_hours(value)

    def spark_schema(self) -> StructType:
        from pyspark.sql import types as T

        return T.StructType([T.StructField(c.name, _spark_type(c.type), c.nullable) for c in self.columns])

    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema([pa.field(c.name, _arrow_type(c.type), c.nullable) for c in self.columns])

    def __post_init__(self) -> None:
        names = self.column_names
        if len(set(names)) != len(names):
            raise ValueError(f"{self.qualified_name}: duplicate column names")
        for k in (*self.key, *self.partition_by, *self.zorder_by):
            if k not in names:
                raise ValueError(f"{self.qualified_name}: key/partition/zorder column {k!r} is not declared")
        if set(self.zorder_by) & set(self.partition_by):
            raise ValueError(f"{self.qualified_name}: a partition column cannot also be a Z-order column")
        for key, value in self.properties.items():
            if not key.startswith("delta.") or not isinstance(value, str):
                raise ValueError(f"{self.qualified_name}: property {key!r}={value!r}: expected delta.* = string")
            if key.endswith("RetentionDuration"):
                interval_hours(value)  # validates
        for c in self.columns:
            _parse(c.type)  # validates


_UNIT_HOURS = {"hour": 1.0, "day": 24.0, "week": 168.0, "minute": 1 / 60, "second": 1 / 3600}


def interval_hours(value: str) -> float:
    """Hours of a Delta interval string such as ``"interval 7 days"`` or ``"interval 12 hours"``."""
    m = re.fullmatch(r"\s*interval\s+(\d+(?:\.\d+)?)\s+(second|minute|hour|day|week)s?\s*", value.lower())
    if not m:
        raise ValueError(f"unsupported Delta interval {value!r} (expected e.g. 'interval 7 days')")
    return float(m.group(1)) * _UNIT_HOURS[m.group(2)]


def _parse(tp: str) -> tuple[str, tuple[str, ...]]:
    tp = tp.strip().lower()
    if tp in _SCALARS:
        return tp, ()
    m = re.fullmatch(r"array<(.+)>", tp)
    if m:
        return "array", (m.group(1),)
    m = re.fullmatch(r"map<\s*string\s*,(.+)>", tp)
    if m:
        return "map", ("string", m.group(1))
    raise ValueError(f"unsupported column type {tp!r}")


def _spark_type(tp: str) -> DataType:
    from pyspark.sql import types as T

    kind, args = _parse(tp)
    scalars = {
        "string": T.StringType(),
        "long": T.LongType(),
        "int": T.IntegerType(),
        "double": T.DoubleType(),
        "float": T.FloatType(),
        "boolean": T.BooleanType(),
        "timestamp": T.TimestampType(),
        "date": T.DateType(),
        "binary": T.BinaryType(),
    }
    if kind == "array":
        return T.ArrayType(_spark_type(args[0]), True)
    if kind == "map":
        return T.MapType(T.StringType(), _spark_type(args[1]), True)
    return scalars[kind]


def _arrow_type(tp: str) -> pa.DataType:
    import pyarrow as pa

    kind, args = _parse(tp)
    scalars = {
        "string": pa.string(),
        "long": pa.int64(),
        "int": pa.int32(),
        "double": pa.float64(),
        "float": pa.float32(),
        "boolean": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
        "binary": pa.binary(),
    }
    if kind == "array":
        return pa.list_(_arrow_type(args[0]))
    if kind == "map":
        return pa.map_(pa.string(), _arrow_type(args[1]))
    return scalars[kind]


def check_spark_schema(spec: TableSpec, schema: StructType) -> None:
    """Raise SchemaMismatchError unless ``schema`` (a StructType) has exactly the declared
    columns with the declared types (order-insensitive; nullability is checked on write)."""
    declared = {f.name: f.dataType for f in spec.spark_schema().fields}
    actual = {f.name: f.dataType for f in schema.fields}
    problems: list[str] = []
    for name in declared.keys() - actual.keys():
        problems.append(f"missing column {name!r} ({declared[name].simpleString()})")
    for name in actual.keys() - declared.keys():
        problems.append(f"undeclared column {name!r} ({actual[name].simpleString()})")
    for name in declared.keys() & actual.keys():
        if not same_type(declared[name], actual[name]):
            problems.append(
                f"column {name!r}: declared {declared[name].simpleString()}, got {actual[name].simpleString()}"
            )
    if problems:
        raise SchemaMismatchError(
            f"DataFrame does not match the declaration of {spec.qualified_name} (schemas/): " + "; ".join(sorted(problems))
        )


def same_type(a: DataType, b: DataType) -> bool:
    """Spark types equal up to the nullability of array elements / map values."""
    from pyspark.sql import types as T

    if isinstance(a, T.ArrayType) and isinstance(b, T.ArrayType):
        return same_type(a.elementType, b.elementType)
    if isinstance(a, T.MapType) and isinstance(b, T.MapType):
        return same_type(a.keyType, b.keyType) and same_type(a.valueType, b.valueType)
    return bool(a == b)
