"""The one parser of crawled catalog records (pure Python; Spark and Beam call the same functions).

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
import os
import posixpath
import re
import sys
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from catalog2vec import storage
from catalog2vec.errors import InvalidInput
from catalog2vec.quality import MAX_RECORD_CHARS, Reason

if TYPE_CHECKING:
    from catalog2vec.config import IngestSection

FORMATS = ("csv", "json", "parquet")  # what iter_records reads
BOM = "\ufeff"
# characters stripped from both ends of ids and counted as blank in text: Unicode White_Space
# (str.isspace) plus the zero-width ones crawlers leave behind
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_TEMPLATE_FIELD = re.compile(r"\{(\w+)\}")
# C0 and C1 control characters (and DEL) but tab and newline: dropped from text fields at ingest
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# linear-time (no backtracking) bracket counting: escape pairs out first, then "..." strings
_JSON_ESCAPE = re.compile(r"\\.", re.S)
_JSON_STRING = re.compile(r'"[^"]*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
# crawled_at outside this range is not a crawl time (and would overflow pandas' datetime64[ns])
CRAWLED_AT_MIN = dt.datetime(1970, 1, 1)
CRAWLED_AT_MAX = dt.datetime(2200, 1, 1)


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


@dataclass(frozen=True)
class IdPolicy:
    """What an ``item_id`` may be (after stripping surrounding whitespace): 1 to ``max_chars``
    characters, none of them a control, format, surrogate, private-use or unassigned code point
    (categories Cc, Cf, Cs, Co, Cn) or a line/paragraph separator (Zl, Zp). Anything else —
    slashes, dots, ``*``, ``[``, spaces, non-Latin letters — is data and allowed."""

    max_chars: int = 256

    def check(self, item_id: str) -> str | None:
        """``None`` if the id is allowed, else why not."""
        if len(item_id) > self.max_chars:
            return f"item_id has {len(item_id)} characters (at most {self.max_chars})"
        for i, ch in enumerate(item_id):
            cat = unicodedata.category(ch)
            if cat in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
                return f"item_id holds {ch!a} (category {cat}) at position {i}"
        return None


# object stores by family: a lakehouse on one admits its own family's image URIs by default
_STORE_FAMILY = {**dict.fromkeys(storage.S3_SCHEMES, "s3"), "gs": "gs", "gcs": "gs", "abfs": "abfs", "abfss": "abfs",
                 "az": "abfs"}
#: schemes that name a local file: never allow-listed (a local image is named by its path, and
#: must then lie under the input's directory or ``ingest.image_roots``)
LOCAL_SCHEMES = ("file", "local")


def _family(sch: str) -> str:
    return _STORE_FAMILY.get(sch.lower(), sch.lower())


def _uri_parts(uri: str) -> tuple[str, str]:
    sch, rest = uri.split("://", 1)
    return _family(sch), rest


@dataclass(frozen=True)
class ImagePolicy:
    """The one allow-list of image URIs (catalog ingest quarantines, image ingest re-checks before
    anything is opened). A local path must lie under the input's directory or one of ``roots``;
    a URI must use one of ``schemes`` (the scheme families ``s3``/``s3a``/``s3n``, ``gs``/``gcs``,
    ``abfs``/``abfss``/``az`` count as one) and, when ``prefixes`` are given, lie under one of
    them — or lie under one of ``roots`` (a root may be a URI folder). Never: ``file://``,
    ``local://``, fsspec chains (``a::b``), ``..`` segments, control characters."""

    roots: tuple[str, ...] = ()
    schemes: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for sch in self.schemes:
            if sch.lower() in LOCAL_SCHEMES or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", sch):
                raise InvalidInput(f"ingest.image_schemes: {sch!r} cannot be allow-listed (a scheme name; "
                                 f"local images are allowed by ingest.image_roots)")
        allowed = {_family(x) for x in self.schemes}
        for pre in self.prefixes:
            if not _SCHEME.match(pre) or _uri_parts(pre)[0] not in allowed:
                raise InvalidInput(f"ingest.image_prefixes: {pre!r} is not a URI with a scheme in "
                                 f"ingest.image_schemes {list(self.schemes)}")

    @classmethod
    def from_config(cls, ingest: IngestSection, lakehouse: str) -> ImagePolicy:
        """``[ingest]`` image_roots / image_schemes / image_prefixes; image_schemes unset = the
        lakehouse's object-store scheme when the lakehouse is on an object store, else none."""
        schemes = ingest.image_schemes
        if schemes is None:
            sch = storage.scheme(lakehouse)
            schemes = [sch] if sch in _STORE_FAMILY else []
        return cls(roots=tuple(storage.normalize(r) for r in ingest.image_roots), schemes=tuple(schemes),
                   prefixes=tuple(p.rstrip("/") for p in ingest.image_prefixes))

    def refuse_uri(self, uri: str) -> str | None:
        """``None`` if the URI (one with a scheme) may be read, else why not."""
        if "::" in uri:
            return f"image_uri {uri[:300]!r} chains filesystems (::)"
        if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in uri):
            return f"image_uri {uri[:200]!a} holds control characters"
        fam, rest = _uri_parts(uri)
        if ".." in rest.split("/") or "." in rest.split("/")[1:]:
            return f"image_uri {uri[:300]!r} holds a . or .. segment"
        if any(_SCHEME.match(r) and _inside(uri, r) for r in self.roots):
            return None
        sch = uri.split("://", 1)[0]
        if fam not in {_family(x) for x in self.schemes}:
            return (f"image_uri {uri[:300]!r}: scheme {sch!r} is not in ingest.image_schemes "
                    f"{sorted(self.schemes)}")
        if self.prefixes and not any(
            fam == _uri_parts(p)[0] and (rest == _uri_parts(p)[1] or rest.startswith(_uri_parts(p)[1] + "/"))
            for p in self.prefixes
        ):
            return f"image_uri {uri[:300]!r} is not under ingest.image_prefixes {list(self.prefixes)}"
        return None


#: local paths under the input's directory only, no URI
LOCAL_ONLY = ImagePolicy()


@dataclass(frozen=True)
class CanonicalRules:
    """How parsed fields become a canonical catalog row (see :func:`canonical_row`)."""

    mapping: Mapping[str, str] = field(default_factory=dict)  # source column -> canonical column
    image_template: str | None = None
    base_dir: str = "."  # the input's directory: relative image paths resolve against it
    images: ImagePolicy = field(default_factory=ImagePolicy)  # where image paths may point
    max_field_chars: int = 65536
    max_record_chars: int = MAX_RECORD_CHARS  # the extra map is bounded like the raw record
    ids: IdPolicy = field(default_factory=IdPolicy)


# ------------------------------------------------------------------ text helpers
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
    raise ValueError(f"unknown format {fmt!r}")


# ------------------------------------------------------------------ ad-hoc (id + text columns) rows
#: the ad-hoc reject details both build_vocab engines write (Spark: text.spark_text.read_adhoc;
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


# ------------------------------------------------------------------ canonical rows
def escape_path_value(value: str) -> str:
    """A field value made safe as (part of) one file name: ``%``, ``/``, ``\\`` and every
    non-printable character percent-encoded, and ``.``/``..`` as ``%2E``/``%2E%2E`` — so a
    templated path can never leave its directory, and glob characters stay literal."""
    if value in (".", ".."):
        return value.replace(".", "%2E")
    out = []
    for ch in value:
        if ch in "%/\\" or not (ch.isprintable() or ch == " "):
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass")))
        else:
            out.append(ch)
    return "".join(out)


def expand_template(template: str, values: Mapping[str, str | None], base_dir: str) -> str | None:
    """``images/{item_id}.jpg`` → ``<base_dir>/images/<escaped id>.jpg`` (None if a field is null)."""
    parts: list[str] = []
    pos = 0
    for m in _TEMPLATE_FIELD.finditer(template):
        parts.append(template[pos:m.start()])
        v = values.get(m.group(1))
        if v is None:
            return None
        parts.append(escape_path_value(v))
        pos = m.end()
    parts.append(template[pos:])
    out = "".join(parts)
    if _SCHEME.match(template) or template.startswith("/"):
        return out
    return _join(base_dir, out)


def template_fields(template: str) -> list[str]:
    return _TEMPLATE_FIELD.findall(template)


def _join(base: str, rel: str) -> str:
    if _SCHEME.match(base):
        return base.rstrip("/") + "/" + rel
    return os.path.join(base, rel)


def _inside(path: str, root: str) -> bool:
    if _SCHEME.match(root) or _SCHEME.match(path):
        p, r = posixpath.normpath(path.split("://", 1)[-1]), posixpath.normpath(root.split("://", 1)[-1])
        return path.split("://", 1)[0] == root.split("://", 1)[0] and (p == r or p.startswith(r.rstrip("/") + "/"))
    p, r = os.path.normpath(path), os.path.normpath(root)
    return p == r or p.startswith(r.rstrip(os.sep) + os.sep)


def resolve_image_path(
    value: str | None, base_dir: str, policy: ImagePolicy = LOCAL_ONLY
) -> tuple[str | None, str | None]:
    """An ``image_uri`` given in the data → (resolved URI or None, why it is refused or None).

    A URI (``scheme://``) is kept as it is if ``policy`` allows it (read later through the storage
    layer); ``file://``, ``local://``, ``memory://``, ``http://``, chains (``a::b``) and every
    scheme not allow-listed are refused. A local path — relative ones resolve against the input's
    directory ``base_dir`` — must lie inside ``base_dir`` or one of ``policy.roots`` after
    normalisation (``..`` cannot climb out), and may hold no control character."""
    if value is None or is_blank(value):
        return None, None
    v = strip_ws(value)
    if "::" in v:
        return None, f"image_uri {v[:300]!r} chains filesystems (::)"
    if _SCHEME.match(v):
        why = policy.refuse_uri(v)
        return (None, why) if why else (v, None)
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in v):
        return None, f"image path {v[:200]!a} holds control characters"
    is_abs = v.startswith("/") or (os.sep != "/" and os.path.isabs(v))
    path = v if is_abs else _join(base_dir, v)
    if not _SCHEME.match(path):
        path = os.path.normpath(path)
    else:
        sch, rest = path.split("://", 1)
        path = f"{sch}://{posixpath.normpath(rest)}"
    allowed = (base_dir, *policy.roots)
    if not any(_inside(path, r) for r in allowed if r):
        return None, f"image path {v[:300]!r} is outside the input directory {base_dir}" + (
            f" and ingest.image_roots {list(policy.roots)}" if policy.roots else "")
    return path, None


def clean_text(value: str | None) -> str | None:
    """A text field as stored: CR LF and lone CR become LF, every other C0/C1 control character
    (ESC, BEL, NUL, DEL, …) is dropped; tab and newline stay."""
    if value is None:
        return None
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", value)


def parse_crawled_at(value: str | None) -> tuple[str | None, str | None]:
    """(ISO-8601 text Spark casts to a timestamp, or None if absent; why it is refused or None)."""
    if value is None or is_blank(value):
        return None, None
    s = strip_ws(value)
    try:
        when = dt.datetime.fromisoformat(s)
    except ValueError:
        return None, f"crawled_at {s[:100]!r} is not an ISO-8601 date/time"
    naive = when.astimezone(dt.UTC).replace(tzinfo=None) if when.tzinfo else when
    if not CRAWLED_AT_MIN <= naive < CRAWLED_AT_MAX:
        return None, f"crawled_at {s[:100]!r} is outside {CRAWLED_AT_MIN.year}..{CRAWLED_AT_MAX.year}"
    return when.isoformat(), None


TEXT_FIELDS = ("title", "description", "category", "brand", "color", "gender", "image_uri", "url")
# text fields whose control characters are dropped (item_id and image_uri refuse them instead)
CLEANED_FIELDS = ("title", "description", "category", "brand", "color", "gender", "url")


def _refuse_templated(uri: str | None, rules: CanonicalRules) -> str | None:
    """Why an image URI made by an absolute or ``scheme://`` template is refused (a relative
    template stays under the input's directory: its fields are escaped)."""
    template = rules.image_template or ""
    if uri is None:
        return None
    if _SCHEME.match(template):
        return rules.images.refuse_uri(uri)
    if template.startswith("/") and not any(_inside(os.path.normpath(uri), r) for r in (rules.base_dir, *rules.images.roots)):
        return f"image path {uri[:300]!r} is outside the input directory and ingest.image_roots"
    return None


def canonical_row(rec: Record, canonical: tuple[str, ...], rules: CanonicalRules) -> dict[str, Any]:
    """A parsed record → canonical columns + ``extra`` + ``_reason``/``_detail`` (first failing
    check wins, in the documented order: malformed_record / invalid_utf8 / duplicate_key /
    record_too_large (from the parser), record_too_large (the extra map), missing_item_id,
    invalid_id, field_too_large, invalid_timestamp, image_path_invalid, no_text). Control
    characters are dropped from the text fields first (:func:`clean_text`), so a title of only
    ESC/BEL is no title."""
    row: dict[str, Any] = dict.fromkeys(canonical)
    row.update(extra=None, _keys=None, _reason=None, _detail=None)
    if rec.fields is None:
        row["_reason"], row["_detail"] = rec.reason.value if rec.reason else Reason.MALFORMED_RECORD.value, rec.detail
        return row
    fields = rec.fields
    target = dict(rules.mapping)
    for c in fields:  # columns already named canonically map themselves
        if c in canonical and c not in target and c not in target.values():
            target[c] = c
    by_dst = {dst: src for src, dst in target.items()}
    values: dict[str, str | None] = {name: fields.get(by_dst[name]) if name in by_dst else None for name in canonical}
    for name in CLEANED_FIELDS:
        if values.get(name) is not None:
            values[name] = clean_text(values[name])
    row.update(values)
    extra = {k: v for k, v in fields.items() if k not in target}
    row["extra"] = extra
    row["_keys"] = list(fields)
    item_id = values.get("item_id")
    row["item_id"] = strip_ws(item_id) if item_id is not None else None

    def reject(reason: Reason, detail: str) -> dict[str, Any]:
        row["_reason"], row["_detail"] = reason.value, detail
        if row["item_id"] is not None and not is_utf8_clean(row["item_id"]):
            row["item_id"] = None
        return row

    extra_chars = sum(len(k) + len(v or "") for k, v in extra.items())
    if extra_chars > rules.max_record_chars:
        return reject(Reason.RECORD_TOO_LARGE, f"the extra map (unmapped columns) has {extra_chars} characters "
                      f"(ingest.max_record_chars={rules.max_record_chars})")
    if not row["item_id"]:
        return reject(Reason.MISSING_ITEM_ID, "item_id is missing or blank")
    why = rules.ids.check(row["item_id"])
    if why:
        return reject(Reason.INVALID_ID, why)
    too_large = [c for c in TEXT_FIELDS if values.get(c) is not None and len(values[c] or "") > rules.max_field_chars]
    if too_large:
        return reject(Reason.FIELD_TOO_LARGE, f"over {rules.max_field_chars} chars: {','.join(too_large)}")
    crawled, why = parse_crawled_at(values.get("crawled_at"))
    if why:
        return reject(Reason.INVALID_TIMESTAMP, why)
    row["crawled_at"] = crawled
    if rules.image_template:
        subst = {**values, "item_id": row["item_id"]}
        row["image_uri"] = expand_template(rules.image_template, subst, rules.base_dir)
        why = _refuse_templated(row["image_uri"], rules)
        if why:
            return reject(Reason.IMAGE_PATH_INVALID, why)
    else:
        row["image_uri"], why = resolve_image_path(values.get("image_uri"), rules.base_dir, rules.images)
        if why:
            return reject(Reason.IMAGE_PATH_INVALID, why)
    if is_blank(values.get("title")) and is_blank(values.get("description")):
        return reject(Reason.NO_TEXT, "no title and no description")
    return row


__all__ = [
    "DEFAULT_BOUNDS",
    "LOCAL_ONLY",
    "Bounds",
    "CanonicalRules",
    "IdPolicy",
    "ImagePolicy",
    "Record",
    "canonical_row",
    "clean_text",
    "escape_path_value",
    "expand_template",
    "is_blank",
    "iter_csv_records",
    "iter_json_records",
    "iter_parquet_records",
    "iter_records",
    "json_too_deep",
    "parse_crawled_at",
    "parse_json_line",
    "raw_bytes_if_not_utf8",
    "raw_text",
    "resolve_image_path",
    "strip_ws",
]
