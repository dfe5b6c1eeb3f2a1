"""k-means in embedding space with prototypes (the RememberAI recipe).

1. L2-normalise the embeddings (so squared Euclidean distance = 2 − 2·cosine: k-means on unit
   vectors clusters by cosine) and run Spark MLlib ``KMeans``;
2. each cluster's prototypes are the M member items nearest its centroid;
3. a new item is assigned to the cluster of its nearest prototype (cosine or Euclidean).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from catalog2vec.vectors import l2_normalize

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

METRICS = ("cosine", "euclidean")


@dataclass
class ClusterModel:
    """Centroids (k, d), per-cluster sizes and prototypes (item_ids, nearest first)."""

    centroids: np.ndarray
    sizes: list[int]
    prototypes: list[list[str]]
    prototype_vectors: np.ndarray  # (P, d) normalised vectors of all prototypes
    prototype_cluster: np.ndarray  # (P,) cluster of each prototype row
    prototype_ids: list[str]


def distances(x: np.ndarray, y: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """Pairwise (n, m) distances: cosine = 1 − cos; euclidean = L2 (on the vectors as given)."""
    if metric == "cosine":
        return np.asarray(1.0 - l2_normalize(x) @ l2_normalize(y).T, dtype=np.float32)
    if metric == "euclidean":
        xx = np.sum(np.square(x, dtype=np.float64), axis=1)[:, None]
        yy = np.sum(np.square(y, dtype=np.float64), axis=1)[None, :]
        d2 = np.maximum(xx + yy - 2.0 * (np.asarray(x, np.float64) @ np.asarray(y, np.float64).T), 0.0)
        return np.sqrt(d2).astype(np.float32)
    raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")


def select_prototypes(
    item_ids: list[str], vectors: np.ndarray, assignment: np.ndarray, centroids: np.ndarray, m: int
) -> ClusterModel:
    """The ``m`` members nearest each centroid (cosine distance on normalised vectors)."""
    x = l2_normalize(vectors)
    assignment = np.asarray(assignment)
    dist = distances(x, centroids, "cosine")
    k = centroids.shape[0]
    sizes, protos, pvec, pcl, pids = [], [], [], [], []
    for c in range(k):
        members = np.flatnonzero(assignment == c)
        sizes.append(int(members.size))
        order = members[
            np.lexsort((np.asarray(item_ids, dtype=object)[members].astype(str), dist[members, c]))
        ]
        chosen = order[:m]
        protos.append([item_ids[i] for i in chosen])
        for i in chosen:
            pvec.append(x[i])
            pcl.append(c)
            pids.append(item_ids[i])
    d = x.shape[1]
    return ClusterModel(
        centroids=np.asarray(centroids, dtype=np.float32),
        sizes=sizes,
        prototypes=protos,
        prototype_vectors=np.asarray(pvec, dtype=np.float32).reshape(-1, d),
        prototype_cluster=np.asarray(pcl, dtype=np.int64),
        prototype_ids=pids,
    )


def assign_to_prototypes(
    vectors: np.ndarray,
    prototype_vectors: np.ndarray,
    prototype_cluster: np.ndarray,
    metric: str = "cosine",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest-prototype assignment of new items: (cluster, distance, prototype row) per item.

    Euclidean distances are taken between L2-normalised vectors (the space clustering ran in).
    """
    if prototype_vectors.shape[0] == 0:
        raise ValueError("no prototypes to assign to")
    x = l2_normalize(np.atleast_2d(vectors))
    p = l2_normalize(prototype_vectors)
    d = distances(x, p, metric)
    nearest = np.argmin(d, axis=1)
    return np.asarray(prototype_cluster)[nearest], d[np.arange(len(nearest)), nearest], nearest


def spark_kmeans(
    spark: SparkSession, item_ids: list[str], vectors: np.ndarray, k: int, seed: int = 0, max_iter: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Spark MLlib KMeans (k-means||) on L2-normalised vectors: (centroids (k, d), assignment (n,)).

    ``k`` is capped at the number of distinct vectors. Returned centroids are the MLlib means
    (not re-normalised); assignment is aligned with ``item_ids``.
    """
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.linalg import Vectors

    x = l2_normalize(vectors)
    n = x.shape[0]
    if n == 0:
        raise ValueError("cannot cluster zero items")
    distinct = np.unique(np.round(x, 6), axis=0).shape[0]
    k_eff = max(1, min(k, distinct))
    if k_eff < k:
        log.warning("k=%d > %d distinct items: using k=%d", k, distinct, k_eff)
    rows = [(i, Vectors.dense(x[i].astype(np.float64))) for i in range(n)]
    df = spark.createDataFrame(rows, ["row", "features"])
    km = KMeans(k=k_eff, seed=seed, maxIter=max_iter, featuresCol="features", predictionCol="cluster")
    model = km.fit(df)
    centroids = np.asarray(model.clusterCenters(), dtype=np.float32)
    pred = model.transform(df).select("row", "cluster").collect()
    assignment = np.zeros(n, dtype=np.int64)
    for r in pred:
        assignment[int(r["row"])] = int(r["cluster"])
    # relabel clusters by decreasing size then by smallest member id, so outputs are stable
    sizes = np.bincount(assignment, minlength=k_eff)
    first = [min((item_ids[i] for i in np.flatnonzero(assignment == c)), default="") for c in range(k_eff)]
    order = sorted(range(k_eff), key=lambda c: (-int(sizes[c]), first[c]))
    remap = np.empty(k_eff, dtype=np.int64)
    remap[np.asarray(order)] = np.arange(k_eff)
    return centroids[np.asarray(order)], remap[assignment]


def cluster_embeddings(
    spark: SparkSession, item_ids: list[str], vectors: np.ndarray, k: int, prototypes: int, seed: int = 0
) -> tuple[ClusterModel, np.ndarray, np.ndarray]:
    """Spark k-means + prototypes: (model, assignment (n,), cosine distance to own centroid (n,))."""
    centroids, assignment = spark_kmeans(spark, item_ids, vectors, k, seed)
    model = select_prototypes(item_ids, vectors, assignment, centroids, prototypes)
    dist = distances(l2_normalize(vectors), centroids, "cosine")[np.arange(len(item_ids)), assignment]
    return model, assignment, np.maximum(dist, 0.0)
