"""Attribute heads' targets: the crawled catalog's structured fields (``bronze/catalog_items``:
``category`` — Myntra's articleType —, ``color`` — baseColour —, ``gender``) as class indices.

Each field named in ``train.attribute_heads`` becomes a softmax head beside the word head
(:class:`catalog2vec.vision.model.WeakLabelNet`), reading the same embedding that is written to
``gold/item_embeddings``. Its classes come from the *training* split: a value (trimmed,
lower-cased) on at least ``train.attribute_min_count`` training items is a class, ordered by
count (then name); rarer values, and values of val/test items never seen in training, map to the
class ``other`` (present only when some value maps to it). An item without the field (null or
blank) is masked: its target is :data:`IGNORE` (``cross_entropy(ignore_index=IGNORE)``).

The targets are one int64 row per item, aligned with :class:`catalog2vec.vision.data.SplitIndex`
(the same sorted ids), so ``targets[rank::world]`` is a rank's shard.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from catalog2vec.errors import InvalidInput, MissingInput

FIELDS = ("category", "color", "gender")
OTHER = "other"
IGNORE = -100


@dataclass
class AttributeTargets:
    """Class lists per field and, per split, an ``(items, fields)`` int64 target matrix."""

    fields: list[str]
    classes: dict[str, list[str]]
    targets: dict[str, np.ndarray] = field(default_factory=dict)

    def card(self, weights: dict[str, float], min_count: int) -> dict[str, Any]:
        """What the model card records: fields, class lists, loss weights, the rare-class rule and
        the training items that had each field."""
        train = self.targets.get("train", np.zeros((0, len(self.fields)), dtype=np.int64))
        return {"fields": list(self.fields), "classes": {f: list(self.classes[f]) for f in self.fields},
                "weights": {f: float(weights[f]) for f in self.fields}, "min_count": int(min_count),
                "train_items_with_field": {f: int((train[:, j] != IGNORE).sum()) for j, f in enumerate(self.fields)}}


def normalize_value(value: Any) -> str | None:
    """The class name of a raw field value: trimmed and lower-cased; None for null/blank/"nan"."""
    if value is None:
        return None
    s = " ".join(str(value).split()).lower()
    return None if s in ("", "nan", "none", "null", "na") else s


def class_list(values: list[str | None], min_count: int) -> list[str]:
    """Training values with >= ``min_count`` items, most frequent first; ``other`` last when any
    training value is rarer."""
    counts = Counter(v for v in values if v is not None)
    kept = sorted((v for v, n in counts.items() if n >= min_count), key=lambda v: (-counts[v], v))
    if len(kept) < len(counts) and OTHER not in kept:
        kept.append(OTHER)
    return kept


def encode(values: list[str | None], classes: list[str]) -> np.ndarray:
    """Class index per value: ``IGNORE`` for a missing value, ``other`` for an unknown one
    (``IGNORE`` when there is no ``other`` class)."""
    pos = {c: i for i, c in enumerate(classes)}
    fallback = pos.get(OTHER, IGNORE)
    return np.asarray([IGNORE if v is None else pos.get(v, fallback) for v in values], dtype=np.int64)


def build_targets(values: dict[str, dict[str, dict[str, Any]]], split_ids: dict[str, list[str]],
                  fields: list[str], min_count: int) -> AttributeTargets:
    """Targets from ``values[field][item_id] = raw value`` for the ids of every split (pure)."""
    unknown = [f for f in fields if f not in FIELDS]
    if unknown or len(set(fields)) != len(fields):
        raise InvalidInput(f"train.attribute_heads must be distinct fields of {FIELDS}, got {fields}")
    norm = {f: {s: [normalize_value(values[f].get(i)) for i in ids] for s, ids in split_ids.items()}
            for f in fields}
    classes = {f: class_list(norm[f].get("train", []), min_count) for f in fields}
    for f in fields:
        if len(classes[f]) < 2:
            raise InvalidInput(f"attribute head {f!r}: the training split has {len(classes[f])} class(es) with "
                               f">= {min_count} items; a head needs 2 (lower train.attribute_min_count or drop it)")
    targets = {s: np.stack([encode(norm[f][s], classes[f]) for f in fields], axis=1).reshape(len(ids), len(fields))
               for s, ids in split_ids.items()}
    return AttributeTargets(list(fields), classes, targets)


def load_attribute_targets(root: str, split_ids: dict[str, list[str]], fields: list[str],
                           min_count: int) -> AttributeTargets:
    """Read ``item_id`` and ``fields`` from ``bronze/catalog_items`` (delta-rs, no JVM) and build
    the targets of the items of ``split_ids``."""
    from catalog2vec.lakehouse import read_arrow, table_exists
    from catalog2vec.schemas import bronze

    if not table_exists(root, bronze.CATALOG_ITEMS):
        raise MissingInput(f"attribute heads need bronze/catalog_items under {root}; run jobs/ingest_catalog.py")
    tbl = read_arrow(root, bronze.CATALOG_ITEMS, columns=["item_id", *fields])
    ids = tbl.column("item_id").to_pylist()
    values = {f: dict(zip(ids, tbl.column(f).to_pylist(), strict=True)) for f in fields}
    return build_targets(values, split_ids, fields, min_count)


__all__ = ["FIELDS", "IGNORE", "OTHER", "AttributeTargets", "build_targets", "class_list", "encode",
           "load_attribute_targets", "normalize_value"]
