"""A small real lakehouse for the analysis jobs (neighbors, cluster, train_similarity, evaluate).

Built from the bundled 384-item sample: bronze.catalog_items (as ingest_catalog writes it); silver.images
with the real JPEG bytes; silver.vocab / silver.item_labels from the titles' words (split by hash of
item_id); a random-init resnet18 model directory (save_model_dir, image_size 32); and two model
versions in gold.item_embeddings:

* ``oracle``: embeddings that encode category and colour (one-hot) plus noise — a model that must
  beat both baselines;
* ``noise``: pure Gaussian noise — a model that must be flagged.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

EMBED_DIM = 96


def _split(item_id: str) -> str:
    h = int(hashlib.md5(item_id.encode()).hexdigest(), 16) % 10
    return "train" if h < 7 else ("val" if h < 8 else "test")


def _write(spark: Any, rows: list[tuple[Any, ...]], spec: Any, root: Path) -> None:
    from catalog2vec.lakehouse import write_table

    # fresh tables: a plain schema-checked overwrite is much faster than MERGE
    write_table(spark, spark.createDataFrame(rows, spec.spark_schema()), spec, root, mode="overwrite")


def build(spark: Any, root: Path, examples: Path) -> dict[str, Any]:
    import pandas as pd
    import torch
    from PIL import Image

    from catalog2vec.schemas import bronze, gold, silver
    from catalog2vec.vision import model_dir
    from catalog2vec.vision.model import build_model, save_model_dir

    styles = pd.read_csv(examples / "styles.csv", dtype={"id": str})
    now = datetime.now(UTC)
    # bronze.catalog_items as the ingest job writes it (tests/integration/test_ingest_catalog.py covers
    # the job itself; writing directly keeps this fixture fast on a shared 2-core machine)
    item_rows = [
        (iid, str(title), None, str(cat), None, str(col), str(gen), str((examples / "images" / f"{iid}.jpg").resolve()),
         None, "sample", now, {}, hashlib.sha256(str(title).encode()).hexdigest(), "fixture", now)
        for iid, title, cat, col, gen in zip(
            styles["id"], styles["productDisplayName"], styles["articleType"], styles["baseColour"], styles["gender"],
            strict=True,
        )
    ]  # fmt: skip
    _write(spark, item_rows, bronze.CATALOG_ITEMS, root)

    # silver.images: the real JPEG bytes
    img_rows = []
    for iid in styles["id"]:
        data = (examples / "images" / f"{iid}.jpg").read_bytes()
        w, h = Image.open(io.BytesIO(data)).size
        img_rows.append((iid, None, hashlib.sha256(data).hexdigest(), w, h, w, h, "RGB", data, "fixture"))
    _write(spark, img_rows, silver.IMAGES, root)

    # silver.vocab + silver.item_labels from the titles
    words = {
        iid: sorted({w for w in re.findall(r"[a-z]+", str(t).lower()) if len(w) > 1})
        for iid, t in zip(styles["id"], styles["productDisplayName"], strict=True)
    }
    counts = Counter(w for ws in words.values() for w in ws)
    tokens = sorted((w for w, c in counts.items() if c >= 2), key=lambda w: (-counts[w], w))
    index = {w: i for i, w in enumerate(tokens)}
    vv = "vfixture"
    vocab_rows = [(vv, w, i, counts[w], counts[w]) for w, i in index.items()]
    _write(spark, vocab_rows, silver.VOCAB, root)
    label_rows = [
        (vv, iid, sorted(index[w] for w in ws if w in index), _split(iid), "fixture")
        for iid, ws in words.items()
        if any(w in index for w in ws)
    ]
    _write(spark, label_rows, silver.ITEM_LABELS, root)

    # a random-init model directory per version (the architecture the random-weights baseline copies)
    torch.manual_seed(123)
    model = build_model("resnet18", len(tokens), embed_dim=EMBED_DIM)
    for mv in ("oracle", "noise"):
        save_model_dir(
            model_dir(root, mv),
            model,
            tokens,
            vv,
            {"image_size": 32},
            {"model_version": mv, "created_at": mv},
        )

    # gold.item_embeddings for both versions
    rng = np.random.default_rng(0)
    cats = sorted(styles["articleType"].astype(str).unique())
    cols = sorted(styles["baseColour"].astype(str).unique())
    emb_rows = []
    for mv in ("oracle", "noise"):
        for iid, cat, col in zip(
            styles["id"], styles["articleType"].astype(str), styles["baseColour"].astype(str), strict=True
        ):
            v = rng.normal(size=EMBED_DIM) * (0.15 if mv == "oracle" else 1.0)
            if mv == "oracle":
                v[cats.index(cat)] += 1.0
                v[len(cats) + cols.index(col)] += 0.6
            sha = hashlib.sha256(iid.encode()).hexdigest()
            emb_rows.append((mv, iid, sha, [float(x) for x in v], float(np.linalg.norm(v)), "fixture"))
    _write(spark, emb_rows, gold.ITEM_EMBEDDINGS, root)

    # gold.item_tags for "oracle": each item's own two most frequent title words + random fillers
    tag_rows = []
    for iid, ws in words.items():
        own = sorted((w for w in ws if w in index), key=lambda w: index[w])[:2]
        fill = [t for t in tokens[:10] if t not in own][: 10 - len(own)]
        for r, t in enumerate(own + fill, 1):
            tag_rows.append(("oracle", iid, t, float(1.0 / r), r, "fixture"))
    _write(spark, tag_rows, gold.ITEM_TAGS, root)
    return {"tokens": tokens, "vocab_version": vv, "styles": styles}


def copy_lakehouse(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
