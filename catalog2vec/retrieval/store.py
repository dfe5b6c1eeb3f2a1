"""Lakehouse side of retrieval: model-version resolution, reading embeddings, saved indexes.

Everything here reads Delta tables with delta-rs (no JVM), so the ``catalog2vec similar`` CLI
answers in a second. Indexes live at ``<lakehouse>/indexes/<model_version>/``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from catalog2vec import storage
from catalog2vec.errors import InvalidInput
from catalog2vec.lakehouse import read_arrow, table_exists
from catalog2vec.layout import index_dir
from catalog2vec.retrieval.index import META_FILE, EmbeddingIndex, IndexParams, build_index
from catalog2vec.schemas import bronze, gold, silver

log = logging.getLogger(__name__)


def load_embeddings(
    lakehouse: str | os.PathLike[str], model_version: str, item_ids: list[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """(item_ids, float32 matrix) of ``gold.item_embeddings`` for one model version, sorted by item_id."""

    filters: list[tuple[str, str, Any]] = [("model_version", "=", model_version)]
    if item_ids is not None:
        filters.append(("item_id", "in", list(item_ids)))
    table = read_arrow(lakehouse, gold.ITEM_EMBEDDINGS, columns=["item_id", "embedding"], filters=filters)
    if table.num_rows == 0:
        raise InvalidInput(f"gold.item_embeddings has no rows for model_version {model_version!r}")
    table = table.sort_by("item_id")
    ids = [str(x) for x in table["item_id"].to_pylist()]
    return ids, embeddings_matrix(table["embedding"].to_pylist())


def embeddings_matrix(rows: list[Any]) -> np.ndarray:
    """Stack embedding arrays into (n, d) float32; raises ValueError on ragged rows."""
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    dims = {len(r) for r in rows}
    if len(dims) != 1:
        raise InvalidInput(f"embeddings have different dimensions: {sorted(dims)[:5]}")
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
    if not rebuild and storage.exists(storage.join(directory, META_FILE)):
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
    """item_id -> JPEG bytes from silver.images; an item without a row there is absent.

    Only ``silver.images`` is read: its bytes passed ingest's checks (the image-URI rules, the size
    and pixel limits) and were re-encoded. The raw ``bronze.catalog_items.image_uri`` is never
    opened here: it names whatever a crawled row says (``/etc/passwd``, ``http://127.0.0.1:…``),
    and this function serves the neighbour browser and ``catalog2vec similar --grid``.

    The item_id filter is pushed into the Delta read: only files whose item_id statistics can
    hold a requested item are opened (``maintain_tables`` Z-orders silver/images by item_id, so a
    handful of ids touches a handful of files), instead of every image's bytes.
    """

    out: dict[str, bytes] = {}
    if not item_ids:
        return out
    if table_exists(lakehouse, silver.IMAGES):
        t = read_arrow(lakehouse, silver.IMAGES, columns=["item_id", "image"], filters=[("item_id", "in", list(item_ids))])
        out = {
            str(i): bytes(b) for i, b in zip(t["item_id"].to_pylist(), t["image"].to_pylist(), strict=True)
        }
    return out
