"""Lakehouse side of retrieval: model-version resolution, reading embeddings, saved indexes.

Everything here reads Delta tables with delta-rs (no JVM), so the ``catalog2vec similar`` CLI
answers in a second. Indexes live at ``<lakehouse>/indexes/<model_version>/``.
"""

from __future__ import annotations

import logging
import os

from catalog2vec import storage
from catalog2vec.lakehouse import read_arrow, table_exists
from catalog2vec.lakehouse.gold import load_embeddings
from catalog2vec.layout import index_dir
from catalog2vec.retrieval.index import META_FILE, EmbeddingIndex, IndexParams, build_index
from catalog2vec.schemas import bronze, silver

log = logging.getLogger(__name__)


def build_or_load_index(
    root: str | os.PathLike[str],
    model_version: str,
    params: IndexParams | None = None,
    rebuild: bool = False,
) -> EmbeddingIndex:
    """Load ``indexes/<model_version>/`` if present and of the requested kind, else build and save it."""
    params = params or IndexParams()
    directory = index_dir(root, model_version)
    if not rebuild and storage.exists(storage.join(directory, META_FILE)):
        idx = EmbeddingIndex.load(directory)
        if idx.params.kind == params.kind:
            return idx
    ids, matrix = load_embeddings(root, model_version)
    idx = build_index(ids, matrix, params, model_version)
    idx.save(directory)
    log.info("saved %s index of %d items to %s", params.kind, idx.size, directory)
    return idx


def item_titles(root: str | os.PathLike[str], item_ids: list[str] | None = None) -> dict[str, str]:
    """item_id -> title from bronze.catalog_items (empty dict if the table is absent)."""
    if not table_exists(root, bronze.CATALOG_ITEMS):
        return {}
    t = read_arrow(root, bronze.CATALOG_ITEMS, columns=["item_id", "title"])
    wanted = set(item_ids) if item_ids is not None else None
    return {
        str(i): str(title or "")
        for i, title in zip(t["item_id"].to_pylist(), t["title"].to_pylist(), strict=True)
        if wanted is None or i in wanted
    }


def item_images(root: str | os.PathLike[str], item_ids: list[str]) -> dict[str, bytes]:
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
    if table_exists(root, silver.IMAGES):
        t = read_arrow(root, silver.IMAGES, columns=["item_id", "image"], filters=[("item_id", "in", list(item_ids))])
        out = {
            str(i): bytes(b) for i, b in zip(t["item_id"].to_pylist(), t["image"].to_pylist(), strict=True)
        }
    return out
