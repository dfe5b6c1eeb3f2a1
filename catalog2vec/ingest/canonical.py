"""What a parsed catalog record becomes: one canonical bronze/catalog_items row, or a quarantine
reason (:func:`canonical_row`). The record itself comes from :mod:`catalog2vec.ingest.formats`;
image paths are checked by :mod:`catalog2vec.ingest.image_paths`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from catalog2vec.ingest.formats import Record, is_blank, is_utf8_clean, strip_ws
from catalog2vec.ingest.image_paths import (
    URI_SCHEME,
    ImagePolicy,
    expand_template,
    inside,
    resolve_image_path,
)
from catalog2vec.quality import MAX_RECORD_CHARS, Reason

# C0 and C1 control characters (and DEL) but tab and newline: dropped from text fields at ingest
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# crawled_at outside this range is not a crawl time (and would overflow pandas' datetime64[ns])
CRAWLED_AT_MIN = dt.datetime(1970, 1, 1)
CRAWLED_AT_MAX = dt.datetime(2200, 1, 1)


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
    if URI_SCHEME.match(template):
        return rules.images.refuse_uri(uri)
    if template.startswith("/") and not any(inside(os.path.normpath(uri), r) for r in (rules.base_dir, *rules.images.roots)):
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
    "CLEANED_FIELDS",
    "TEXT_FIELDS",
    "CanonicalRules",
    "IdPolicy",
    "canonical_row",
    "clean_text",
    "parse_crawled_at",
]
