"""Fixture helper shared by the vision tests: a lakehouse with silver/images, silver/vocab and
silver/item_labels built from the REAL bundled sample (examples/data), JVM-free (delta-rs).

Labels are the words of each item's Myntra ``articleType`` and ``baseColour`` (e.g. "sports",
"shoes", "white"), so "predicts the colour/category words" is measurable. The split is
deterministic by hash of item_id (80/10/10), like silver/item_labels.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from deltalake import write_deltalake

from catalog2vec.ingest.images import normalise_image
from catalog2vec.lakehouse import table_path
from catalog2vec.schemas import bronze, silver
from tests.sample import core_sample_dir

EXAMPLES = core_sample_dir()  # the 384-item core of the bundled sample (tests/sample.py)
VOCAB_VERSION = "testvocab0123456789"


def split_of(item_id: str) -> str:
    h = int(hashlib.sha256(f"catalog2vec:{item_id}".encode()).hexdigest(), 16) % 10
    return "train" if h < 8 else ("val" if h == 8 else "test")


def sample_rows(limit: int | None = None) -> pd.DataFrame:
    df = pd.read_csv(EXAMPLES / "styles.csv", dtype=str).fillna("")
    df = df[[(EXAMPLES / "images" / f"{i}.jpg").is_file() for i in df["id"]]]
    return df.head(limit) if limit else df


def words_of(row: Any) -> list[str]:
    text = f"{row['articleType']} {row['baseColour']}".lower()
    return sorted({w for w in text.replace("-", " ").split() if w.isalpha() and len(w) > 1})


def write_sample_tables(root: Path, limit: int | None = None, short_side: int = 96,
                        vocab_version: str = VOCAB_VERSION, min_count: int = 2) -> dict[str, Any]:
    """Write silver/images, silver/vocab, silver/item_labels under ``root``; returns a summary."""
    df = sample_rows(limit)
    item_words = {str(r["id"]): words_of(r) for _, r in df.iterrows()}
    counts = Counter(w for ws in item_words.values() for w in ws)
    tokens = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    index = {w: i for i, w in enumerate(tokens)}
    vocab = pa.table({
        "vocab_version": [vocab_version] * len(tokens), "token": tokens,
        "index": pa.array(range(len(tokens)), pa.int32()),
        "count": pa.array([counts[w] for w in tokens], pa.int64()),
        "doc_freq": pa.array([counts[w] for w in tokens], pa.int64()),
    }, schema=silver.VOCAB.arrow_schema())
    ids, labels, splits = [], [], []
    for item_id, ws in item_words.items():
        labs = sorted(index[w] for w in ws if w in index)
        if labs:
            ids.append(item_id)
            labels.append(labs)
            splits.append(split_of(item_id))
    item_labels = pa.table({
        "vocab_version": [vocab_version] * len(ids), "item_id": ids,
        "labels": pa.array(labels, pa.list_(pa.int32())), "split": splits, "run_id": ["fixture"] * len(ids),
    }, schema=silver.ITEM_LABELS.arrow_schema())
    rows: dict[str, list[Any]] = {c: [] for c in silver.IMAGES.column_names}
    for item_id in item_words:
        path = EXAMPLES / "images" / f"{item_id}.jpg"
        data = path.read_bytes()
        img = normalise_image(data, short_side=short_side)
        for key, val in (("item_id", item_id), ("image_uri", str(path)), ("sha256", hashlib.sha256(data).hexdigest()),
                         ("width", img.width), ("height", img.height), ("orig_width", img.orig_width),
                         ("orig_height", img.orig_height), ("orig_mode", img.orig_mode), ("image", img.data),
                         ("run_id", "fixture")):
            rows[key].append(val)
    images = pa.table(rows, schema=silver.IMAGES.arrow_schema())
    for spec, tbl in ((silver.VOCAB, vocab), (silver.ITEM_LABELS, item_labels), (silver.IMAGES, images)):
        write_deltalake(table_path(root, spec), tbl, mode="append")
    return {"tokens": tokens, "items": len(ids), "splits": Counter(splits), "item_words": item_words}


def write_catalog_items(root: Path, limit: int | None = None) -> pd.DataFrame:
    """bronze/catalog_items of the same sample rows (articleType -> category, baseColour -> color,
    gender), as ingest_catalog maps the Myntra CSV; every 7th item has no colour (a masked target)."""
    import datetime as dt

    df = sample_rows(limit).reset_index(drop=True)
    now = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    n = len(df)
    color = [None if i % 7 == 3 else c for i, c in enumerate(df["baseColour"])]
    cols: dict[str, Any] = {
        "item_id": list(df["id"]), "title": list(df["productDisplayName"]), "description": [None] * n,
        "category": list(df["articleType"]), "brand": [None] * n, "color": color, "gender": list(df["gender"]),
        "image_uri": [str(EXAMPLES / "images" / f"{i}.jpg") for i in df["id"]], "url": [None] * n,
        "source": ["fixture"] * n, "crawled_at": [now] * n, "extra": [None] * n,
        "record_sha256": [hashlib.sha256(str(i).encode()).hexdigest() for i in df["id"]],
        "run_id": ["fixture"] * n, "ingested_at": [now] * n,
    }
    tbl = pa.table(cols, schema=bronze.CATALOG_ITEMS.arrow_schema())
    write_deltalake(table_path(root, bronze.CATALOG_ITEMS), tbl, mode="append")
    return df.assign(color=color)
