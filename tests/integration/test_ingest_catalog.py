"""ingest_catalog end to end on real Spark + Delta: the real sample, a file of deliberately bad
records (every documented reason), idempotence, latest-wins dedupe, and JVM-free reads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import ingest_catalog
import pytest

from catalog2vec.lakehouse import delta_version, read_arrow, read_table, write_table
from catalog2vec.lakehouse.table import SchemaMismatchError
from catalog2vec.schemas import bronze
from tests.conftest import MYNTRA_MAPPING

pytestmark = pytest.mark.spark

BAD_CSV = (
    b"id,productDisplayName,description,articleType,crawled_at\n"
    b"1,Red Shirt,a nice red shirt,Shirts,2024-01-01T00:00:00\n"
    b'2,Blue Jeans,"denim, washed",Jeans,2024-01-01T00:00:00\n'
    b"3,too,many,fields,here,extra\n"  # malformed_record
    b",No Id Title,desc,Tops,2024-01-01\n"  # missing_item_id
    b"4,,,Tops,2024-01-01\n"  # no_text
    b"5,Bad \xff\xfe bytes,x,Tops,2024-01-01\n"  # invalid_utf8
    b"1,Red Shirt v2,an updated red shirt,Shirts,2024-02-01T00:00:00\n"  # newer duplicate: wins
    b"1,Red Shirt old,an old red shirt,Shirts,2023-01-01T00:00:00\n"  # older duplicate
    b"6,short\n"  # malformed_record
    b"7," + b"T" * 150 + b",long title,Tops,2024-01-01\n"  # field_too_large (limit 100 below)
)


def _ingest(lakehouse: Path, *args: str, run_id: str = "r1") -> int:
    return ingest_catalog.main(["--lakehouse", str(lakehouse), "--run-id", run_id, *args])


def _rows(spark, lakehouse, spec):
    return sorted(tuple(r) for r in read_table(spark, lakehouse, spec).drop("run_id", "ingested_at", "quarantined_at").collect())


def test_sample_catalog(spark, lakehouse, examples_dir, capsys):
    rc = _ingest(
        lakehouse,
        "--input", str(examples_dir / "styles.csv"), "--format", "csv",
        "--mapping", MYNTRA_MAPPING, "--source", "myntra_sample", "--image-template", "images/{item_id}.jpg",
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "read=384 written=384 quarantined=0 duplicates=0" in out
    df = read_table(spark, lakehouse, bronze.CATALOG_ITEMS)
    assert df.count() == 384
    assert set(df.columns) == set(bronze.CATALOG_ITEMS.column_names)
    rows = df.collect()
    sample = {r.item_id: r for r in rows}
    r = sample["10039"]
    assert r.title == "Reebok Men Raceon White Sports Shoes"
    assert (r.category, r.color, r.gender, r.source) == ("Sports Shoes", "White", "Men", "myntra_sample")
    assert r.extra["masterCategory"] == "Footwear" and r.extra["usage"] == "Sports"
    assert all(os.path.isfile(x.image_uri) for x in rows), "image template must resolve to the real files"
    assert r.crawled_at is not None  # file modification time when the feed has none


def test_bad_records_fully_accounted(spark, lakehouse, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(BAD_CSV)
    rc = _ingest(
        lakehouse, "--input", str(bad), "--format", "csv", "--mapping", "id=item_id,productDisplayName=title",
        "--set", "ingest.max_field_chars=100",
    )
    assert rc == 0
    assert "read=10 written=2 quarantined=6 duplicates=2" in capsys.readouterr().out
    q = read_table(spark, lakehouse, bronze.QUARANTINE).collect()
    reasons = sorted(r.reason for r in q)
    assert reasons == sorted(
        ["malformed_record", "malformed_record", "missing_item_id", "no_text", "invalid_utf8", "field_too_large"]
    )
    by_reason = {r.reason: r for r in q}
    assert by_reason["no_text"].item_id == "4"
    assert by_reason["field_too_large"].detail.endswith("title")
    assert {r.record for r in q if r.reason == "malformed_record"} == {"3,too,many,fields,here,extra", "6,short"}
    assert all(r.source == "bad" and r.job == "ingest_catalog" for r in q)
    items = {r.item_id: r for r in read_table(spark, lakehouse, bronze.CATALOG_ITEMS).collect()}
    assert set(items) == {"1", "2"}
    assert items["1"].title == "Red Shirt v2"  # latest crawled_at wins
    assert items["1"].extra == {"articleType": "Shirts"}


def test_rerun_is_idempotent(spark, lakehouse, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(BAD_CSV)
    args = ["--input", str(bad), "--format", "csv", "--mapping", "id=item_id,productDisplayName=title",
            "--set", "ingest.max_field_chars=100"]
    assert _ingest(lakehouse, *args, run_id="first") == 0
    items1, q1 = _rows(spark, lakehouse, bronze.CATALOG_ITEMS), _rows(spark, lakehouse, bronze.QUARANTINE)
    v_items, v_q = delta_version(lakehouse, bronze.CATALOG_ITEMS), delta_version(lakehouse, bronze.QUARANTINE)
    assert _ingest(lakehouse, *args, run_id="second") == 0
    assert _rows(spark, lakehouse, bronze.CATALOG_ITEMS) == items1
    assert _rows(spark, lakehouse, bronze.QUARANTINE) == q1
    # unchanged rows are not rewritten: the lineage still names the first run
    assert {r.run_id for r in read_table(spark, lakehouse, bronze.CATALOG_ITEMS).collect()} == {"first"}
    # a re-run on unchanged input commits nothing at all: no new Delta version of either table
    assert delta_version(lakehouse, bronze.CATALOG_ITEMS) == v_items
    assert delta_version(lakehouse, bronze.QUARANTINE) == v_q


def test_older_crawl_does_not_overwrite_newer(spark, lakehouse, tmp_path):
    new = tmp_path / "new.csv"
    new.write_text("id,productDisplayName,crawled_at\n1,Newest title,2025-01-01T00:00:00\n")
    old = tmp_path / "old.csv"
    old.write_text("id,productDisplayName,crawled_at\n1,Stale title,2020-01-01T00:00:00\n")
    m = ["--format", "csv", "--mapping", "id=item_id,productDisplayName=title"]
    assert _ingest(lakehouse, "--input", str(new), *m) == 0
    assert _ingest(lakehouse, "--input", str(old), *m) == 0
    assert [r.title for r in read_table(spark, lakehouse, bronze.CATALOG_ITEMS).collect()] == ["Newest title"]


def test_json_lines_with_broken_line(spark, lakehouse, tmp_path, capsys):
    p = tmp_path / "feed.jsonl"
    lines = [
        json.dumps({"sku": "a1", "name": "Floral Summer Dress", "desc": "cotton", "price": 19.9, "tags": ["x"]}),
        '{"sku": "a2", "name": "broken',  # unparseable JSON
        json.dumps({"sku": "a3", "name": "Black Leather Belt"}),
    ]
    p.write_text("\n".join(lines) + "\n")
    rc = _ingest(lakehouse, "--input", str(p), "--format", "json", "--mapping", "sku=item_id,name=title,desc=description")
    assert rc == 0
    assert "read=3 written=2 quarantined=1 duplicates=0" in capsys.readouterr().out
    items = {r.item_id: r for r in read_table(spark, lakehouse, bronze.CATALOG_ITEMS).collect()}
    assert items["a1"].extra == {"price": "19.9", "tags": '["x"]'}
    q = read_table(spark, lakehouse, bronze.QUARANTINE).collect()
    assert [(r.reason, r.record) for r in q] == [("malformed_record", '{"sku": "a2", "name": "broken')]


def test_parquet_input_and_bad_mapping(spark, lakehouse, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "feed.parquet"
    pq.write_table(pa.table({"item_id": ["p1", "p2"], "title": ["Grey Wool Sweater", None], "n": [1, 2]}), p)
    assert _ingest(lakehouse, "--input", str(p), "--format", "parquet") == 0
    assert "read=2 written=1 quarantined=1 duplicates=0" in capsys.readouterr().out
    assert _ingest(lakehouse, "--input", str(p), "--format", "parquet", "--mapping", "nope=title") == 2
    assert "not in input columns" in capsys.readouterr().err


def test_deltalake_reader_matches_spark(spark, lakehouse, examples_dir):
    assert _ingest(lakehouse, "--input", str(examples_dir / "styles.csv"), "--format", "csv", "--mapping", MYNTRA_MAPPING) == 0
    via_spark = sorted((r.item_id, r.title, r.color) for r in read_table(spark, lakehouse, bronze.CATALOG_ITEMS).collect())
    arrow = read_arrow(lakehouse, bronze.CATALOG_ITEMS, columns=["item_id", "title", "color"])
    via_rs = sorted(zip(*[arrow[c].to_pylist() for c in ("item_id", "title", "color")], strict=True))
    assert via_spark == via_rs and len(via_rs) == 384
    from catalog2vec.lakehouse import duckdb_connect

    con = duckdb_connect(lakehouse)
    ((n,),) = con.execute("select count(*) from bronze.catalog_items where color = 'Black'").fetchall()
    assert n == sum(1 for r in via_rs if r[2] == "Black") > 0


def test_write_through_declaration_rejects_mismatch(spark, lakehouse):
    df = spark.createDataFrame([("t", "x", "oops")], "vocab_version string, token string, index string")
    with pytest.raises(SchemaMismatchError, match=r"silver\.vocab"):
        from catalog2vec.schemas import silver

        write_table(spark, df, silver.VOCAB, lakehouse)
