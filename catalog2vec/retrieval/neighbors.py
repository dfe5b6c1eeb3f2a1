"""``gold.item_neighbors``: the k nearest items of every item (for analysts), and the saved index."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from catalog2vec.config import Config
from catalog2vec.errors import InvalidInput
from catalog2vec.lakehouse import write_table
from catalog2vec.retrieval.index import IndexParams, build_index
from catalog2vec.retrieval.inputs import quarantine_invalid, read_embeddings
from catalog2vec.retrieval.store import index_dir
from catalog2vec.schemas import analysis

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def index_params(cfg: Config) -> IndexParams:
    r = cfg.retrieval
    params = IndexParams(kind=r.index, nlist=r.nlist, nprobe=r.nprobe, hnsw_m=r.hnsw_m, ef_search=r.ef_search)
    params.validate()
    return params


def build_neighbors(spark: SparkSession, cfg: Config, model_version: str, k: int | None = None) -> dict[str, Any]:
    """Index one model version's embeddings, save the index, write every item's top-k neighbours.

    The table version for ``model_version`` is replaced as a whole (``replaceWhere``): a re-run
    with the same embeddings writes the same rows. Returns counts (rows in = indexed + quarantined).
    """

    k = int(k or cfg.retrieval.k)
    if k < 1:
        raise InvalidInput("k must be >= 1")
    emb = read_embeddings(spark, cfg.lakehouse, model_version)
    quarantined = quarantine_invalid(spark, cfg.lakehouse, emb, model_version, "neighbors", cfg.run_id)
    if not emb.item_ids:
        raise InvalidInput(
            f"no valid embeddings for model_version {model_version!r} ({quarantined} quarantined)"
        )
    idx = build_index(emb.item_ids, emb.matrix, index_params(cfg), model_version)
    saved = idx.save(index_dir(cfg.lakehouse, model_version))
    rows: list[tuple[str, str, int, str, float, str]] = []
    batch = 4096
    for start in range(0, len(emb.item_ids), batch):
        ids = emb.item_ids[start : start + batch]
        hits = idx.neighbors(emb.matrix[start : start + batch], k, exclude=list(ids))
        for iid, row in zip(ids, hits, strict=True):
            rows.extend(
                (model_version, iid, r, nid, float(s), cfg.run_id) for r, (nid, s) in enumerate(row, 1)
            )
        log.info("neighbours: %d/%d items", min(start + batch, len(emb.item_ids)), len(emb.item_ids))
    import pandas as pd

    schema = analysis.ITEM_NEIGHBORS.spark_schema()  # the declared columns (schemas/analysis.py)
    pdf = pd.DataFrame(rows, columns=[f.name for f in schema.fields])
    pdf["rank"] = pdf["rank"].astype("int32")
    pdf["score"] = pdf["score"].astype("float32")
    df = spark.createDataFrame(pdf, schema)  # Arrow-backed
    write_table(
        spark, df, analysis.ITEM_NEIGHBORS, cfg.lakehouse, mode="replace_where", version=model_version
    )
    return {
        "model_version": model_version,
        "rows_in": emb.rows_in,
        "items_indexed": len(emb.item_ids),
        "quarantined": quarantined,
        "neighbor_rows": len(rows),
        "k": k,
        "index": idx.params.kind,
        "index_dir": str(saved),
    }
