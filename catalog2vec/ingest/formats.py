"""The one parser of crawled catalog records: CSV, JSON lines and Parquet bytes → :class:`Record`
(pure Python; Spark and Beam call the same functions). What a parsed record becomes in
bronze/catalog_items is :mod:`catalog2vec.ingest.canonical`.

Every input record becomes exactly one :class:`Record`: either parsed ``fields`` (source column →
text) or a quarantine ``reason`` with the error in ``detail`` — one bad record never takes the
rest of its file down. The raw bytes travel with the record so the quarantine keeps them
losslessly (:func:`raw_text` / :func:`raw_bytes_if_not_utf8`).

Parsing rules (strict where a lenient parser would guess):

* **JSON lines**: one JSON *object* per line, RFC 8259 strict: no single quotes, no trailing
  garbage, no ``NaN``/``Infinity``, no raw control characters in strings; a top-level array,
  string or number is ``malformed_record``; a repeated key (at any depth) is ``duplicate_key``;
  bytes that are not UTF-8, or ``\\ud800``-style escapes that are not characters, are
  ``invalid_utf8``. Blank lines are not records. A UTF-8 BOM and CRLF line ends are accepted.
  Numbers and booleans keep their JSON text (``19.90`` stays ``"19.90"``), nested values become
  compact JSON text.
* **CSV**: RFC 4180 with a header line; quoted fields may span lines. A record that does not
  parse (unbalanced or stray quote) or has a different number of fields than the header is
  ``malformed_record`` *as its first physical line only*, and parsing resumes on the next line,
  so a broken quote never swallows the rows after it. Per-record ``invalid_utf8``; a header that
  repeats a column name makes every row of that file ``duplicate_key``. BOM and CRLF accepted;
  blank lines are not records.
* **Parquet**: every column as text (nested values as JSON); a file pyarrow cannot open is one
  ``malformed_record`` record, an unreadable row group one record per row group; binary values
  that are not UTF-8 make the row ``invalid_utf8``; repeated column names ``duplicate_key``.

Bounds (:class:`Bounds`, from ``[ingest]``): a record longer than ``max_record_chars`` characters
is ``record_too_large`` (JSON lines are measured before they are parsed; CSV fields are also
capped by ``csv.field_size_limit``); a JSON line nested deeper than ``max_json_depth`` is
``malformed_record``, found by a linear scan before ``json.loads`` and by an iterative walk, so no
input reaches Python's recursion limit.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from catalog2vec.errors import InvalidInput
from catalog2vec.quality import Reason

FORMATS = ("csv", "json", "parquet")  # what iter_records reads
BOM = "\ufeff"
# characters stripped from both ends of ids and counted as blank in text: Unicode White_Space
# (str.isspace) plus the zero-width ones crawlers leave behind
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
# linear-time (no backtracking) bracket counting: escape pairs out first, then "..." strings
_JSON_ESCAPE = re.compile(r"\\.", re.S)
_JSON_STRING = re.compile(r'"[^"]*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


@dataclass
class Record:
    """One input record: parsed ``fields`` or a ``reason``; ``raw`` = its bytes as received."""

    raw: bytes
    fields: dict[str, str | None] | None = None
    reason: Reason | None = None
    detail: str | None = None
    pos: int = 0  # line (CSV/JSON, 1-based) or row (Parquet, 0-based) in its file


@dataclass(frozen=True)
class Bounds:
    """How large one crawled record may be (``ingest.max_record_chars`` / ``max_json_depth``).

    The default has the depth cap but no size cap: the ad-hoc text pipelines (Beam
    ``text_vocab``, like Spark's readers in ``build_vocab``) truncate long text instead;
    ``ingest_catalog`` passes its ``[ingest]`` bounds."""

    max_record_chars: int = sys.maxsize
    max_json_depth: int = 64

    def too_large(self, n_chars: int) -> str | None:
        if n_chars > self.max_record_chars:
            return f"the record has {n_chars} characters (ingest.max_record_chars={self.max_record_chars})"
        return None


DEFAULT_BOUNDS = Bounds()


def strip_ws(text: str) -> str:
    return text.strip().strip(_ZERO_WIDTH).strip()


def is_blank(text: str | None) -> bool:
    return text is None or strip_ws(text) == ""


def is_utf8_clean(text: str) -> bool:
    """False for strings holding lone surrogates (undecodable bytes, ``\\ud800`` escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def raw_text(raw: bytes) -> str:
    """The record as valid UTF-8 text: bytes that are not UTF-8 written as ``\\xNN`` escapes."""
    return raw.decode("utf-8", "backslashreplace")


def raw_bytes_if_not_utf8(raw: bytes) -> bytes | None:
    """The raw bytes when :func:`raw_text` cannot stand for them losslessly, else ``None``."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    return None


def _bad_utf8_detail(exc: UnicodeDecodeError) -> str:
    return f"bytes that are not valid UTF-8 at offset {exc.start}: {exc.object[exc.start:exc.start + 8]!r}"


# ------------------------------------------------------------------ JSON lines
class _DuplicateKey(ValueError):
    pass


class _Float(float):
    """A JSON number that remembers its text (so ``19.90`` is kept as written)."""

    text: str

    def __new__(cls, text: str) -> _Float:
        obj = super().__new__(cls, text)
        obj.text = text
        return obj


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _Float):
        return value.text
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _too_deep(max_depth: int) -> str:
    return f"JSON nested deeper than ingest.max_json_depth={max_depth}"


def json_too_deep(text: str, max_depth: int) -> bool:
    """Whether the arrays and objects of JSON ``text`` nest deeper than ``max_depth`` — a linear
    scan that never recurses: strings blanked out, then brackets counted. (On text that is not
    JSON the answer is some guess; json.loads rejects such text anyway.)"""
    if text.count("[") + text.count("{") <= max_depth:
        return False
    depth = 0
    for ch in _NOT_BRACKET.sub("", _JSON_STRING.sub("", _JSON_ESCAPE.sub("", text))):
        if ch in "[{":
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def _bad_strings(value: Any, max_depth: int) -> tuple[Reason, str] | None:
    """Why a parsed JSON value is refused (a lone surrogate: ``invalid_utf8``; nested deeper than
    ``max_depth``: ``malformed_record``), or None. Iterative: an explicit stack, no recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if not is_utf8_clean(node):
                return Reason.INVALID_UTF8, "a \\u escape that is not a Unicode character (lone surrogate)"
        elif isinstance(node, (dict, list)):
            if depth > max_depth:
                return Reason.MALFORMED_RECORD, _too_deep(max_depth)
            if isinstance(node, dict):
                stack.extend((k, depth) for k in node)
                stack.extend((v, depth + 1) for v in node.values())
            else:
                stack.extend((v, depth + 1) for v in node)
    return None


def parse_json_line(raw: bytes, pos: int = 0, bounds: Bounds = DEFAULT_BOUNDS) -> Record | None:
    """One JSON-lines line → a :class:`Record`; ``None`` for a blank line (not a record)."""
    line = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    if len(line) > 4 * bounds.max_record_chars:  # more characters than that whatever the encoding
        return Record(raw, reason=Reason.RECORD_TOO_LARGE, detail=f"the record has {len(line)} bytes "
                      f"(ingest.max_record_chars={bounds.max_record_chars})", pos=pos)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Record(raw, reason=Reason.INVALID_UTF8, detail=_bad_utf8_detail(exc), pos=pos)
    if not text.strip():
        return None
    why = bounds.too_large(len(text))
    if why:
        return Record(raw, reason=Reason.RECORD_TOO_LARGE, detail=why, pos=pos)
    if json_too_deep(text, bounds.max_json_depth):
        return Record(raw, reason=Reason.MALFORMED_RECORD, detail=_too_deep(bounds.max_json_depth), pos=pos)
    try:
        obj = json.loads(text, object_pairs_hook=_pairs, parse_float=_Float, parse_constant=_no_constant)
    except _DuplicateKey as exc:
        return Record(raw, reason=Reason.DUPLICATE_KEY, detail=f"key {str(exc)[:200]!r} appears twice", pos=pos)
    except (ValueError, RecursionError) as exc:
        return Record(raw, reason=Reason.MALFORMED_RECORD, detail=f"not JSON: {str(exc)[:300]}", pos=pos)
    if not isinstance(obj, dict):
        return Record(raw, reason=Reason.MALFORMED_RECORD,
                      detail=f"a JSON {type(obj).__name__}, not an object (one object per line)", pos=pos)
    bad = _bad_strings(obj, bounds.max_json_depth)
    if bad:
        return Record(raw, reason=bad[0], detail=bad[1], pos=pos)
    try:
        fields = {k: _json_text(v) for k, v in obj.items()}
    except (ValueError, RecursionError) as exc:  # pragma: no cover - depth already bounded
        return Record(raw, reason=Reason.MALFORMED_RECORD, detail=str(exc)[:300], pos=pos)
    return Record(raw, fields=fields, pos=pos)


def split_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Physical lines (``\\n``, ``\\r\\n`` or ``\\r`` ends, as Spark's text reader splits them)."""
    yield from enumerate(re.split(rb"\r\n|\n|\r", data), 1)


def iter_json_records(data: bytes, bounds: Bounds = DEFAULT_BOUNDS) -> Iterator[Record]:
    for pos, line in split_lines(data):
        rec = parse_json_line(line, pos, bounds)
        if rec is not None:
            yield rec


# ------------------------------------------------------------------ CSV
def _csv_lines(data: bytes) -> list[str]:
    """Lines with their ends kept (csv needs them to see quoted line breaks); bytes that are not
    UTF-8 survive as surrogate escapes so each record can be judged (and restored) on its own."""
    text = data.decode("utf-8", "surrogateescape")
    if text.startswith(BOM):
        text = text[1:]
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def _restore(lines: list[str]) -> bytes:
    return "".join(lines).rstrip("\r\n").encode("utf-8", "surrogateescape")


def _read_one(lines: list[str], start: int) -> tuple[list[str] | None, int, str | None]:
    """Parse the record starting at ``lines[start]``: (row or None, lines consumed, error)."""
    consumed = 0

    def feed() -> Iterator[str]:
        nonlocal consumed
        for line in lines[start:]:
            consumed += 1
            yield line

    try:
        row = next(csv.reader(feed(), strict=True))
    except StopIteration:
        return None, max(consumed, 1), "unexpected end of file"
    except csv.Error as exc:
        return None, max(consumed, 1), str(exc)
    return row, max(consumed, 1), None


_CSV_FIELD_LIMIT = "field larger than field limit"


def iter_csv_records(data: bytes, bounds: Bounds = DEFAULT_BOUNDS) -> Iterator[Record]:
    # a field can never be longer than the record it belongs to (the limit is process-wide in csv)
    csv.field_size_limit(bounds.max_record_chars)
    lines = _csv_lines(data)
    i, header = 0, None
    while i < len(lines) and header is None:
        row, used, err = _read_one(lines, i)
        if err is not None:
            # an unreadable header: no row of this file can be mapped
            for j in range(i, len(lines)):
                if lines[j].strip():
                    yield Record(_restore([lines[j]]), reason=Reason.MALFORMED_RECORD,
                                 detail=f"the header line does not parse: {err}", pos=j + 1)
            return
        i += used
        if row:
            header = row
    if header is None:
        return
    dup = sorted({h for h in header if header.count(h) > 1})
    clean_header = all(is_utf8_clean(h) for h in header)
    while i < len(lines):
        if not lines[i].strip("\r\n"):
            i += 1
            continue
        row, used, err = _read_one(lines, i)
        pos = i + 1
        if err is None and row is not None and len(row) == len(header):
            raw = _restore(lines[i:i + used])
            i += used
            why = bounds.too_large(len("".join(lines[i - used:i]).rstrip("\r\n")))
            if why:
                yield Record(raw, reason=Reason.RECORD_TOO_LARGE, detail=why, pos=pos)
            elif not clean_header or any(not is_utf8_clean(v) for v in row):
                try:
                    raw.decode("utf-8")
                    detail = "bytes that are not valid UTF-8"
                except UnicodeDecodeError as exc:
                    detail = _bad_utf8_detail(exc)
                yield Record(raw, reason=Reason.INVALID_UTF8, detail=detail, pos=pos)
            elif dup:
                yield Record(raw, reason=Reason.DUPLICATE_KEY, detail=f"the header repeats column(s) {dup}", pos=pos)
            else:
                yield Record(raw, fields=dict(zip(header, row, strict=True)), pos=pos)
            continue
        if err is None:
            err = f"{len(row or [])} fields, the header has {len(header)}"
        reason = Reason.MALFORMED_RECORD
        if _CSV_FIELD_LIMIT in err:
            reason, err = Reason.RECORD_TOO_LARGE, f"a field over ingest.max_record_chars={bounds.max_record_chars}"
        if used > 1:
            err += f" (a quoted field ran over {used} lines; only this line is rejected)"
        yield Record(_restore([lines[i]]), reason=reason, detail=err[:500], pos=pos)
        i += 1  # resync on the next physical line: a broken quote swallows nothing


# ------------------------------------------------------------------ Parquet
def _pq_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8")  # UnicodeDecodeError -> invalid_utf8 by the caller
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


def iter_parquet_records(data: bytes, bounds: Bounds = DEFAULT_BOUNDS) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(io.BytesIO(data))
        names = list(pf.schema_arrow.names)
    except Exception as exc:
        yield Record(b"", reason=Reason.MALFORMED_RECORD, detail=f"not a readable Parquet file: {exc}"[:500])
        return
    dup = sorted({n for n in names if names.count(n) > 1})
    pos = 0
    for rg in range(pf.num_row_groups):
        try:
            table = pf.read_row_group(rg)
            columns = [table.column(j).to_pylist() for j in range(table.num_columns)]
        except Exception as exc:
            yield Record(f"row group {rg}".encode(), reason=Reason.MALFORMED_RECORD,
                         detail=f"row group {rg} unreadable: {exc}"[:500], pos=pos)
            continue
        for values in zip(*columns, strict=True) if columns else []:
            raw = json.dumps(dict(zip(names, values, strict=True)), ensure_ascii=False, default=_raw_default
                             ).encode("utf-8", "backslashreplace")
            why = bounds.too_large(len(raw.decode("utf-8", "replace")))
            if why:
                yield Record(raw, reason=Reason.RECORD_TOO_LARGE, detail=why, pos=pos)
            elif dup:
                yield Record(raw, reason=Reason.DUPLICATE_KEY, detail=f"the file repeats column(s) {dup}", pos=pos)
            else:
                try:
                    yield Record(raw, fields={n: _pq_text(v) for n, v in zip(names, values, strict=True)}, pos=pos)
                except UnicodeDecodeError as exc:
                    yield Record(raw, reason=Reason.INVALID_UTF8, detail=_bad_utf8_detail(exc), pos=pos)
            pos += 1


def _raw_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return raw_text(bytes(value))
    return str(value)


def iter_records(data: bytes, fmt: str, bounds: Bounds = DEFAULT_BOUNDS) -> Iterator[Record]:
    """Every record of one whole file in ``fmt`` (csv | json | parquet), within ``bounds``."""
    if fmt == "csv":
        return iter_csv_records(data, bounds)
    if fmt == "json":
        return iter_json_records(data, bounds)
    if fmt == "parquet":
        return iter_parquet_records(data, bounds)
    raise InvalidInput(f"unknown format {fmt!r}; choose from {FORMATS}")


# ------------------------------------------------------------------ ad-hoc (id + text columns) rows
#: the ad-hoc reject details both build_vocab engines write (Spark: text.adhoc_input.read_adhoc;
#: Beam: pipelines/text_vocab.py)
MISSING_ITEM_ID_DETAIL = "{column} is missing or blank"
MALFORMED_DETAIL = "could not parse the record"


def keyed_values(
    fields: Mapping[str, str | None], id_column: str, columns: Sequence[str]
) -> tuple[str, tuple[str | None, ...]] | None:
    """One parsed record as ``(item_id, texts of columns)`` — the id stripped, an empty text as
    ``None`` — or ``None`` when the id is missing or blank (quarantined as ``missing_item_id``).

    >>> keyed_values({"sku": " 7 ", "name": "Red Dress", "about": ""}, "sku", ["name", "about"])
    ('7', ('Red Dress', None))
    """
    raw_id = fields.get(id_column)
    item_id = raw_id.strip() if raw_id is not None else ""
    if not item_id:
        return None
    return item_id, tuple(None if fields.get(c) in (None, "") else fields.get(c) for c in columns)


__all__ = [
    "BOM",
    "DEFAULT_BOUNDS",
    "FORMATS",
    "MALFORMED_DETAIL",
    "MISSING_ITEM_ID_DETAIL",
    "Bounds",
    "Record",
    "is_blank",
    "is_utf8_clean",
    "iter_csv_records",
    "iter_json_records",
    "iter_parquet_records",
    "iter_records",
    "json_too_deep",
    "keyed_values",
    "parse_json_line",
    "raw_bytes_if_not_utf8",
    "raw_text",
    "split_lines",
    "strip_ws",
]
