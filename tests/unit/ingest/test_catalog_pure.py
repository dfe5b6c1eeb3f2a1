from pathlib import Path

import pytest

from catalog2vec.ingest.catalog import (
    IngestCounts,
    IngestError,
    input_base_dir,
    parse_mapping,
    resolve_inputs,
)
from catalog2vec.quality import Reason


def test_parse_mapping():
    m = parse_mapping("id=item_id, productDisplayName=title ,articleType=category")
    assert m == {"id": "item_id", "productDisplayName": "title", "articleType": "category"}
    assert parse_mapping(None) == {} and parse_mapping("") == {}


@pytest.mark.parametrize(
    "text,match",
    [
        ("id", "source_column=canonical_column"),
        ("id=sku", "not a canonical column"),
        ("id=item_id,sku=item_id", "mapped twice"),
        ("id=item_id,id=title", "mapped twice"),
    ],
)
def test_parse_mapping_rejects(text, match):
    with pytest.raises(IngestError, match=match):
        parse_mapping(text)


def test_input_resolution(tmp_path: Path):
    (tmp_path / "a.csv").write_text("x")
    (tmp_path / "b.csv").write_text("x")
    assert [Path(p).name for p in resolve_inputs(str(tmp_path / "*.csv"))] == ["a.csv", "b.csv"]
    assert input_base_dir(str(tmp_path / "*.csv")) == str(tmp_path.resolve())
    assert input_base_dir(str(tmp_path / "a.csv")) == str(tmp_path.resolve())
    with pytest.raises(IngestError, match="no input files"):
        resolve_inputs(str(tmp_path / "*.json"))


def test_counts_must_add_up():
    IngestCounts(10, 7, 2, 1).check()
    with pytest.raises(AssertionError):
        IngestCounts(10, 7, 2, 0).check()


def test_documented_reasons_are_stable():
    assert {r.value for r in Reason} >= {
        "malformed_record",
        "missing_item_id",
        "no_text",
        "field_too_large",
        "invalid_utf8",
        "no_vocab_words",
    }
