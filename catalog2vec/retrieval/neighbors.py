"""``gold.item_neighbors``: the k nearest items of every item (for analysts), and the saved index.

Every pass over items runs on the executors; the driver holds O(k) (see docs/scale.md):

1. the embeddings are validated in Spark (:func:`~catalog2vec.retrieval.inputs.embedding_frames`)
   and sorted by item_id;
2. up to ``retrieval.exact_max_items`` items the index is exact (``flat``); above, an IVF index's
   coarse quantizer is trained on the driver from a sample of ``retrieval.train_sample`` vectors
   (nlist ≈ 4·sqrt(N), nprobe the fewest reaching ``retrieval.target_recall`` on the sample);
   IVF-PQ (codes re-ranked by fp16/sq8 vectors) where an IVF-Flat index would not fit
   ``retrieval.index_memory_mb``;
3. each executor task adds its partition's vectors to a copy of the trained index and saves it as
   one part under ``indexes/<model_version>/parts/<build_id>/``; the driver publishes the manifest;
4. each executor Python worker loads the assembled index once (module-level cache keyed by the
   index path and build id) and searches every item's top-k in ``mapInArrow``; the rows go
   straight to Delta (``replaceWhere`` on the model version);
5. IVF: recall@k against exact search, computed in the executors for ``retrieval.recall_queries``
   items, is part of the job's counts.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from catalog2vec.config import Config
from catalog2vec.errors import InvalidInput
from catalog2vec.lakehouse import write_table
from catalog2vec.retrieval.index import (
    IVF_KINDS,
    IndexParams,
    cached_parts_index,
    choose_nprobe,
    choose_pq,
    empty_index,
    ivf_bytes_per_vector,
    ivf_nlist,
    publish_parts,
    write_part,
)
from catalog2vec.retrieval.inputs import embedding_frames, quarantine_invalid_frame
from catalog2vec.retrieval.store import index_dir
from catalog2vec.schemas import analysis
from catalog2vec.vectors import l2_normalize

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

JOB_KINDS = ("auto", "flat", "ivf", "ivfpq")


def index_params(cfg: Config) -> IndexParams:
    r = cfg.retrieval
    kind = "flat" if r.index == "auto" else r.index
    params = IndexParams(kind=kind, nlist=r.nlist, nprobe=r.nprobe, hnsw_m=r.hnsw_m, ef_search=r.ef_search,
                         pq_m=r.pq_m, refine=r.pq_refine or "fp16")
    params.validate()
    return params


def job_index_kind(cfg: Config, n_items: int, dim: int = 0) -> str:
    """``flat``, ``ivf`` or ``ivfpq`` for a catalog of ``n_items`` vectors of ``dim``:
    ``retrieval.index = auto`` is exact up to ``retrieval.exact_max_items``, IVF above, and IVF-PQ
    where an IVF-Flat index would exceed ``retrieval.index_memory_mb`` (> 0)."""
    r = cfg.retrieval
    if r.index not in JOB_KINDS:
        raise InvalidInput(
            f"retrieval.index={r.index!r}: the neighbors job builds one of {JOB_KINDS} "
            "(hnsw is for the single-machine `catalog2vec similar` and the browser)"
        )
    if r.index != "auto":
        return r.index
    if n_items <= r.exact_max_items:
        return "flat"
    budget = r.index_memory_mb * 2**20
    return "ivfpq" if budget > 0 and n_items * ivf_bytes_per_vector(dim) > budget else "ivf"


# ---- executor-side functions (module level: pickled by reference, run in the Python workers) ----


def _task_threads() -> None:
    """faiss uses the task's cores, not every core of the machine (tasks run side by side)."""
    import faiss
    from pyspark import TaskContext

    ctx = TaskContext.get()
    faiss.omp_set_num_threads(max(1, int(ctx.cpus())) if ctx is not None else 1)


def batch_matrix(column: pa.Array | pa.ChunkedArray, dim: int) -> np.ndarray:
    """An Arrow ``list<float>`` column of equal-length rows as an (n, dim) float32 matrix."""
    import pyarrow as pa

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    flat = arr.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=np.float32).reshape(len(arr), dim)


def _add_parts(
    batches: Iterator[pa.RecordBatch], directory: str, build_id: str, trained_bytes: bytes, dim: int,
    part_offset: int = 0,
) -> Iterator[pa.RecordBatch]:
    import faiss
    import pyarrow as pa
    from pyspark import TaskContext

    _task_threads()
    ids: list[str] = []
    mats: list[np.ndarray] = []
    for b in batches:
        ids.extend(str(i) for i in b.column("item_id").to_pylist())
        mats.append(batch_matrix(b.column("embedding"), dim))
    if not ids:
        return
    ctx = TaskContext.get()
    part = part_offset + (ctx.partitionId() if ctx is not None else 0)
    trained = faiss.deserialize_index(np.frombuffer(trained_bytes, dtype=np.uint8))
    entry = write_part(directory, build_id, part, trained, ids, np.concatenate(mats))
    yield pa.RecordBatch.from_pydict(
        {
            "part": pa.array([entry["part"]], pa.int32()),
            "path": pa.array([entry["path"]], pa.string()),
            "size": pa.array([entry["size"]], pa.int64()),
            "sha_faiss": pa.array([entry["sha256"]["faiss"]], pa.string()),
            "sha_ids": pa.array([entry["sha256"]["ids"]], pa.string()),
        }
    )


def _search(
    batches: Iterator[pa.RecordBatch], directory: str, build_id: str, k: int, dim: int, model_version: str,
    run_id: str, only: frozenset[str] | None = None,
) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    _task_threads()
    index, ids = cached_parts_index(directory, build_id, only)
    for b in batches:
        if b.num_rows == 0:
            continue
        own = np.asarray(b.column("item_id").to_pylist(), dtype=object)
        x = l2_normalize(batch_matrix(b.column("embedding"), dim))
        scores, pos = index.search(x, max(1, min(k + 1, int(index.ntotal))))
        found = pos >= 0
        nid = np.full(pos.shape, None, dtype=object)
        nid[found] = ids[pos[found]]
        keep = found & (nid != own[:, None])  # the query item itself is not its own neighbour
        rank = np.cumsum(keep, axis=1)
        keep &= rank <= k
        r, c = np.nonzero(keep)  # row-major: each item's neighbours in rank order
        n = len(r)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array([model_version] * n, pa.string()),
                pa.array(own[r], pa.string()),
                pa.array(rank[r, c].astype(np.int32), pa.int32()),
                pa.array(nid[r, c], pa.string()),
                pa.array(scores[r, c].astype(np.float32), pa.float32()),
                pa.array([run_id] * n, pa.string()),
            ],
            schema=NEIGHBOR_ARROW_SCHEMA(),
        )


def _exact_topk(
    batches: Iterator[pa.RecordBatch], queries: np.ndarray, k: int, dim: int
) -> Iterator[pa.RecordBatch]:
    """Each batch's k most similar items to every query (exact cosine): (query, item_id, score)."""
    import pyarrow as pa

    _task_threads()
    for b in batches:
        if b.num_rows == 0:
            continue
        ids = np.asarray(b.column("item_id").to_pylist(), dtype=object)
        sims = queries @ l2_normalize(batch_matrix(b.column("embedding"), dim)).T
        kk = min(k, sims.shape[1])
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        q = np.repeat(np.arange(len(queries), dtype=np.int32), kk)
        yield pa.RecordBatch.from_pydict(
            {
                "query": pa.array(q, pa.int32()),
                "item_id": pa.array(ids[top.ravel()], pa.string()),
                "score": pa.array(np.take_along_axis(sims, top, axis=1).ravel().astype(np.float32), pa.float32()),
            }
        )


@functools.cache
def _neighbor_arrow_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("model_version", pa.string()),
            ("item_id", pa.string()),
            ("rank", pa.int32()),
            ("neighbor_id", pa.string()),
            ("score", pa.float32()),
            ("run_id", pa.string()),
        ]
    )


NEIGHBOR_ARROW_SCHEMA = _neighbor_arrow_schema


# ---- driver side: O(k) state only ----


def _write_parts(frame: DataFrame, add: functools.partial[Iterator[pa.RecordBatch]]) -> list[dict[str, Any]]:
    """Run ``_add_parts`` over ``frame`` in the executors: one manifest entry per part written."""
    schema = "part int, path string, size long, sha_faiss string, sha_ids string"
    return [{"part": r["part"], "path": r["path"], "size": r["size"],
             "sha256": {"faiss": r["sha_faiss"], "ids": r["sha_ids"]}}  # verified when a part is loaded
            for r in frame.mapInArrow(add, schema).collect()]


def _train_sample(valid: DataFrame, n_items: int, size: int, dim: int) -> tuple[list[str], np.ndarray]:
    """A bounded sample (≤ ``size`` rows, the smallest seeded hashes of item_id: the same rows on
    every run and any partitioning) of the valid embeddings, on the driver."""
    from catalog2vec.lakehouse.sampling import cap_by_hash

    table = cap_by_hash(valid, size, "item_id", seed=0, rows=n_items).select("item_id", "embedding").toArrow()
    ids = [str(i) for i in table.column("item_id").to_pylist()]
    return ids, batch_matrix(table.column("embedding"), dim)


def measure_recall(
    result: DataFrame, valid: DataFrame, query_ids: list[str], queries: np.ndarray, k: int, dim: int
) -> float:
    """recall@k of the written neighbours of ``query_ids`` against exact search over every item
    (computed in the executors: each batch's top-k per query, then a window rank per query)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    qn = l2_normalize(queries)
    exact = (
        valid.mapInArrow(
            functools.partial(_exact_topk, queries=qn, k=k + 1, dim=dim), "query int, item_id string, score float"
        )
        .withColumn(
            "r", F.row_number().over(Window.partitionBy("query").orderBy(F.desc("score"), "item_id"))
        )
        .where(F.col("r") <= k + 1)
        .select("query", "item_id")
        .collect()
    )
    truth: dict[str, set[str]] = {}
    ordered: dict[int, list[str]] = {}
    for row in exact:
        ordered.setdefault(int(row["query"]), []).append(str(row["item_id"]))
    for qi, found in ordered.items():
        own = query_ids[qi]
        truth[own] = set([i for i in found if i != own][:k])
    got: dict[str, set[str]] = {}
    for row in result.where(F.col("item_id").isin(query_ids)).select("item_id", "neighbor_id").collect():
        got.setdefault(str(row["item_id"]), set()).add(str(row["neighbor_id"]))
    hits = [len(got.get(q, set()) & t) / max(1, len(t)) for q, t in truth.items()]
    return float(np.mean(hits)) if hits else 0.0


def _trained_index(valid: DataFrame, n: int, dim: int, k: int, cfg: Config, params: IndexParams,
                   counts: dict[str, Any]) -> tuple[Any, list[str], np.ndarray]:
    """The empty index the executors fill: flat, or IVF trained on a bounded driver sample with
    nprobe chosen for ``retrieval.target_recall`` (``params`` and ``counts`` updated). Returns
    (index, sample item ids, sample vectors) — the sample also serves the recall measurement."""
    r = cfg.retrieval
    if params.kind not in IVF_KINDS:
        return empty_index("flat", dim), [], np.zeros((0, dim), dtype=np.float32)
    if params.kind == "ivfpq":
        params.pq_m, params.refine = choose_pq(n, dim, r.index_memory_mb * 2**20)
        params.pq_m, params.refine = r.pq_m or params.pq_m, r.pq_refine or params.refine
        counts.update(pq_m=params.pq_m, refine=params.refine, k_factor=params.k_factor)
    counts["index_mb"] = round(n * ivf_bytes_per_vector(dim, params.kind, params.pq_m, params.refine) / 2**20, 1)
    sample_ids, sample = _train_sample(valid, n, r.train_sample, dim)
    params.nlist = ivf_nlist(n, len(sample), r.nlist)
    trained = empty_index(params.kind, dim, sample, params.nlist, params.pq_m, params.refine, params.k_factor)
    probe, sample_recall = choose_nprobe(trained, sample, k, r.target_recall, r.recall_queries or 1000)
    params.nprobe = min(r.nprobe, params.nlist) if r.nprobe > 0 else probe
    counts.update(nlist=params.nlist, nprobe=params.nprobe, train_sample=len(sample),
                  recall_on_sample=round(sample_recall, 4))
    log.info("ivf: nlist %d trained on %d vectors, nprobe %d (recall@%d on the sample %.3f)",
             params.nlist, len(sample), params.nprobe, k, sample_recall)
    return trained, sample_ids, sample


def build_neighbors(spark: SparkSession, cfg: Config, model_version: str, k: int | None = None) -> dict[str, Any]:
    """Index one model version's embeddings, save the index, write every item's top-k neighbours.

    The table version for ``model_version`` is replaced as a whole (``replaceWhere``): a re-run
    with the same embeddings writes the same rows. Returns counts (rows in = indexed + quarantined),
    the index parameters and, for IVF, recall@k against exact search.
    """
    from pyspark import StorageLevel

    r = cfg.retrieval
    k = int(k or r.k)
    if k < 1:
        raise InvalidInput("k must be >= 1")
    if r.exact_max_items < 0 or r.train_sample < 1 or not 0 < r.target_recall <= 1 or r.recall_queries < 0:
        raise InvalidInput(
            "retrieval.exact_max_items >= 0, train_sample >= 1, 0 < target_recall <= 1, recall_queries >= 0"
        )
    t0 = time.perf_counter()
    frames = embedding_frames(spark, cfg.lakehouse, model_version)
    quarantined = quarantine_invalid_frame(spark, cfg.lakehouse, frames, model_version, "neighbors", cfg.run_id)
    n, dim = frames.n_valid, frames.dim
    if n == 0:
        raise InvalidInput(f"no valid embeddings for model_version {model_version!r} ({quarantined} quarantined)")
    kind = job_index_kind(cfg, n, dim)
    params = IndexParams(kind=kind, nlist=r.nlist, nprobe=r.nprobe, hnsw_m=r.hnsw_m, ef_search=r.ef_search)
    valid = frames.valid.orderBy("item_id").persist(StorageLevel.MEMORY_AND_DISK)
    counts: dict[str, Any] = {"model_version": model_version, "rows_in": frames.rows_in, "items_indexed": n,
                              "quarantined": quarantined, "k": k, "index": kind}
    trained, sample_ids, sample = _trained_index(valid, n, dim, k, cfg, params, counts)
    t_train = time.perf_counter()

    import faiss

    directory = index_dir(cfg.lakehouse, model_version)
    build_id = uuid.uuid4().hex[:12]
    add = functools.partial(_add_parts, directory=directory, build_id=build_id,
                            trained_bytes=faiss.serialize_index(trained).tobytes(), dim=dim)
    parts = _write_parts(valid, add)
    if sum(int(p["size"]) for p in parts) != n:
        raise RuntimeError(f"index parts hold {sum(int(p['size']) for p in parts)} vectors, expected {n}")
    saved = publish_parts(directory, trained, parts, params, model_version, build_id,
                          extra={"run_id": cfg.run_id, "k": k})
    t_add = time.perf_counter()

    search = functools.partial(_search, directory=saved, build_id=build_id, k=k, dim=dim,
                               model_version=model_version, run_id=cfg.run_id)
    schema = analysis.ITEM_NEIGHBORS.spark_schema()  # the declared columns (schemas/analysis.py)
    result = valid.mapInArrow(search, schema).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        rows = result.count()
        t_search = time.perf_counter()
        write_table(spark, result, analysis.ITEM_NEIGHBORS, cfg.lakehouse, mode="replace_where", version=model_version)
        t_write = time.perf_counter()
        if kind in IVF_KINDS and r.recall_queries > 0:
            q = min(r.recall_queries, len(sample_ids))
            counts["recall_at_k"] = round(measure_recall(result, valid, sample_ids[:q], sample[:q], k, dim), 4)
            counts["recall_queries"] = q
            log.info("ivf recall@%d vs exact search on %d items: %.4f", k, q, counts["recall_at_k"])
        elif kind == "flat":
            counts["recall_at_k"] = 1.0  # exact search
    finally:
        result.unpersist()
        valid.unpersist()
    counts.update(
        neighbor_rows=rows,
        index_dir=str(saved),
        index_parts=len(parts),
        seconds={"read_train": round(t_train - t0, 2), "add": round(t_add - t_train, 2),
                 "search": round(t_search - t_add, 2), "write": round(t_write - t_search, 2),
                 "total": round(time.perf_counter() - t0, 2)},
    )
    return counts


def _saved_parts_index(cfg: Config, model_version: str, k: int | None) -> tuple[str, dict[str, Any], int]:
    """(index directory, its manifest, k) of the saved index ``--incremental`` extends."""
    from catalog2vec import storage
    from catalog2vec.errors import MissingInput
    from catalog2vec.retrieval.index import META_FILE, PARTS_LAYOUT

    directory = index_dir(cfg.lakehouse, model_version)
    marker = storage.join(directory, META_FILE)
    if not storage.exists(marker):
        raise MissingInput(f"no saved index at {directory}: run jobs/neighbors.py without --incremental first")
    meta = storage.read_json(marker)
    if meta.get("layout") != PARTS_LAYOUT:
        raise MissingInput(f"the index at {directory} predates incremental updates: rebuild it without --incremental")
    k = int(k or meta.get("k") or cfg.retrieval.k)
    if meta.get("k") and int(meta["k"]) != k:
        raise InvalidInput(f"the saved neighbours have k={meta['k']}; --incremental keeps it (asked k={k})")
    return directory, meta, k


def _merge_top_k(table: DataFrame, candidates: DataFrame, k: int, run_id: str, cols: list[str]) -> DataFrame:
    """Existing items' neighbour rows merged with their candidates among the new items: the best
    ``k`` per item by score (ties by neighbour id), re-ranked, stamped with this run."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    return (
        table.select(*cols)
        .unionByName(candidates)
        .withColumn("rank", F.row_number().over(
            Window.partitionBy("item_id").orderBy(F.desc("score"), "neighbor_id")).cast("int"))
        .where(F.col("rank") <= k)
        .withColumn("run_id", F.lit(run_id))
        .select(*cols)
    )


def update_neighbors(spark: SparkSession, cfg: Config, model_version: str, k: int | None = None) -> dict[str, Any]:
    """``neighbors --incremental``: add the items embedded since the saved index was built to it
    (new parts, the trained quantizer unchanged: no rebuild) and update ``gold.item_neighbors``:
    the new items' top-k over the whole index, and every existing item's top-k merged with its
    best matches among the new items (so an existing item whose top-k a new item enters is
    updated). New = a valid embedding of the version without rows in ``gold.item_neighbors``.
    Items removed from the embeddings are not removed from the index (rebuild for that).
    """
    import faiss
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from catalog2vec import storage
    from catalog2vec.lakehouse import read_table
    from catalog2vec.retrieval.index import TRAINED_FILE, read_verified

    t0 = time.perf_counter()
    directory, meta, k = _saved_parts_index(cfg, model_version, k)
    frames = embedding_frames(spark, cfg.lakehouse, model_version)
    quarantined = quarantine_invalid_frame(spark, cfg.lakehouse, frames, model_version, "neighbors", cfg.run_id)
    dim = int(meta["dim"])
    if frames.n_valid and frames.dim != dim:
        raise InvalidInput(f"embeddings of dimension {frames.dim}, the saved index has {dim}: rebuild it")
    table = read_table(spark, cfg.lakehouse, analysis.ITEM_NEIGHBORS).where(F.col("model_version") == model_version)
    new = (
        frames.valid.join(table.select("item_id").distinct(), "item_id", "left_anti")
        .orderBy("item_id")
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    counts: dict[str, Any] = {"model_version": model_version, "incremental": True, "rows_in": frames.rows_in,
                              "quarantined": quarantined, "k": k, "index": meta.get("kind"),
                              "index_dir": str(storage.normalize(directory))}
    try:
        n_new = new.count()
        counts["items_added"] = n_new
        if n_new == 0:
            counts.update(items_indexed=int(meta["size"]), existing_items_updated=0,
                          seconds={"total": round(time.perf_counter() - t0, 2)})
            return counts
        trained_name = str(meta.get("trained", TRAINED_FILE))
        trained_bytes = read_verified(storage.join(directory, trained_name), meta.get("sha256", {}), trained_name)
        build_id = uuid.uuid4().hex[:12]
        add = functools.partial(_add_parts, directory=directory, build_id=build_id, trained_bytes=trained_bytes,
                                dim=dim, part_offset=1 + max(int(p["part"]) for p in meta["parts"]))
        added = _write_parts(new, add)
        params = IndexParams(**meta["params"])
        trained = faiss.deserialize_index(np.frombuffer(trained_bytes, dtype=np.uint8))
        saved = publish_parts(directory, trained, [*meta["parts"], *added], params, model_version, build_id,
                              extra={"run_id": cfg.run_id, "k": k})
        schema = analysis.ITEM_NEIGHBORS.spark_schema()
        common = {"directory": saved, "build_id": build_id, "k": k, "dim": dim,
                  "model_version": model_version, "run_id": cfg.run_id}
        new_rows = new.mapInArrow(functools.partial(_search, **common), schema)  # type: ignore[arg-type]
        only = frozenset(str(p["path"]) for p in added)
        existing = frames.valid.join(new.select("item_id"), "item_id", "left_anti")
        candidates = existing.mapInArrow(functools.partial(_search, only=only, **common), schema)  # type: ignore[arg-type]
        merged = _merge_top_k(table, candidates, k, cfg.run_id, [f.name for f in schema.fields])
        result = merged.unionByName(new_rows).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            rows = result.count()
            updated = (
                result.join(new.select(F.col("item_id").alias("neighbor_id")), "neighbor_id", "left_semi")
                .join(new.select("item_id"), "item_id", "left_anti")
                .select("item_id").distinct().count()
            )
            write_table(spark, result, analysis.ITEM_NEIGHBORS, cfg.lakehouse, mode="replace_where",
                        version=model_version)
        finally:
            result.unpersist()
    finally:
        new.unpersist()
    counts.update(items_indexed=int(meta["size"]) + n_new, neighbor_rows=rows, existing_items_updated=updated,
                  index_parts=len(meta["parts"]) + len(added),
                  seconds={"total": round(time.perf_counter() - t0, 2)})
    return counts
