"""A small real lakehouse for the neighbour browser, built JVM-free (delta-rs) in a few seconds.

From the bundled sample (examples/data): bronze.catalog_items, silver.images (the sample JPEGs through
the ingest normaliser with the default ``[images]`` settings, as ingest_images writes them), a
random-init resnet18 model directory (32 px, 24 title words) and, produced by THAT model through the
embed job's inference code (``InferenceModel``), gold.item_embeddings and gold.item_tags; then
gold.clusters / gold.item_clusters from k-means on the embeddings with the library's prototype
selection. An uploaded sample picture is therefore embedded exactly like its stored row.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from catalog2vec.config import ImagesSection

MODEL_VERSION = "browser-test"
IMAGE_SIZE = 32
N_CLUSTERS = 6
PROTOTYPES = 4


def _write(root: Path, spec: Any, columns: dict[str, list[Any]]) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    from catalog2vec.lakehouse import table_path

    write_deltalake(table_path(root, spec), pa.table(columns, schema=spec.arrow_schema()), mode="overwrite")


def build(root: Path, examples: Path, limit: int | None = None,
          images: ImagesSection | None = None) -> dict[str, Any]:
    import pandas as pd
    import torch
    from sklearn.cluster import KMeans

    from catalog2vec.clustering.kmeans import select_prototypes
    from catalog2vec.config import ImagesSection
    from catalog2vec.embed.core import InferenceModel
    from catalog2vec.ingest.images import normalise_image
    from catalog2vec.schemas import analysis, bronze, gold, silver
    from catalog2vec.vectors import l2_normalize
    from catalog2vec.vision import model_dir
    from catalog2vec.vision.model import build_model, save_model_dir

    images = images or ImagesSection()
    styles = pd.read_csv(examples / "styles.csv", dtype=str).fillna("")
    styles = styles[[(examples / "images" / f"{i}.jpg").is_file() for i in styles["id"]]]
    if limit:
        styles = styles.head(limit)
    ids = [str(i) for i in styles["id"]]
    now = datetime.now(UTC)
    paths = [str((examples / "images" / f"{i}.jpg").resolve()) for i in ids]
    n = len(ids)
    _write(root, bronze.CATALOG_ITEMS, {
        "item_id": ids, "title": list(styles["productDisplayName"]), "description": [None] * n,
        "category": list(styles["articleType"]), "brand": [None] * n, "color": list(styles["baseColour"]),
        "gender": list(styles["gender"]), "image_uri": paths, "url": [None] * n, "source": ["sample"] * n,
        "crawled_at": [now] * n, "extra": [[] for _ in ids],
        "record_sha256": [hashlib.sha256(i.encode()).hexdigest() for i in ids], "run_id": ["fixture"] * n,
        "ingested_at": [now] * n,
    })  # fmt: skip
    raw = [Path(p).read_bytes() for p in paths]
    norm = [normalise_image(d, images.short_side, images.max_pixels, images.jpeg_quality, images.upscale) for d in raw]
    data = [im.data for im in norm]
    _write(root, silver.IMAGES, {
        "item_id": ids, "image_uri": paths, "sha256": [hashlib.sha256(d).hexdigest() for d in raw],
        "width": [im.width for im in norm], "height": [im.height for im in norm],
        "orig_width": [im.orig_width for im in norm], "orig_height": [im.orig_height for im in norm],
        "orig_mode": [im.orig_mode for im in norm], "image": data, "run_id": ["fixture"] * n,
    })  # fmt: skip

    words = Counter(w for t in styles["productDisplayName"] for w in set(re.findall(r"[a-z]+", t.lower())) if len(w) > 2)
    tokens = [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))[:24]]
    torch.manual_seed(7)
    model = build_model("resnet18", len(tokens), embed_dim=0)
    mdir = model_dir(root, MODEL_VERSION)
    save_model_dir(mdir, model, tokens, "vbrowser", {"image_size": IMAGE_SIZE},
                   {"model_version": MODEL_VERSION, "created_at": now.isoformat()})

    infer = InferenceModel.from_dir(mdir, top_n=5, device="cpu")
    out = infer.predict(data)
    assert int(out.ok.sum()) == n
    _write(root, gold.ITEM_EMBEDDINGS, {
        "model_version": [MODEL_VERSION] * n, "item_id": ids, "sha256": [hashlib.sha256(d).hexdigest() for d in data],
        "embedding": [row.tolist() for row in out.embedding], "norm": out.norm.tolist(), "run_id": ["fixture"] * n,
    })  # fmt: skip
    tag_cols: dict[str, list[Any]] = {c: [] for c in gold.ITEM_TAGS.column_names}
    for j, iid in enumerate(ids):
        for r, (ti, p) in enumerate(zip(out.tag_index[j], out.tag_probability[j], strict=True), 1):
            for c, v in (("model_version", MODEL_VERSION), ("item_id", iid), ("tag", tokens[int(ti)]),
                         ("probability", float(p)), ("rank", r), ("run_id", "fixture")):
                tag_cols[c].append(v)
    _write(root, gold.ITEM_TAGS, tag_cols)

    x = l2_normalize(out.embedding)
    km = KMeans(n_clusters=N_CLUSTERS, n_init=3, random_state=0).fit(x)
    cm = select_prototypes(ids, x, km.labels_, km.cluster_centers_, PROTOTYPES)
    _write(root, analysis.CLUSTERS, {
        "model_version": [MODEL_VERSION] * N_CLUSTERS, "cluster": list(range(N_CLUSTERS)),
        "centroid": [c.tolist() for c in cm.centroids], "size": cm.sizes, "prototypes": cm.prototypes,
        "run_id": ["fixture"] * N_CLUSTERS,
    })  # fmt: skip
    dist = 1.0 - np.sum(x * l2_normalize(km.cluster_centers_)[km.labels_], axis=1)
    _write(root, analysis.ITEM_CLUSTERS, {
        "model_version": [MODEL_VERSION] * n, "item_id": ids, "cluster": [int(c) for c in km.labels_],
        "distance": [float(d) for d in dist], "run_id": ["fixture"] * n,
    })  # fmt: skip
    return {"ids": ids, "embeddings": out.embedding, "tokens": tokens, "styles": styles,
            "clusters": cm, "assignment": km.labels_}
