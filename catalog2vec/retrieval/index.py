"""A faiss kNN index over item embeddings, with its item_id mapping.

Vectors are L2-normalised, so inner product = cosine similarity. ``flat`` (``IndexFlatIP``) is
exact and the default; ``ivf`` (``IndexIVFFlat``, inner product), ``ivfpq`` (``IndexIVFPQ``
re-ranked by 8-bit scalar-quantized vectors, ``IndexRefine``: the index sized to a memory budget,
:func:`choose_pq`) and ``hnsw`` (``IndexHNSWFlat`` over normalised vectors, L2 ranks exactly like
cosine) trade recall for speed or memory on large catalogs: measure it with
:func:`recall_vs_exact`. Scores returned are always cosine similarities.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from catalog2vec import storage
from catalog2vec.errors import InvalidInput
from catalog2vec.vectors import l2_normalize as l2_normalize

if TYPE_CHECKING:
    import faiss

log = logging.getLogger(__name__)

INDEX_KINDS = ("flat", "ivf", "ivfpq", "hnsw")
IVF_KINDS = ("ivf", "ivfpq")  # inverted-list indexes: nlist, nprobe, parts merged with shifted ids
# ivfpq re-ranking of the PQ candidates: by float32 (exact; 4·d bytes a vector), float16 (2·d) or
# 8-bit scalar-quantized (d) vectors, or none; a memory budget picks the first that fits after flat
PQ_REFINES = ("flat", "fp16", "sq8", "none")
REFINE_BYTES = {"flat": 4, "fp16": 2, "sq8": 1, "none": 0}
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
    pq_m: int = 0  # ivfpq: bytes of PQ code per vector (sub-quantizers of 8 bits; 0 = from the budget)
    refine: str = "fp16"  # ivfpq: re-rank the k_factor·k PQ candidates by flat | fp16 | sq8 vectors | none
    k_factor: int = 8  # ivfpq with refine: PQ candidates per neighbour re-ranked

    def validate(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise ValueError(f"unknown index kind {self.kind!r}; choose one of {INDEX_KINDS}")


def _build_faiss(vectors: np.ndarray, params: IndexParams) -> faiss.Index:
    import faiss

    n, d = vectors.shape
    index: Any
    if params.kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif params.kind == "ivfpq":
        nlist = params.nlist or int(min(4 * np.sqrt(n), n / 39))
        m = params.pq_m = params.pq_m or choose_pq(n, d, 0)[0]
        index = empty_index("ivfpq", d, vectors, max(1, nlist), pq_m=m, refine=params.refine,
                            k_factor=params.k_factor)
        set_nprobe(index, params.nprobe)
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
            "sha256": {storage.basename(p): _sha256(b) for p, b in payload.items()},
        }
        storage.publish(storage.join(directory, META_FILE), meta, payload)
        return storage.normalize(directory)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> EmbeddingIndex:
        """Load a published index (one whose manifest exists): a single-file one (``index.faiss``)
        or one written in parts by the executors (:func:`assemble_parts`)."""
        import faiss

        d = storage.normalize(directory)
        if not storage.exists(storage.join(d, META_FILE)):
            raise FileNotFoundError(f"no published faiss index at {d} (no {META_FILE})")
        meta = storage.read_json(storage.join(d, META_FILE))
        params = IndexParams(**meta.get("params", {}))
        if meta.get("layout") == PARTS_LAYOUT:
            merged: Any
            merged, part_ids = assemble_parts(d, meta)
            if params.kind == "ivf":  # (ivfpq: its re-ranking index reconstructs)
                merged.make_direct_map()  # reconstruct() for lookups by item_id
            return cls(merged, part_ids, params, meta.get("model_version", ""), None)
        digests = meta.get("sha256", {})
        raw = np.frombuffer(read_verified(storage.join(d, INDEX_FILE), digests, INDEX_FILE), dtype=np.uint8)
        index: Any = faiss.deserialize_index(raw)
        if params.kind in IVF_KINDS:
            set_nprobe(index, params.nprobe)
        elif params.kind == "hnsw":
            index.hnsw.efSearch = params.ef_search
        ids = json.loads(read_verified(storage.join(d, IDS_FILE), digests, IDS_FILE))
        if len(ids) != index.ntotal:
            raise ValueError(f"{d}: {len(ids)} item ids for {index.ntotal} index rows")
        vec_path = storage.join(d, "vectors.npy")
        vectors = (np.load(io.BytesIO(read_verified(vec_path, digests, "vectors.npy")), allow_pickle=False)
                   if "vectors.npy" in meta.get("files", []) else None)
        return cls(index, ids, params, meta.get("model_version", ""), vectors)


class IndexIntegrityError(InvalidInput):
    """A saved index file whose bytes do not match the sha256 its manifest recorded (or a manifest
    that records none): it is never deserialised; rebuild it with ``jobs/neighbors.py``."""


def _sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def read_verified(path: str, digests: dict[str, str], name: str) -> bytes:
    """The bytes of ``path`` if their sha256 is the one the manifest recorded for ``name``, else
    :class:`IndexIntegrityError` — faiss deserialisation is native code: only verified bytes reach it."""
    want = digests.get(name)
    if not want:
        raise IndexIntegrityError(f"{path}: the index manifest records no sha256 for {name}; rebuild the index")
    data = storage.read_bytes(path)
    if _sha256(data) != want:
        raise IndexIntegrityError(f"{path}: sha256 differs from the index manifest; rebuild the index")
    return data


PARTS_LAYOUT = "parts"  # index.json "layout": trained.faiss + parts/<build_id>/part-*.faiss (+ .ids.json)
TRAINED_FILE = "trained.faiss"
PARTS_DIR = "parts"


def ivf_nlist(n_total: int, n_train: int, nlist: int = 0) -> int:
    """Inverted lists of an IVF index over ``n_total`` vectors trained on ``n_train``.

    autofaiss's rule of thumb, 4·sqrt(N) lists, capped so that each list gets the 39 training
    vectors faiss's k-means wants (``n_train / 39``); ``nlist`` > 0 is taken as given (capped at
    ``n_train``).
    """
    want = nlist or int(4 * np.sqrt(max(1, n_total)))
    cap = n_train if nlist else max(1, n_train // 39)
    return max(1, min(want, cap, n_train))


PQ_BITS = 8  # bits per PQ sub-quantizer code: 256 centroids each (faiss wants 39 x 256 training vectors)
ID_BYTES = 8  # an inverted list stores a 64-bit id per vector


def ivf_bytes_per_vector(dim: int, kind: str = "ivf", pq_m: int = 0, refine: str = "fp16") -> int:
    """Index memory per vector: IVF-Flat keeps the float32 vector, IVF-PQ ``pq_m`` code bytes plus
    the vector its re-ranking reads (``REFINE_BYTES[refine]`` per dimension); both an id in the lists."""
    if kind == "ivf":
        return ID_BYTES + 4 * dim
    return ID_BYTES + pq_m + REFINE_BYTES[refine] * dim


def choose_pq(n: int, dim: int, budget_bytes: int) -> tuple[int, str]:
    """(pq_m, refine) of an IVF-PQ index over ``n`` vectors of ``dim`` that fits ``budget_bytes``
    (autofaiss's rule: the largest code that fits) with the most exact re-ranking that fits beside
    it: fp16 (2·dim bytes; flat, 4·dim, would need more than IVF-Flat), then sq8, then PQ codes alone;
    ``pq_m`` divides ``dim``, at most dim/2 (≥ 2 dimensions per sub-quantizer). ``budget_bytes`` 0:
    no budget, dim/4 bytes and fp16. :class:`InvalidInput` if nothing fits."""
    ms = [m for m in range(max(1, dim // 2), 0, -1) if dim % m == 0]
    if budget_bytes <= 0:
        return next(m for m in ms if m <= max(1, dim // 4)), "fp16"
    for refine in PQ_REFINES[1:]:
        for m in ms:
            if n * ivf_bytes_per_vector(dim, "ivfpq", m, refine) <= budget_bytes:
                return m, refine
    raise InvalidInput(
        f"retrieval.index_memory_mb={budget_bytes / 2**20:.0f}: an IVF-PQ index of {n} vectors needs at least "
        f"{n * ivf_bytes_per_vector(dim, 'ivfpq', ms[-1], 'none') / 2**20:.0f} MB; raise it (or shard the search)"
    )


def set_nprobe(index: faiss.Index, nprobe: int) -> None:
    """Lists visited per query of an IVF index, also inside an ``IndexRefine`` (ivfpq)."""
    import faiss

    ivf = faiss.extract_index_ivf(index)
    ivf.nprobe = max(1, min(int(nprobe), int(ivf.nlist)))


def merge_into(index: faiss.Index, piece: faiss.Index, shift: int) -> None:
    """``index.merge_from(piece, shift)``; an ``IndexRefine`` (which faiss cannot merge) merges its
    PQ index (ids shifted) and its re-ranking vectors (in the same row order) one by one."""
    import faiss

    if isinstance(index, faiss.IndexRefine):
        other: Any = piece
        index.base_index.merge_from(faiss.downcast_index(other.base_index), shift)
        index.refine_index.merge_from(faiss.downcast_index(other.refine_index), 0)
        index.ntotal = index.base_index.ntotal
    else:
        index.merge_from(piece, shift)


def empty_index(
    kind: str, dim: int, sample: np.ndarray | None = None, nlist: int = 0, pq_m: int = 0, refine: str = "fp16",
    k_factor: int = 8,
) -> faiss.Index:
    """An index with no vectors yet: ``flat`` (nothing to train), ``ivf`` (inverted lists over
    inner product, the coarse quantizer trained on the L2-normalised ``sample``) or ``ivfpq``
    (the same lists holding ``pq_m``-byte PQ codes of the residuals; with a ``refine``, wrapped in an
    ``IndexRefine`` that re-ranks the ``k_factor``·k best PQ candidates by flat/fp16/sq8 vectors)."""
    import faiss

    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind not in IVF_KINDS:
        raise ValueError(f"an index built in parts is flat, ivf or ivfpq, not {kind!r}")
    if sample is None or len(sample) == 0:
        raise ValueError(f"an {kind} index needs a training sample")
    if kind == "ivfpq" and (pq_m < 1 or dim % pq_m or refine not in PQ_REFINES):
        raise InvalidInput(f"ivfpq: pq_m={pq_m} must divide the dimension {dim}; refine one of {PQ_REFINES}")
    x = l2_normalize(sample)
    quantizer = faiss.IndexFlatIP(dim)
    lists = max(1, min(nlist, len(x)))
    index: Any
    if kind == "ivf":
        index = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexIVFPQ(quantizer, dim, lists, pq_m, PQ_BITS, faiss.METRIC_INNER_PRODUCT)
        if refine != "none":
            qt = {"fp16": faiss.ScalarQuantizer.QT_fp16, "sq8": faiss.ScalarQuantizer.QT_8bit}
            fine = (faiss.IndexFlatIP(dim) if refine == "flat"
                    else faiss.IndexScalarQuantizer(dim, qt[refine], faiss.METRIC_INNER_PRODUCT))
            index = faiss.IndexRefine(index, fine)
            index.k_factor = float(k_factor)
    index.train(x)
    # a serialised copy owns its sub-indexes (the Python wrappers above do not outlive this call)
    return faiss.deserialize_index(faiss.serialize_index(index))


def choose_nprobe(
    trained: faiss.Index, sample: np.ndarray, k: int, target: float, queries: int = 1000
) -> tuple[int, float]:
    """The fewest lists to visit (a power of two, at most nlist) for which the IVF index, filled
    with the ``sample``, finds ``target`` of the exact top-k of ``queries`` sample items
    (recall@k vs exact search on the sample). Returns (nprobe, recall on the sample)."""
    import faiss

    x = l2_normalize(sample)
    index: Any = faiss.deserialize_index(faiss.serialize_index(trained))
    index.add(x)
    q = x[: max(1, min(queries, len(x)))]
    kk = max(1, min(k + 1, len(x)))
    exact = faiss.IndexFlatIP(x.shape[1])
    exact.add(x)
    _, epos = exact.search(q, kk)
    nlist = int(faiss.extract_index_ivf(index).nlist)
    nprobe, recall = 1, 0.0
    while True:
        set_nprobe(index, nprobe)
        _, apos = index.search(q, kk)
        recall = recall_vs_exact(apos, epos)
        if recall >= target or nprobe >= nlist:
            return nprobe, recall
        nprobe = min(2 * nprobe, nlist)


def part_paths(directory: str | os.PathLike[str], build_id: str, part: int) -> tuple[str, str]:
    """(faiss file, item-id file) of one part, relative to the index directory and absolute."""
    rel = f"{PARTS_DIR}/{build_id}/part-{part:05d}"
    return rel, storage.join(directory, *rel.split("/"))


def write_part(
    directory: str | os.PathLike[str], build_id: str, part: int, trained: faiss.Index, item_ids: list[str],
    vectors: np.ndarray,
) -> dict[str, Any]:
    """Add the (L2-normalised) ``vectors`` to a copy of ``trained`` and save it as one part with
    its item ids (row i of the part is ``item_ids[i]``); returns the part's manifest entry."""
    import faiss

    index: Any = faiss.deserialize_index(faiss.serialize_index(trained))
    index.add(l2_normalize(vectors))
    rel, path = part_paths(directory, build_id, part)
    blob, ids_blob = faiss.serialize_index(index).tobytes(), json.dumps(item_ids).encode("utf-8")
    storage.write_bytes(path + ".faiss", blob)
    storage.write_bytes(path + ".ids.json", ids_blob)
    return {"part": part, "path": rel, "size": len(item_ids),
            "sha256": {"faiss": _sha256(blob), "ids": _sha256(ids_blob)}}


def publish_parts(
    directory: str | os.PathLike[str],
    trained: faiss.Index,
    parts: list[dict[str, Any]],
    params: IndexParams,
    model_version: str,
    build_id: str,
    extra: dict[str, Any] | None = None,
) -> str:
    """Publish an index whose vectors the executors wrote as ``parts`` (in item order): the
    trained empty index first, the manifest (the marker) last. Part directories the manifest no
    longer names (earlier builds) are removed; an incremental build names its predecessor's."""
    import faiss

    d = storage.normalize(directory)
    parts = sorted(parts, key=lambda p: int(p["part"]))
    trained_blob = faiss.serialize_index(trained).tobytes()
    meta = {
        "model_version": model_version,
        "layout": PARTS_LAYOUT,
        "build_id": build_id,
        "kind": params.kind,
        "params": params.__dict__,
        "size": sum(int(p["size"]) for p in parts),
        "dim": int(trained.d),
        "metric": "cosine (inner product on L2-normalised vectors)",
        "trained": TRAINED_FILE,
        "sha256": {TRAINED_FILE: _sha256(trained_blob)},
        "parts": parts,
        **(extra or {}),
    }
    storage.publish(
        storage.join(d, META_FILE), meta, {storage.join(d, TRAINED_FILE): trained_blob}
    )
    builds = storage.join(d, PARTS_DIR)
    used = {str(p["path"]).split("/")[1] for p in parts}
    if storage.isdir(builds):
        for old in storage.listdir(builds):
            if storage.basename(old) not in used:
                storage.remove(old, recursive=True)
    return d


def assemble_parts(
    directory: str | os.PathLike[str], meta: dict[str, Any], only: frozenset[str] | None = None
) -> tuple[faiss.Index, list[str]]:
    """The whole index of a parts layout: the trained index with every part merged in, in order
    (IVF ids shifted by the rows before the part), and the item id of every row. ``only``: just
    the parts of these paths (the items an incremental run added)."""
    import faiss

    d = storage.normalize(directory)
    trained = meta.get("trained", TRAINED_FILE)
    raw = np.frombuffer(read_verified(storage.join(d, trained), meta.get("sha256", {}), trained), dtype=np.uint8)
    index: Any = faiss.deserialize_index(raw)
    ids: list[str] = []
    shift = meta.get("kind") in IVF_KINDS
    for part in sorted(meta["parts"], key=lambda p: int(p["part"])):
        if only is not None and str(part["path"]) not in only:
            continue
        base = storage.join(d, *str(part["path"]).split("/"))
        digests = part.get("sha256", {})
        piece = faiss.deserialize_index(np.frombuffer(read_verified(base + ".faiss", digests, "faiss"), dtype=np.uint8))
        merge_into(index, piece, int(index.ntotal) if shift else 0)
        ids.extend(json.loads(read_verified(base + ".ids.json", digests, "ids")))
    if len(ids) != index.ntotal:
        raise ValueError(f"{d}: {len(ids)} item ids for {index.ntotal} index rows")
    if meta.get("kind") in IVF_KINDS:
        set_nprobe(index, int(meta.get("params", {}).get("nprobe") or 1))
    return index, ids


_LOADED: dict[tuple[str, str, frozenset[str] | None], tuple[Any, np.ndarray]] = {}


def cached_parts_index(
    directory: str, build_id: str, only: frozenset[str] | None = None
) -> tuple[faiss.Index, np.ndarray]:
    """(index, item ids as a numpy object array) of a published parts index (``only``: of these
    parts), loaded once per Python process (an executor's reused worker) and kept until another
    build is asked for."""
    key = (storage.normalize(directory), build_id, only)
    if key not in _LOADED:
        for stale in [k for k in _LOADED if k[:2] != key[:2]]:
            del _LOADED[stale]  # one build at a time: a new build replaces the old one in memory
        meta = storage.read_json(storage.join(key[0], META_FILE))
        if meta.get("build_id") != build_id:
            raise ValueError(f"{key[0]} holds build {meta.get('build_id')!r}, not {build_id!r}")
        index, ids = assemble_parts(key[0], meta, only)
        _LOADED[key] = (index, np.asarray(ids, dtype=object))
        log.info("loaded index %s build %s: %d vectors (pid %d)", key[0], build_id, index.ntotal, os.getpid())
    return _LOADED[key]


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
