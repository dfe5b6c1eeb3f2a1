"""Table declarations: the column list, key and partitioning of one lakehouse table.

A declaration converts to a Spark ``StructType`` and to a ``pyarrow.Schema`` from one source of
truth (``schemas/``). Supported column types: string, long, int, double, float, boolean,
timestamp, date, binary, array<T>, map<string,T>.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


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

    @property
    def qualified_name(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def relpath(self) -> str:
        return f"{self.layer}/{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def spark_schema(self) -> Any:
        from pyspark.sql import types as T

        return T.StructType([T.StructField(c.name, _spark_type(c.type), c.nullable) for c in self.columns])

    def arrow_schema(self) -> Any:
        import pyarrow as pa

        return pa.schema([pa.field(c.name, _arrow_type(c.type), c.nullable) for c in self.columns])

    def __post_init__(self) -> None:
        names = self.column_names
        if len(set(names)) != len(names):
            raise ValueError(f"{self.qualified_name}: duplicate column names")
        for k in (*self.key, *self.partition_by):
            if k not in names:
                raise ValueError(f"{self.qualified_name}: key/partition column {k!r} is not declared")
        for c in self.columns:
            _parse(c.type)  # validates


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


def _spark_type(tp: str) -> Any:
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


def _arrow_type(tp: str) -> Any:
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


def check_spark_schema(spec: TableSpec, schema: Any) -> None:
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
        if not _same_type(declared[name], actual[name]):
            problems.append(
                f"column {name!r}: declared {declared[name].simpleString()}, got {actual[name].simpleString()}"
            )
    if problems:
        raise SchemaMismatchError(
            f"DataFrame does not match the declaration of {spec.qualified_name} (schemas/): " + "; ".join(sorted(problems))
        )


def _same_type(a: Any, b: Any) -> bool:
    from pyspark.sql import types as T

    if isinstance(a, T.ArrayType) and isinstance(b, T.ArrayType):
        return _same_type(a.elementType, b.elementType)
    if isinstance(a, T.MapType) and isinstance(b, T.MapType):
        return _same_type(a.keyType, b.keyType) and _same_type(a.valueType, b.valueType)
    return bool(a == b)
