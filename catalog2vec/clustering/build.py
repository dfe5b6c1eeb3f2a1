"""``gold.clusters`` + ``gold.item_clusters`` for one model version (Spark MLlib k-means).

The driver holds O(k): k centroids, k sizes, k·prototypes item ids. The vectors are read,
normalised, clustered, assigned and ranked by the executors (:func:`spark_clusters`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from catalog2vec.clustering.kmeans import ClusterModel, assign_frame, spark_clusters
from catalog2vec.config import Config
from catalog2vec.errors import InvalidInput
from catalog2vec.lakehouse import read_table, write_table
from catalog2vec.retrieval.inputs import embedding_frames, quarantine_invalid_frame
from catalog2vec.schemas import analysis, gold
from catalog2vec.vectors import l2_normalize

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


def load_cluster_model(spark: SparkSession, root: str, model_version: str) -> ClusterModel:
    """The prototype assigner of one model version: gold.clusters (k rows) and the embeddings of
    the k·prototypes prototype items (a filtered read, never the whole table)."""
    from pyspark.sql import functions as F

    rows = (
        read_table(spark, root, analysis.CLUSTERS)
        .where(F.col("model_version") == model_version)
        .orderBy("cluster")
        .collect()
    )
    if not rows:
        raise InvalidInput(
            f"gold.clusters has no rows for model_version {model_version!r}; run jobs/cluster.py"
        )
    pids = [p for r in rows for p in r["prototypes"]]
    found = {
        str(r["item_id"]): r["embedding"]
        for r in read_table(spark, root, gold.ITEM_EMBEDDINGS)
        .where((F.col("model_version") == model_version) & F.col("item_id").isin(pids))
        .select("item_id", "embedding")
        .collect()
    }
    missing = [p for p in pids if p not in found]
    if missing:
        raise InvalidInput(f"prototypes without an embedding in model_version {model_version!r}: {missing[:5]}")
    return ClusterModel(
        centroids=np.asarray([r["centroid"] for r in rows], dtype=np.float32),
        sizes=[int(r["size"]) for r in rows],
        prototypes=[list(r["prototypes"]) for r in rows],
        prototype_vectors=l2_normalize(np.asarray([found[p] for p in pids], dtype=np.float32)),
        prototype_cluster=np.asarray(
            [int(r["cluster"]) for r in rows for _ in r["prototypes"]], dtype=np.int64
        ),
        prototype_ids=pids,
    )


def assign_new_items(
    spark: SparkSession, cfg: Config, model_version: str, items: DataFrame | None = None
) -> DataFrame:
    """Nearest-prototype assignment (``cluster.metric``) of ``items`` (item_id, embedding; default:
    the model version's embeddings not in gold.item_clusters), run in the executors with the
    prototypes broadcast. Returns a frame: item_id, cluster, distance, prototype_id."""
    from pyspark.sql import functions as F

    model = load_cluster_model(spark, str(cfg.lakehouse), model_version)
    if items is None:
        emb = embedding_frames(spark, cfg.lakehouse, model_version).valid
        done = read_table(spark, cfg.lakehouse, analysis.ITEM_CLUSTERS).where(
            F.col("model_version") == model_version
        )
        items = emb.join(done.select("item_id"), "item_id", "left_anti")
    return assign_frame(spark, items, model, model.prototype_vectors.shape[1], cfg.cluster.metric)


def build_clusters(spark: SparkSession, cfg: Config, model_version: str, k: int | None = None) -> dict[str, Any]:
    """k-means on the normalised embeddings; writes both tables (replaceWhere on the version)."""
    c = cfg.cluster
    k = int(k or c.k)
    if k < 1 or c.prototypes < 1:
        raise InvalidInput("cluster.k and cluster.prototypes must be >= 1")
    frames = embedding_frames(spark, cfg.lakehouse, model_version)
    quarantined = quarantine_invalid_frame(spark, cfg.lakehouse, frames, model_version, "cluster", cfg.run_id)
    if frames.n_valid == 0:
        raise InvalidInput(f"no valid embeddings for model_version {model_version!r}")
    result = spark_clusters(
        frames.valid, frames.dim, k, c.prototypes, model_version, cfg.run_id, c.seed, c.max_iter
    )
    try:
        clusters = spark.createDataFrame(
            [
                (model_version, i, [float(v) for v in result.centroids[i]], int(result.sizes[i]),
                 result.prototypes[i], cfg.run_id)
                for i in range(len(result.sizes))
            ],
            analysis.CLUSTERS.spark_schema(),  # the declared schemas are the one source of the column types
        )
        write_table(spark, clusters, analysis.CLUSTERS, cfg.lakehouse, "replace_where", model_version)
        write_table(spark, result.items, analysis.ITEM_CLUSTERS, cfg.lakehouse, "replace_where", model_version)
    finally:
        result.items.unpersist()
    log.info("clusters: %d, sizes %s", len(result.sizes), result.sizes)
    return {
        "model_version": model_version,
        "rows_in": frames.rows_in,
        "items_clustered": frames.n_valid,
        "quarantined": quarantined,
        "k": len(result.sizes),
        "sizes": result.sizes,
        "prototypes_per_cluster": c.prototypes,
    }
