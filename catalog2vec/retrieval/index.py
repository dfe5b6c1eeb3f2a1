"""A faiss kNN index over item embeddings, with its item_id mapping.

Vectors are L2-normalised, so inner product = cosine similarity. ``flat`` (``IndexFlatIP``) is
exact and the default; ``ivf`` (``IndexIVFFlat``, inner product) and ``hnsw`` (``IndexHNSWFlat``
over normalised vectors, L2 ranks exactly like cosine) trade recall for speed on large catalogs:
measure it with :func:`recall_vs_exact`. Scores returned are always cosine similarities.
"""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from catalog2vec import storage
from catalog2vec.vectors import l2_normalize as l2_normalize

if TYPE_CHECKING:
    import faiss

log = logging.getLogger(__name__)

INDEX_KINDS = ("flat", "ivf", "hnsw")
INDEX_FILE = "index.faiss"
IDS_FILE = "item_ids.json"
META_FILE = "index.json"


@dataclass
class IndexParams:
    kind: str = "flat"
    nlist: int = 0  # ivf: number of inverted lists (0 = min(4*sqrt(n), n/39))
    nprobe: int = 8  # ivf: lists visited per query
    hnsw_m: int = 32  # hnsw: graph degree
    ef_search: int = 64  # hnsw: search beam width
    ef_construction: int = 80

    def validate(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise ValueError(f"unknown index kind {self.kind!r}; choose one of {INDEX_KINDS}")


def _build_faiss(vectors: np.ndarray, params: IndexParams) -> faiss.Index:
    import faiss

    n, d = vectors.shape
    index: Any
    if params.kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif params.kind == "ivf":
        # faiss wants >= 39 training points per list; 4*sqrt(n) lists for large catalogs
        nlist = params.nlist or int(min(4 * np.sqrt(n), n / 39))
        nlist = max(1, min(nlist, n))
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = max(1, min(params.nprobe, nlist))
    else:  # hnsw: L2 on unit vectors ranks like cosine (|a-b|^2 = 2 - 2 cos)
        index = faiss.IndexHNSWFlat(d, params.hnsw_m)
        index.hnsw.efConstruction = params.ef_construction
        index.hnsw.efSearch = params.ef_search
    index.add(vectors)
    return index


@dataclass
class EmbeddingIndex:
    """A faiss index plus the item_id of every row (row i of the index is ``item_ids[i]``)."""

    index: faiss.Index
    item_ids: list[str]
    params: IndexParams = field(default_factory=IndexParams)
    model_version: str = ""
    vectors: np.ndarray | None = None  # normalised vectors (kept for lookups by item_id)

    def __post_init__(self) -> None:
        self._pos = {iid: i for i, iid in enumerate(self.item_ids)}
        if len(self._pos) != len(self.item_ids):
            raise ValueError("item_ids are not unique")

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._pos

    def vector(self, item_id: str) -> np.ndarray:
        if item_id not in self._pos:
            raise KeyError(
                f"item_id {item_id!r} is not in the index ({self.size} items, model {self.model_version})"
            )
        if self.vectors is not None:
            return np.asarray(self.vectors[self._pos[item_id]], dtype=np.float32)
        return np.asarray(self.index.reconstruct(self._pos[item_id]), dtype=np.float32)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, positions) for each query row, both (nq, k); missing slots have position -1."""
        q = l2_normalize(np.atleast_2d(queries))
        if q.shape[1] != self.dim:
            raise ValueError(f"query dimension {q.shape[1]} != index dimension {self.dim}")
        k_eff = max(1, min(k, self.size))
        dist, pos = self.index.search(q, k_eff)
        if self.params.kind == "hnsw":
            dist = 1.0 - dist / 2.0  # squared L2 on unit vectors -> cosine
        if k_eff < k:
            pad = k - k_eff
            dist = np.pad(dist, ((0, 0), (0, pad)), constant_values=-np.inf)
            pos = np.pad(pos, ((0, 0), (0, pad)), constant_values=-1)
        return dist.astype(np.float32), pos.astype(np.int64)

    def neighbors(
        self, queries: np.ndarray, k: int, exclude: list[str | None] | None = None
    ) -> list[list[tuple[str, float]]]:
        """Top-k (item_id, cosine) per query, skipping ``exclude[i]`` (the query item itself)."""
        scores, pos = self.search(queries, k + (1 if exclude is not None else 0))
        out: list[list[tuple[str, float]]] = []
        for i in range(pos.shape[0]):
            skip = exclude[i] if exclude is not None else None
            row = [
                (self.item_ids[p], float(s))
                for s, p in zip(scores[i], pos[i], strict=True)
                if p >= 0 and self.item_ids[p] != skip
            ]
            out.append(row[:k])
        return out

    def similar_to(self, item_id: str, k: int) -> list[tuple[str, float]]:
        return self.neighbors(self.vector(item_id)[None, :], k, exclude=[item_id])[0]

    def save(self, directory: str | os.PathLike[str]) -> str:
        """Publish the index under ``directory`` (local path or URI): the faiss index, the item ids
        and the vectors first, the manifest (``meta.json``, the marker) last."""
        import faiss

        payload: dict[str, bytes | str] = {
            storage.join(directory, INDEX_FILE): faiss.serialize_index(self.index).tobytes(),
            storage.join(directory, IDS_FILE): json.dumps(self.item_ids),
        }
        if self.vectors is not None:
            buf = io.BytesIO()
            np.save(buf, self.vectors)
            payload[storage.join(directory, "vectors.npy")] = buf.getvalue()
        meta = {
            "model_version": self.model_version,
            "kind": self.params.kind,
            "params": self.params.__dict__,
            "size": self.size,
            "dim": self.dim,
            "metric": "cosine (inner product on L2-normalised vectors)",
            "files": sorted(storage.basename(p) for p in payload),
        }
        storage.publish(storage.join(directory, META_FILE), meta, payload)
        return storage.normalize(directory)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> EmbeddingIndex:
        """Load a published index (one whose manifest exists)."""
        import faiss

        d = storage.normalize(directory)
        if not storage.exists(storage.join(d, META_FILE)):
            raise FileNotFoundError(f"no published faiss index at {d} (no {META_FILE})")
        meta = storage.read_json(storage.join(d, META_FILE))
        params = IndexParams(**meta.get("params", {}))
        raw = np.frombuffer(storage.read_bytes(storage.join(d, INDEX_FILE)), dtype=np.uint8)
        index: Any = faiss.deserialize_index(raw)
        if params.kind == "ivf":
            index.nprobe = params.nprobe
        elif params.kind == "hnsw":
            index.hnsw.efSearch = params.ef_search
        ids = json.loads(storage.read_bytes(storage.join(d, IDS_FILE)))
        if len(ids) != index.ntotal:
            raise ValueError(f"{d}: {len(ids)} item ids for {index.ntotal} index rows")
        vec_path = storage.join(d, "vectors.npy")
        vectors = np.load(io.BytesIO(storage.read_bytes(vec_path))) if "vectors.npy" in meta.get("files", []) else None
        return cls(index, ids, params, meta.get("model_version", ""), vectors)


def build_index(
    item_ids: list[str],
    embeddings: np.ndarray,
    params: IndexParams | None = None,
    model_version: str = "",
) -> EmbeddingIndex:
    """Normalise ``embeddings`` (n, d) and index them; row i belongs to ``item_ids[i]``."""
    params = params or IndexParams()
    params.validate()
    vectors = l2_normalize(embeddings)
    if len(item_ids) != vectors.shape[0]:
        raise ValueError(f"{len(item_ids)} item ids for {vectors.shape[0]} vectors")
    if vectors.shape[0] == 0:
        raise ValueError("cannot build an index over zero vectors")
    index = _build_faiss(vectors, params)
    log.info("built %s index: %d vectors of dim %d", params.kind, vectors.shape[0], vectors.shape[1])
    return EmbeddingIndex(index, list(item_ids), params, model_version, vectors)


def brute_force(queries: np.ndarray, base: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine top-k by numpy (reference for tests and recall)."""
    q = l2_normalize(np.atleast_2d(queries))
    b = l2_normalize(base)
    sims = q @ b.T
    k = min(k, b.shape[0])
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), order


def recall_vs_exact(approx_pos: np.ndarray, exact_pos: np.ndarray) -> float:
    """Mean fraction of the exact top-k found by the approximate search (recall@k vs exact)."""
    if approx_pos.shape != exact_pos.shape:
        raise ValueError("approximate and exact results must have the same shape")
    hits = [
        len(set(a[a >= 0]) & set(e[e >= 0])) / max(1, int((e >= 0).sum()))
        for a, e in zip(approx_pos, exact_pos, strict=False)
    ]
    return float(np.mean(hits)) if hits else 0.0
