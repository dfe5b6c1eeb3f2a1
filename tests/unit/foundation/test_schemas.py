import pyarrow as pa
import pytest
from pyspark.sql import types as T

from catalog2vec.lakehouse.table import Column, SchemaMismatchError, TableSpec, check_spark_schema
from catalog2vec.schemas import TABLES, get

CONTRACT = {
    "bronze.catalog_items": ("item_id",),
    "bronze.quarantine": ("job", "source", "record_sha256"),
    "silver.catalog_tokens": ("item_id",),
    "silver.vocab": ("vocab_version", "token"),
    "silver.item_labels": ("vocab_version", "item_id"),
    "silver.images": ("item_id",),
    "gold.item_embeddings": ("model_version", "item_id"),
    "gold.item_tags": ("model_version", "item_id", "tag"),
}


@pytest.mark.parametrize("name,key", sorted(CONTRACT.items()))
def test_design_contract_tables_are_declared(name, key):
    spec = get(name)
    assert spec.key == key
    assert spec.spark_schema().fieldNames() == spec.column_names
    assert spec.arrow_schema().names == spec.column_names


def test_every_declaration_converts():
    for spec in TABLES.values():
        assert len(spec.spark_schema().fields) == len(spec.columns)
        assert isinstance(spec.arrow_schema(), pa.Schema)


def test_types_map_to_spark_and_arrow():
    spec = TableSpec(
        "x",
        "t",
        (Column("a", "string", False), Column("v", "array<float>"), Column("m", "map<string,string>"), Column("n", "long")),
        key=("a",),
    )
    st = spec.spark_schema()
    assert st["v"].dataType == T.ArrayType(T.FloatType(), True)
    assert st["m"].dataType == T.MapType(T.StringType(), T.StringType(), True)
    assert st["a"].nullable is False
    assert spec.arrow_schema().field("n").type == pa.int64()


def test_bad_declarations_rejected():
    with pytest.raises(ValueError, match="unsupported column type"):
        TableSpec("x", "t", (Column("a", "varchar"),), key=("a",))
    with pytest.raises(ValueError, match="not declared"):
        TableSpec("x", "t", (Column("a", "string"),), key=("b",))


def test_mismatch_message_names_every_problem():
    spec = get("silver.vocab")
    schema = T.StructType(
        [
            T.StructField("vocab_version", T.StringType()),
            T.StructField("token", T.StringType()),
            T.StructField("index", T.StringType()),  # wrong type
            T.StructField("count", T.LongType()),
            T.StructField("bogus", T.LongType()),  # undeclared
        ]
    )  # doc_freq missing
    with pytest.raises(SchemaMismatchError) as err:
        check_spark_schema(spec, schema)
    msg = str(err.value)
    assert "silver.vocab" in msg and "doc_freq" in msg and "bogus" in msg and "'index'" in msg


def test_upkeep_is_declared_for_every_table() -> None:
    from catalog2vec.lakehouse.table import interval_hours

    for name, spec in TABLES.items():
        assert spec.deleted_file_retention_hours == 168.0, name
        assert interval_hours(spec.properties["delta.logRetentionDuration"]) == 30 * 24, name
        if spec.layer == "gold":
            assert spec.properties["delta.enableChangeDataFeed"] == "true", name
            assert spec.partition_by == (spec.version_column,), name
    assert TABLES["silver.images"].zorder_by == ("item_id",)
    assert interval_hours("interval 12 hours") == 12.0 and interval_hours("INTERVAL 2 weeks") == 336.0
    with pytest.raises(ValueError, match="unsupported Delta interval"):
        interval_hours("7 days")
    cols = (Column("v", "string", False), Column("id", "string", False))
    with pytest.raises(ValueError, match="cannot also be a Z-order column"):
        TableSpec("gold", "t", cols, key=("v",), partition_by=("v",), zorder_by=("v",))
    with pytest.raises(ValueError, match="unsupported Delta interval"):
        TableSpec("gold", "t", cols, key=("v",), properties={"delta.logRetentionDuration": "forever"})
