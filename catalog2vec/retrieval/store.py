"""Lakehouse side of retrieval: model-version resolution, reading embeddings, saved indexes.

Everything here reads Delta tables with delta-rs (no JVM), so the ``catalog2vec similar`` CLI
answers in a second. Indexes live at ``<lakehouse>/indexes/<model_version>/``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from catalog2vec.retrieval.index import EmbeddingIndex, IndexParams, build_index

log = logging.getLogger(__name__)


def models_root(lakehouse: str | os.PathLike[str]) -> Path:
    return Path(lakehouse) / "models"


def resolve_model_version(lakehouse: str | os.PathLike[str], model_version: str | None) -> str:
    """``latest`` (or empty) -> the newest ``<lakehouse>/models/*/model_card.json`` by its
    ``created_at`` field (file modification time when absent); any other value is returned as is."""
    if model_version and model_version != "latest":
        return model_version
    root = models_root(lakehouse)
    cards = sorted(root.glob("*/model_card.json")) if root.is_dir() else []
    if not cards:
        raise FileNotFoundError(
            f"no trained model under {root} (no */model_card.json); train one first or pass --model-version"
        )

    def key(card: Path) -> tuple[str, float]:
        try:
            created = str(json.loads(card.read_text()).get("created_at", ""))
        except (OSError, ValueError):
            created = ""
        return created, card.stat().st_mtime

    newest = max(cards, key=key)
    return newest.parent.name


def index_dir(lakehouse: str | os.PathLike[str], model_version: str) -> Path:
    return Path(lakehouse) / "indexes" / model_version


def load_embeddings(
    lakehouse: str | os.PathLike[str], model_version: str, item_ids: list[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """(item_ids, float32 matrix) of ``gold.item_embeddings`` for one model version, sorted by item_id."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from catalog2vec.lakehouse import read_arrow
    from catalog2vec.schemas import gold

    table = read_arrow(lakehouse, gold.ITEM_EMBEDDINGS, columns=["model_version", "item_id", "embedding"])
    table = table.filter(pc.equal(table["model_version"], model_version))
    if item_ids is not None:
        table = table.filter(pc.is_in(table["item_id"], value_set=pa.array(item_ids)))
    if table.num_rows == 0:
        raise ValueError(f"gold.item_embeddings has no rows for model_version {model_version!r}")
    table = table.sort_by("item_id")
    ids = [str(x) for x in table["item_id"].to_pylist()]
    return ids, embeddings_matrix(table["embedding"].to_pylist())


def embeddings_matrix(rows: list[Any]) -> np.ndarray:
    """Stack embedding arrays into (n, d) float32; raises ValueError on ragged rows."""
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    dims = {len(r) for r in rows}
    if len(dims) != 1:
        raise ValueError(f"embeddings have different dimensions: {sorted(dims)[:5]}")
    return np.asarray(rows, dtype=np.float32)


def build_or_load_index(
    lakehouse: str | os.PathLike[str],
    model_version: str,
    params: IndexParams | None = None,
    rebuild: bool = False,
) -> EmbeddingIndex:
    """Load ``indexes/<model_version>/`` if present and of the requested kind, else build and save it."""
    params = params or IndexParams()
    directory = index_dir(lakehouse, model_version)
    if not rebuild and (directory / "index.faiss").exists():
        idx = EmbeddingIndex.load(directory)
        if idx.params.kind == params.kind:
            return idx
    ids, matrix = load_embeddings(lakehouse, model_version)
    idx = build_index(ids, matrix, params, model_version)
    idx.save(directory)
    log.info("saved %s index of %d items to %s", params.kind, idx.size, directory)
    return idx


def item_titles(lakehouse: str | os.PathLike[str], item_ids: list[str] | None = None) -> dict[str, str]:
    """item_id -> title from bronze.catalog_items (empty dict if the table is absent)."""
    from catalog2vec.lakehouse import read_arrow, table_exists
    from catalog2vec.schemas import bronze

    if not table_exists(lakehouse, bronze.CATALOG_ITEMS):
        return {}
    t = read_arrow(lakehouse, bronze.CATALOG_ITEMS, columns=["item_id", "title"])
    wanted = set(item_ids) if item_ids is not None else None
    return {
        str(i): str(title or "")
        for i, title in zip(t["item_id"].to_pylist(), t["title"].to_pylist(), strict=True)
        if wanted is None or i in wanted
    }


def item_images(lakehouse: str | os.PathLike[str], item_ids: list[str]) -> dict[str, bytes]:
    """item_id -> JPEG bytes from silver.images (falls back to bronze image_uri files)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from catalog2vec.lakehouse import read_arrow, table_exists
    from catalog2vec.schemas import bronze, silver

    out: dict[str, bytes] = {}
    if table_exists(lakehouse, silver.IMAGES):
        t = read_arrow(lakehouse, silver.IMAGES, columns=["item_id", "image"])
        t = t.filter(pc.is_in(t["item_id"], value_set=pa.array(item_ids)))
        out = {
            str(i): bytes(b) for i, b in zip(t["item_id"].to_pylist(), t["image"].to_pylist(), strict=True)
        }
    missing = [i for i in item_ids if i not in out]
    if missing and table_exists(lakehouse, bronze.CATALOG_ITEMS):
        t = read_arrow(lakehouse, bronze.CATALOG_ITEMS, columns=["item_id", "image_uri"])
        t = t.filter(pc.is_in(t["item_id"], value_set=pa.array(missing)))
        for i, uri in zip(t["item_id"].to_pylist(), t["image_uri"].to_pylist(), strict=True):
            path = str(uri or "").removeprefix("file://")
            if path and Path(path).is_file():
                out[str(i)] = Path(path).read_bytes()
    return out
