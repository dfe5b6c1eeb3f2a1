"""Where an item's image may be: the one allow-list of image URIs (:class:`ImagePolicy`, the trust
rule of DESIGN.md), the image-path template (``images/{item_id}.jpg``) and the resolution of a
path given in the data. Catalog ingest quarantines what they refuse (:mod:`.canonical`); image
ingest re-checks before anything is opened (:mod:`.images`).
"""

from __future__ import annotations

import os
import posixpath
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from catalog2vec import storage
from catalog2vec.errors import InvalidInput
from catalog2vec.ingest.formats import is_blank, strip_ws

if TYPE_CHECKING:
    from catalog2vec.config import IngestSection

URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_TEMPLATE_FIELD = re.compile(r"\{(\w+)\}")


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
            if not URI_SCHEME.match(pre) or _uri_parts(pre)[0] not in allowed:
                raise InvalidInput(f"ingest.image_prefixes: {pre!r} is not a URI with a scheme in "
                                 f"ingest.image_schemes {list(self.schemes)}")

    @classmethod
    def from_config(cls, ingest: IngestSection, root: str) -> ImagePolicy:
        """``[ingest]`` image_roots / image_schemes / image_prefixes; image_schemes unset = the
        lakehouse's object-store scheme when the lakehouse is on an object store, else none."""
        schemes = ingest.image_schemes
        if schemes is None:
            sch = storage.scheme(root)
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
        if any(URI_SCHEME.match(r) and inside(uri, r) for r in self.roots):
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
    if URI_SCHEME.match(template) or template.startswith("/"):
        return out
    return _join(base_dir, out)


def template_fields(template: str) -> list[str]:
    return _TEMPLATE_FIELD.findall(template)


def _join(base: str, rel: str) -> str:
    if URI_SCHEME.match(base):
        return base.rstrip("/") + "/" + rel
    return os.path.join(base, rel)


def inside(path: str, root: str) -> bool:
    """``path`` equals ``root`` or lies below it (both normalised; a URI only under a URI of its scheme)."""
    if URI_SCHEME.match(root) or URI_SCHEME.match(path):
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
    if URI_SCHEME.match(v):
        why = policy.refuse_uri(v)
        return (None, why) if why else (v, None)
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in v):
        return None, f"image path {v[:200]!a} holds control characters"
    is_abs = v.startswith("/") or (os.sep != "/" and os.path.isabs(v))
    path = v if is_abs else _join(base_dir, v)
    if not URI_SCHEME.match(path):
        path = os.path.normpath(path)
    else:
        sch, rest = path.split("://", 1)
        path = f"{sch}://{posixpath.normpath(rest)}"
    allowed = (base_dir, *policy.roots)
    if not any(inside(path, r) for r in allowed if r):
        return None, f"image path {v[:300]!r} is outside the input directory {base_dir}" + (
            f" and ingest.image_roots {list(policy.roots)}" if policy.roots else "")
    return path, None


__all__ = [
    "LOCAL_ONLY",
    "LOCAL_SCHEMES",
    "URI_SCHEME",
    "ImagePolicy",
    "escape_path_value",
    "expand_template",
    "inside",
    "resolve_image_path",
    "template_fields",
]
