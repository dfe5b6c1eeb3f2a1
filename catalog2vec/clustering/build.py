"""``gold.clusters`` + ``gold.item_clusters`` for one model version (Spark MLlib k-means)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from catalog2vec.clustering.kmeans import ClusterModel, cluster_embeddings
from catalog2vec.config import Config
from catalog2vec.errors import InvalidInput
from catalog2vec.lakehouse import read_table, write_table
from catalog2vec.retrieval.inputs import quarantine_invalid, read_embeddings
from catalog2vec.schemas import analysis
from catalog2vec.vectors import l2_normalize

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def load_cluster_model(spark: SparkSession, root: str, model_version: str) -> ClusterModel:
    """Rebuild the prototype assigner from gold.clusters + gold.item_embeddings (for new items)."""
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
    emb = read_embeddings(spark, root, model_version)
    pos = {iid: i for i, iid in enumerate(emb.item_ids)}
    pids = [p for r in rows for p in r["prototypes"]]
    return ClusterModel(
        centroids=np.asarray([r["centroid"] for r in rows], dtype=np.float32),
        sizes=[int(r["size"]) for r in rows],
        prototypes=[list(r["prototypes"]) for r in rows],
        prototype_vectors=l2_normalize(emb.matrix[[pos[p] for p in pids]]),
        prototype_cluster=np.asarray(
            [int(r["cluster"]) for r in rows for _ in r["prototypes"]], dtype=np.int64
        ),
        prototype_ids=pids,
    )


def build_clusters(spark: SparkSession, cfg: Config, model_version: str, k: int | None = None) -> dict[str, Any]:
    """k-means on the normalised embeddings; writes both tables (replaceWhere on the version)."""
    import pandas as pd

    c = cfg.cluster
    k = int(k or c.k)
    if k < 1 or c.prototypes < 1:
        raise InvalidInput("cluster.k and cluster.prototypes must be >= 1")
    emb = read_embeddings(spark, cfg.lakehouse, model_version)
    quarantined = quarantine_invalid(spark, cfg.lakehouse, emb, model_version, "cluster", cfg.run_id)
    if not emb.item_ids:
        raise InvalidInput(f"no valid embeddings for model_version {model_version!r}")
    model, assignment, dist = cluster_embeddings(spark, emb.item_ids, emb.matrix, k, c.prototypes, c.seed)
    clusters = pd.DataFrame(
        {
            "model_version": model_version,
            "cluster": np.arange(len(model.sizes), dtype=np.int32),
            "centroid": [row.astype(np.float32).tolist() for row in model.centroids],
            "size": np.asarray(model.sizes, dtype=np.int64),
            "prototypes": model.prototypes,
            "run_id": cfg.run_id,
        }
    )
    items = pd.DataFrame(
        {
            "model_version": model_version,
            "item_id": emb.item_ids,
            "cluster": assignment.astype(np.int32),
            "distance": dist.astype(np.float32),
            "run_id": cfg.run_id,
        }
    )
    # the declared schemas (schemas/analysis.py) are the one source of the column types
    for frame, spec in ((clusters, analysis.CLUSTERS), (items, analysis.ITEM_CLUSTERS)):
        df = spark.createDataFrame(frame, spec.spark_schema())
        write_table(spark, df, spec, cfg.lakehouse, "replace_where", model_version)
    log.info("clusters: %d, sizes %s", len(model.sizes), model.sizes)
    return {
        "model_version": model_version,
        "rows_in": emb.rows_in,
        "items_clustered": len(emb.item_ids),
        "quarantined": quarantined,
        "k": len(model.sizes),
        "sizes": model.sizes,
        "prototypes_per_cluster": c.prototypes,
    }
