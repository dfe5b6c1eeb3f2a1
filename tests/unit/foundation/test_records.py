"""The pure record parser (catalog2vec.ingest.records): strict JSON lines, CSV that resyncs after a
broken quote, Parquet as text, the id policy, image-path templating and crawled_at checks."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from catalog2vec.ingest import records as R
from catalog2vec.quality import Reason

CANON = ("item_id", "title", "description", "image_uri", "crawled_at")


@pytest.mark.parametrize(
    "line,reason",
    [
        (b'{"item_id": "1", "title": "broken', Reason.MALFORMED_RECORD),
        (b"{'item_id': '1'}", Reason.MALFORMED_RECORD),  # single-quoted pseudo-JSON
        (b'{"item_id": "1"} trailing', Reason.MALFORMED_RECORD),
        (b'[{"item_id": "1"}, {"item_id": "2"}]', Reason.MALFORMED_RECORD),  # not two items
        (b'"a string"', Reason.MALFORMED_RECORD),
        (b'{"item_id": "1", "p": NaN}', Reason.MALFORMED_RECORD),
        (b'{"item_id": "1", "t": "tab\there"}', Reason.MALFORMED_RECORD),  # raw control character
        (b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", Reason.MALFORMED_RECORD),  # nesting bomb
        (b'{"item_id": "1", "title": "x", "title": "y"}', Reason.DUPLICATE_KEY),
        (b'{"item_id": "1", "m": {"k": 1, "k": 2}}', Reason.DUPLICATE_KEY),
        (b'{"item_id": "1", "title": "\xff"}', Reason.INVALID_UTF8),
        (b'{"item_id": "1", "title": "\\udc80"}', Reason.INVALID_UTF8),  # a \u escape that is no character
    ],
)
def test_json_line_rejections(line: bytes, reason: Reason) -> None:
    rec = R.parse_json_line(line)
    assert rec is not None and rec.fields is None and rec.reason == reason and rec.detail
    assert rec.raw == line


def test_json_line_values_keep_their_text() -> None:
    rec = R.parse_json_line(b'\xef\xbb\xbf{"item_id": 12, "p": 19.90, "ok": true, "n": null, "t": [1, 2.50], "o": {"a": "\xc3\xa9"}}\r')
    assert rec is not None and rec.reason is None
    assert rec.fields == {"item_id": "12", "p": "19.90", "ok": "true", "n": None, "t": "[1,2.5]", "o": '{"a":"é"}'}
    assert R.parse_json_line(b"   ") is None and R.parse_json_line(b"") is None  # blank lines are not records


def test_csv_broken_quote_swallows_nothing() -> None:
    data = (
        b"\xef\xbb\xbfitem_id,title,description\r\n"
        b'1,"Broken quote,desc\n'
        b"2,Next row,kept\n"
        b'3,"two\nlines",ok\n'
        b'4,Shirt 17" collar,literal quote\n'
        b"5,Bad \xff bytes,x\n"
        b"6,too,many,fields\n"
        b"\n"
        b"7,short\n"
        b"8,last,row"
    )
    recs = list(R.iter_csv_records(data))
    got = [(r.fields["item_id"] if r.fields else r.raw, r.reason) for r in recs]
    assert got == [
        (b'1,"Broken quote,desc', Reason.MALFORMED_RECORD),
        ("2", None),
        ("3", None),
        ("4", None),
        (b"5,Bad \xff bytes,x", Reason.INVALID_UTF8),
        (b"6,too,many,fields", Reason.MALFORMED_RECORD),
        (b"7,short", Reason.MALFORMED_RECORD),
        ("8", None),
    ]
    assert recs[2].fields == {"item_id": "3", "title": "two\nlines", "description": "ok"}
    assert recs[3].fields["title"] == 'Shirt 17" collar'
    assert "ran over" in (recs[0].detail or "")


def test_csv_repeated_header_column_is_duplicate_key() -> None:
    recs = list(R.iter_csv_records(b"item_id,title,title\n1,a,b\n"))
    assert [r.reason for r in recs] == [Reason.DUPLICATE_KEY]


def test_parquet_as_text(tmp_path: Path) -> None:
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({
        "item_id": ["a", "b"], "title": pa.array([b"ok", b"\xff"], pa.binary()), "n": [1, None],
        "ts": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5)] * 2, pa.timestamp("us")), "l": [["x"], []],
    }), buf)
    recs = list(R.iter_parquet_records(buf.getvalue()))
    assert recs[0].fields == {"item_id": "a", "title": "ok", "n": "1", "ts": "2024-01-02T03:04:05", "l": '["x"]'}
    assert recs[1].reason == Reason.INVALID_UTF8
    bad = list(R.iter_parquet_records(b"PAR1 not parquet"))
    assert len(bad) == 1 and bad[0].reason == Reason.MALFORMED_RECORD


def _row(fields: dict[str, str | None], **rules: object) -> dict[str, object]:
    return R.canonical_row(R.Record(b"", fields=fields), CANON, R.CanonicalRules(**rules))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "item_id,reason",
    [
        ("\t\t", "missing_item_id"),
        ("\u00a0\u200b ", "missing_item_id"),
        ("a\x00b", "invalid_id"),
        ("a\u202eb", "invalid_id"),  # bidi override (format character)
        ("a\u2028b", "invalid_id"),  # line separator
        ("x" * 257, "invalid_id"),
        ("x" * 256, None),
        ("../../etc/passwd", None),  # ids are data, not paths
        ("*", None),
        ("[ab]", None),
        ("👗 42", None),
    ],
)
def test_id_policy(item_id: str, reason: str | None) -> None:
    assert _row({"item_id": item_id, "title": "Red shirt"})["_reason"] == reason


def test_whitespace_text_is_blank_and_ids_are_stripped() -> None:
    assert _row({"item_id": "1", "title": "\t", "description": "\u200b\n"})["_reason"] == "no_text"
    assert _row({"item_id": "\t 7 \u00a0", "title": "x"})["item_id"] == "7"


def test_template_cannot_escape_or_glob() -> None:
    rules = {"image_template": "images/{item_id}.jpg", "base_dir": "/in"}
    assert _row({"item_id": "../../etc/passwd", "title": "x"}, **rules)["image_uri"] == "/in/images/..%2F..%2Fetc%2Fpasswd.jpg"
    assert _row({"item_id": "..", "title": "x"}, **rules)["image_uri"] == "/in/images/%2E%2E.jpg"
    assert _row({"item_id": "a\\b%", "title": "x"}, **rules)["image_uri"] == "/in/images/a%5Cb%25.jpg"
    assert _row({"item_id": "*", "title": "x"}, **rules)["image_uri"] == "/in/images/*.jpg"  # literal, never globbed


@pytest.mark.parametrize(
    "uri,expect",
    [
        ("img/a.jpg", ("/in/img/a.jpg", None)),
        ("file:///in/a.jpg", ("/in/a.jpg", None)),
        ("/data/pics/a.jpg", ("/data/pics/a.jpg", None)),  # inside an image root
        ("s3://bucket/a.jpg", ("s3://bucket/a.jpg", None)),
        ("../a.jpg", (None, "outside")),
        ("img/../../a.jpg", (None, "outside")),
        ("/etc/passwd", (None, "outside")),
        ("img/a\x00.jpg", (None, "control")),
    ],
)
def test_image_path_policy(uri: str, expect: tuple[str | None, str | None]) -> None:
    path, why = R.resolve_image_path(uri, "/in", ("/data/pics",))
    assert path == expect[0]
    assert (why is None) == (expect[1] is None) and (expect[1] is None or expect[1] in (why or ""))


@pytest.mark.parametrize(
    "value,ok",
    [("2024-01-01", True), ("2024-01-01T10:00:00Z", True), ("2024-01-01 10:00:00+02:00", True),
     ("yesterday", False), ("0001-01-01T00:00:00", False), ("1700000000", False), ("", True)],
)
def test_crawled_at(value: str, ok: bool) -> None:
    reason = _row({"item_id": "1", "title": "x", "crawled_at": value})["_reason"]
    assert (reason is None) == ok and (ok or reason == "invalid_timestamp")


def test_raw_bytes_are_kept_losslessly() -> None:
    raw = b"1,Bad \xff\xfe,x"
    assert R.raw_text(raw) == "1,Bad \\xff\\xfe,x" and R.raw_bytes_if_not_utf8(raw) == raw
    assert R.raw_bytes_if_not_utf8("é".encode()) is None
