"""The pure record parser (catalog2vec.ingest.formats, .image_paths, .canonical): strict JSON lines, CSV that resyncs after a
broken quote, Parquet as text, the id policy, image-path templating and crawled_at checks."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from catalog2vec.ingest import canonical, formats, image_paths
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
    rec = formats.parse_json_line(line)
    assert rec is not None and rec.fields is None and rec.reason == reason and rec.detail
    assert rec.raw == line


def test_json_line_values_keep_their_text() -> None:
    rec = formats.parse_json_line(b'\xef\xbb\xbf{"item_id": 12, "p": 19.90, "ok": true, "n": null, "t": [1, 2.50], "o": {"a": "\xc3\xa9"}}\r')
    assert rec is not None and rec.reason is None
    assert rec.fields == {"item_id": "12", "p": "19.90", "ok": "true", "n": None, "t": "[1,2.5]", "o": '{"a":"é"}'}
    assert formats.parse_json_line(b"   ") is None and formats.parse_json_line(b"") is None  # blank lines are not records


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
    recs = list(formats.iter_csv_records(data))
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
    recs = list(formats.iter_csv_records(b"item_id,title,title\n1,a,b\n"))
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
    recs = list(formats.iter_parquet_records(buf.getvalue()))
    assert recs[0].fields == {"item_id": "a", "title": "ok", "n": "1", "ts": "2024-01-02T03:04:05", "l": '["x"]'}
    assert recs[1].reason == Reason.INVALID_UTF8
    bad = list(formats.iter_parquet_records(b"PAR1 not parquet"))
    assert len(bad) == 1 and bad[0].reason == Reason.MALFORMED_RECORD


def _row(fields: dict[str, str | None], **rules: object) -> dict[str, object]:
    return canonical.canonical_row(formats.Record(b"", fields=fields), CANON, canonical.CanonicalRules(**rules))  # type: ignore[arg-type]


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
        ("/data/pics/a.jpg", ("/data/pics/a.jpg", None)),  # inside an image root
        ("../a.jpg", (None, "outside")),
        ("img/../../a.jpg", (None, "outside")),
        ("/etc/passwd", (None, "outside")),
        ("img/a\x00.jpg", (None, "control")),
        # every URI scheme is refused unless allow-listed: nothing a crawled row names is opened
        ("file:///in/a.jpg", (None, "'file' is not in ingest.image_schemes")),
        ("local:///etc/passwd", (None, "'local' is not in ingest.image_schemes")),
        ("memory://x", (None, "'memory' is not in ingest.image_schemes")),
        ("http://127.0.0.1:8080/secret", (None, "'http' is not in ingest.image_schemes")),
        ("HTTPS://example.com/a.jpg", (None, "'HTTPS' is not in ingest.image_schemes")),
        ("s3://bucket/a.jpg", (None, "'s3' is not in ingest.image_schemes")),
        ("a::b", (None, "chains filesystems")),
        ("simplecache::s3://bucket/a.jpg", (None, "chains filesystems")),
        ("img/a.jpg::local:///etc/passwd", (None, "chains filesystems")),
    ],
)
def test_image_path_policy(uri: str, expect: tuple[str | None, str | None]) -> None:
    path, why = image_paths.resolve_image_path(uri, "/in", image_paths.ImagePolicy(roots=("/data/pics",)))
    assert path == expect[0]
    assert (why is None) == (expect[1] is None) and (expect[1] is None or expect[1] in (why or ""))
    if why and uri.isprintable():  # the quarantine detail names the URI
        assert uri[:20] in why


@pytest.mark.parametrize(
    "uri,allowed",
    [
        ("s3://shop-images/img/a.jpg", True),
        ("s3a://shop-images/img/a.jpg", True),  # one scheme family: s3 = s3a = s3n
        ("s3://shop-images/img", True),
        ("s3://shop-images/img-private/a.jpg", False),  # a prefix ends at a segment boundary
        ("s3://other-bucket/img/a.jpg", False),
        ("s3://shop-images/img/../secret/a.jpg", False),  # no .. segments
        ("s3://shop-images/img/a.jpg::local:///etc/passwd", False),
        ("gs://shop-images/img/a.jpg", False),
        ("memory://shop-images/img/a.jpg", False),
        ("file:///shop-images/img/a.jpg", False),
    ],
)
def test_image_scheme_allow_list_with_prefixes(uri: str, allowed: bool) -> None:
    policy = image_paths.ImagePolicy(schemes=("s3",), prefixes=("s3://shop-images/img",))
    path, why = image_paths.resolve_image_path(uri, "/in", policy)
    assert (path == uri and why is None) if allowed else (path is None and why and uri[:12] in why)


def test_uri_image_roots_admit_their_folder_only() -> None:
    policy = image_paths.ImagePolicy(roots=("s3://b/pics",))  # no scheme listed: the root alone admits
    assert policy.refuse_uri("s3://b/pics/a.jpg") is None
    assert policy.refuse_uri("s3://b/other/a.jpg") and policy.refuse_uri("s3://b/pics/../x/a.jpg")
    assert image_paths.resolve_image_path("pics/a.jpg", "s3://b")[0] == "s3://b/pics/a.jpg"  # relative under an s3 input


def test_image_policy_from_config() -> None:
    from catalog2vec.config import IngestSection
    from catalog2vec.errors import InvalidInput

    assert image_paths.ImagePolicy.from_config(IngestSection(), "/tmp/lake").schemes == ()  # local lakehouse: no URI
    assert image_paths.ImagePolicy.from_config(IngestSection(), "s3a://b/lake").schemes == ("s3a",)  # its own store
    assert image_paths.ImagePolicy.from_config(IngestSection(), "memory://lake").schemes == ()  # not an object store
    on_s3 = image_paths.ImagePolicy.from_config(IngestSection(), "s3a://b/lake")
    assert on_s3.refuse_uri("s3://b/img/a.jpg") is None and on_s3.refuse_uri("http://b/a.jpg")
    explicit = image_paths.ImagePolicy.from_config(IngestSection(image_schemes=["https"]), "s3a://b/lake")
    assert explicit.refuse_uri("https://cdn.example/a.jpg") is None and explicit.refuse_uri("s3://b/a.jpg")
    for bad in (IngestSection(image_schemes=["file"]), IngestSection(image_schemes=["local"]),
                IngestSection(image_schemes=["s3"], image_prefixes=["gs://b/x"])):
        with pytest.raises(InvalidInput, match=r"ingest\.image_"):
            image_paths.ImagePolicy.from_config(bad, "/tmp/lake")


def test_templated_uri_passes_the_allow_list() -> None:
    rules = {"image_template": "memory://x/{item_id}.jpg", "base_dir": "/in"}
    row = _row({"item_id": "1", "title": "x"}, **rules)
    assert row["_reason"] == "image_path_invalid" and "memory://x/1.jpg" in row["_detail"]
    ok = _row({"item_id": "1", "title": "x"}, images=image_paths.ImagePolicy(schemes=("s3",)),
              image_template="s3://b/{item_id}.jpg", base_dir="/in")
    assert ok["_reason"] is None and ok["image_uri"] == "s3://b/1.jpg"
    outside = _row({"item_id": "1", "title": "x"}, image_template="/etc/{item_id}", base_dir="/in")
    assert outside["_reason"] == "image_path_invalid"


# ------------------------------------------------------------------ bounds
def test_deep_json_is_malformed_without_recursion() -> None:
    import sys

    for depth in (65, 400, 1000, 100_000):
        line = b'{"item_id": "1", "n": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
        rec = formats.parse_json_line(line)
        assert rec is not None and rec.reason == Reason.MALFORMED_RECORD and "max_json_depth=64" in (rec.detail or "")
    ok = b'{"item_id": "1", "n": ' + b"[" * 63 + b"]" * 63 + b"}"  # 64 levels with the object itself
    assert formats.parse_json_line(ok).fields["n"] == "[" * 63 + "]" * 63  # type: ignore[union-attr]
    # brackets inside strings are text, not nesting
    assert formats.parse_json_line(b'{"item_id": "1", "t": "' + b"[{" * 500 + b'"}').reason is None  # type: ignore[union-attr]
    # escaped quotes and backslashes: brackets after a closing quote count, inside a string they do not
    assert formats.json_too_deep('{"a": "x\\\\"' + "[" * 70 + "]" * 70 + "}", 64)
    assert not formats.json_too_deep('{"a": "x\\"' + "[" * 70 + '"}', 64)
    # linear time on adversarial text (a backtracking string regex took 10 s on 20 KB of \")
    import time

    start = time.perf_counter()
    for text in ('{"a": "' + '\\"' * 500_000 + "[" * 100, '"' * 1_000_000 + "[" * 100, "[" * 1_000_000):
        assert formats.json_too_deep(text, 64)
    assert time.perf_counter() - start < 5
    # a tighter cap, and a walk that stays iterative even under a low recursion limit
    assert formats.parse_json_line(b'{"a": {"b": {}}}', bounds=formats.Bounds(max_json_depth=2)).reason == Reason.MALFORMED_RECORD  # type: ignore[union-attr]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(120)
    try:
        assert formats.parse_json_line(b'{"a": ' + b"[" * 60 + b"]" * 60 + b"}").reason is None  # type: ignore[union-attr]
    finally:
        sys.setrecursionlimit(limit)


def test_record_too_large_json_csv_parquet() -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    bounds = formats.Bounds(max_record_chars=100)
    big = b'{"item_id": "1", "title": "' + b"x" * 100 + b'"}'
    rec = formats.parse_json_line(big, bounds=bounds)
    assert rec is not None and rec.reason == Reason.RECORD_TOO_LARGE and "max_record_chars=100" in (rec.detail or "")
    assert formats.parse_json_line(b'{"item_id": "1", "title": "' + "é".encode() * 40 + b'"}', bounds=bounds).reason is None  # type: ignore[union-attr]
    huge = b'{"item_id": "1", "t": "' + b"x" * 500 + b'"}'  # over 4 bytes per allowed character: not even decoded
    assert formats.parse_json_line(huge, bounds=bounds).reason == Reason.RECORD_TOO_LARGE  # type: ignore[union-attr]

    data = b"item_id,title\n1,short\n2," + b"y" * 150 + b'\n3,"' + b"z" * 60 + b'"\n4,' + b"w" * 99 + b"\n5,last\n"  # 4: each field fits, the record does not
    recs = list(formats.iter_csv_records(data, bounds))
    assert [(r.fields or {}).get("item_id") for r in recs] == ["1", None, "3", None, "5"]
    assert [r.reason for r in recs] == [None, Reason.RECORD_TOO_LARGE, None, Reason.RECORD_TOO_LARGE, None]
    import csv

    assert csv.field_size_limit() == 100  # the CSV field-size limit follows max_record_chars

    buf = io.BytesIO()
    pq.write_table(pa.table({"item_id": ["a", "b"], "title": ["ok", "v" * 200]}), buf)
    got = list(formats.iter_parquet_records(buf.getvalue(), bounds))
    assert [r.reason for r in got] == [None, Reason.RECORD_TOO_LARGE]
    # the default bounds (ad-hoc text pipelines) cap depth, not size: build_vocab truncates long text
    assert [r.reason for f, x in (("json", big), ("csv", data)) for r in formats.iter_records(x, f)] == [None] * 6


def test_extra_map_is_bounded() -> None:
    fields = {"item_id": "1", "title": "Red shirt", "blob": "b" * 200}
    row = _row(fields, max_record_chars=100)
    assert row["_reason"] == "record_too_large" and "extra map" in row["_detail"] and row["item_id"] == "1"
    assert _row(fields, max_record_chars=1000)["_reason"] is None


# ------------------------------------------------------------------ control characters
def test_control_characters_are_dropped_from_text() -> None:
    assert canonical.clean_text("Red\x1b[31m shirt\x07\x00\x7f\x9b") == "Red[31m shirt"
    assert canonical.clean_text("a\tb\nc\r\nd\re") == "a\tb\nc\nd\ne"  # tab and newline stay, CR becomes LF
    assert canonical.clean_text("Grüße 👗 \u00a0") == "Grüße 👗 \u00a0" and canonical.clean_text(None) is None
    row = _row({"item_id": "1", "title": "\x1b]0;pwned\x07Red shirt", "description": "ok\x9d"})
    assert row["_reason"] is None and row["title"] == "]0;pwnedRed shirt" and row["description"] == "ok"
    empty = _row({"item_id": "1", "title": "\x1b\x07", "description": "\x00\x1b"})
    assert empty["_reason"] == "no_text"  # nothing but control characters: the empty-record reason
    assert _row({"item_id": "1\x1b", "title": "x"})["_reason"] == "invalid_id"  # ids refuse them instead


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
    assert formats.raw_text(raw) == "1,Bad \\xff\\xfe,x" and formats.raw_bytes_if_not_utf8(raw) == raw
    assert formats.raw_bytes_if_not_utf8("é".encode()) is None
