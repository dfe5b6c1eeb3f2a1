"""catalog2vec.retrieval: faiss kNN index over item embeddings (exact by default, IVF/HNSW
optional), saved under ``<lakehouse>/indexes/<model_version>/``, queried by item_id or by image."""

from catalog2vec.retrieval.index import (
    INDEX_KINDS,
    EmbeddingIndex,
    IndexParams,
    brute_force,
    build_index,
    l2_normalize,
    recall_vs_exact,
)
from catalog2vec.retrieval.store import (
    build_or_load_index,
    index_dir,
    item_images,
    item_titles,
    load_embeddings,
)

__all__ = [
    "INDEX_KINDS",
    "EmbeddingIndex",
    "IndexParams",
    "brute_force",
    "build_index",
    "build_or_load_index",
    "index_dir",
    "item_images",
    "item_titles",
    "l2_normalize",
    "load_embeddings",
    "recall_vs_exact",
]
