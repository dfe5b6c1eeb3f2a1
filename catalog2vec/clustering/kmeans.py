"""k-means in embedding space with prototypes (the RememberAI recipe).

1. L2-normalise the embeddings in Spark (so squared Euclidean distance = 2 − 2·cosine: k-means on
   unit vectors clusters by cosine) and run Spark MLlib ``KMeans`` on the table's rows;
2. each cluster's prototypes are the M member items nearest its centroid (a window rank);
3. a new item is assigned to the cluster of its nearest prototype (cosine or Euclidean), in the
   executors with the prototypes broadcast (:func:`assign_frame`).

The numpy functions (:func:`select_prototypes`, :func:`assign_to_prototypes`) are the same rules
on in-memory matrices (the browser, the unit tests).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from catalog2vec.vectors import l2_normalize

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.broadcast import Broadcast
    from pyspark.sql import DataFrame, SparkSession

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


def unit_features(valid: DataFrame) -> DataFrame:
    """``valid`` (item_id, embedding) plus ``unit`` (array) and ``features`` (an MLlib vector): the
    L2-normalised embedding, computed in Spark (float32 rounding, like :func:`~catalog2vec.vectors.l2_normalize`)."""
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    # the sum of squares is aggregated once per row and the division runs in its finish lambda
    # (a norm expression inside the transform's lambda is re-aggregated for every element: d²
    # interpreted steps per row, and a separate column is inlined back by the optimizer)
    unit = F.aggregate(
        "embedding",
        F.lit(0.0).cast("double"),
        lambda acc, x: acc + x.cast("double") * x.cast("double"),
        lambda sq: F.transform(
            "embedding", lambda x: (x.cast("double") / F.greatest(F.sqrt(sq), F.lit(1e-12))).cast("float")
        ),
    )
    return valid.withColumn("unit", unit).withColumn("features", array_to_vector(F.col("unit")))


def contiguous_slices(valid: DataFrame, slices: int) -> DataFrame:
    """``valid`` sorted by item_id and cut into ``slices`` partitions of consecutive items, the
    i-th holding sorted positions [i·n/slices, (i+1)·n/slices) — exactly how Spark slices a local
    list (``parallelize``). k-means|| draws its initial centres per partition, so this fixes the
    clustering whatever the table's file layout (and keeps the clusters the driver-side
    implementation produced from the sorted matrix). The driver holds one count per partition."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    spark = valid.sparkSession
    ordered = valid.orderBy("item_id").withColumn("_p", F.spark_partition_id()).withColumn(
        "_m", F.monotonically_increasing_id()
    ).persist(StorageLevel.MEMORY_AND_DISK)
    counts: dict[int, int] = {int(r[0]): int(r[1]) for r in ordered.groupBy("_p").count().collect()}
    n = sum(int(c) for c in counts.values())
    offsets, total = [], 0
    for p in range(max(counts, default=-1) + 1):
        offsets.append(total)
        total += int(counts.get(p, 0))
    pos = F.element_at(F.array(*[F.lit(o) for o in offsets or [0]]).cast("array<long>"), F.col("_p") + 1) + (
        F.col("_m") - F.shiftleft(F.col("_p").cast("long"), 33)
    )
    slice_ = ((pos + 1) * slices - 1) / F.lit(max(1, n))
    # a key per slice whose Spark hash lands in partition i (repartition = pmod(hash(key), slices))
    keys: dict[int, int] = {}
    for row in spark.range(64 * slices).select("id", F.pmod(F.hash("id"), F.lit(slices)).alias("p")).collect():
        keys.setdefault(int(row["p"]), int(row["id"]))
    key = F.element_at(F.array(*[F.lit(keys[i]) for i in range(slices)]).cast("array<long>"),
                       F.floor(slice_).cast("int") + 1)
    out = (
        ordered.withColumn("_pos", pos)
        .withColumn("_key", key)
        .repartition(slices, "_key")
        .sortWithinPartitions("_pos")
        .drop("_p", "_m", "_key", "_pos")
    )
    return out


def _distance_batches(
    batches: Iterator[pa.RecordBatch], remap: np.ndarray, unit_centroids: np.ndarray, dim: int,
    model_version: str, run_id: str,
) -> Iterator[pa.RecordBatch]:
    """Executor side: the stable cluster label and the cosine distance to its centroid."""
    import pyarrow as pa

    for b in batches:
        if b.num_rows == 0:
            continue
        flat = b.column("embedding").flatten().to_numpy(zero_copy_only=False)
        x = l2_normalize(np.asarray(flat, dtype=np.float32).reshape(b.num_rows, dim))
        cluster = remap[np.asarray(b.column("raw").to_numpy(zero_copy_only=False), dtype=np.int64)]
        cos = np.einsum("ij,ij->i", x, unit_centroids[cluster])
        dist = np.maximum(np.float32(1.0) - cos.astype(np.float32), np.float32(0.0))
        n = b.num_rows
        yield pa.RecordBatch.from_arrays(
            [
                pa.array([model_version] * n, pa.string()),
                b.column("item_id"),
                pa.array(cluster.astype(np.int32), pa.int32()),
                pa.array(dist.astype(np.float32), pa.float32()),
                pa.array([run_id] * n, pa.string()),
            ],
            names=["model_version", "item_id", "cluster", "distance", "run_id"],
        )


@dataclass
class SparkClustering:
    """k-means of one model version on the executors: the (persisted) per-item frame of
    gold.item_clusters and the O(k) model (centroids, sizes, prototypes)."""

    items: DataFrame  # model_version, item_id, cluster, distance, run_id
    centroids: np.ndarray  # (k, d), MLlib means (not re-normalised), in stable label order
    sizes: list[int]
    prototypes: list[list[str]]


def spark_clusters(
    valid: DataFrame, dim: int, k: int, prototypes: int, model_version: str, run_id: str, seed: int = 0,
    max_iter: int = 50,
) -> SparkClustering:
    """MLlib KMeans (k-means||) on the L2-normalised embeddings of ``valid`` (item_id, embedding),
    read from the table by the executors; assignments and distances in the executors; prototypes
    by a window rank per cluster. The driver holds k centroids, k sizes and k·prototypes ids.

    ``k`` is capped at the number of distinct vectors. Cluster labels are stable: by decreasing
    size, then by smallest member item_id.
    """
    from pyspark import StorageLevel
    from pyspark.ml.clustering import KMeans
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from catalog2vec.schemas import analysis

    slices = int(valid.sparkSession.sparkContext.defaultParallelism)
    feats = unit_features(contiguous_slices(valid, slices)).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        distinct = feats.select(F.xxhash64(F.transform("unit", lambda v: F.round(v, 6))).alias("v"))
        k_eff = max(1, min(k, distinct.distinct().limit(k).count()))
        if k_eff < k:
            log.warning("k=%d > %d distinct items: using k=%d", k, k_eff, k_eff)
        km = KMeans(k=k_eff, seed=seed, maxIter=max_iter, featuresCol="features", predictionCol="raw")
        # fit on a projection that is not itself cached: MLlib then caches its own deserialised
        # vectors once, instead of decoding the cached rows (three array columns) on every pass
        model = km.fit(feats.select("features"))
        centroids = np.asarray(model.clusterCenters(), dtype=np.float32)
        pred = model.transform(feats).select("item_id", "embedding", "raw")
        stats = {int(r["raw"]): (int(r["n"]), str(r["first"]))
                 for r in pred.groupBy("raw").agg(F.count("*").alias("n"), F.min("item_id").alias("first")).collect()}
        order = sorted(range(k_eff), key=lambda c: (-stats.get(c, (0, ""))[0], stats.get(c, (0, ""))[1]))
        remap = np.empty(k_eff, dtype=np.int64)
        remap[np.asarray(order)] = np.arange(k_eff)
        centroids = centroids[np.asarray(order)]
        sizes = [stats.get(c, (0, ""))[0] for c in order]
        fn = functools.partial(_distance_batches, remap=remap, unit_centroids=l2_normalize(centroids), dim=dim,
                               model_version=model_version, run_id=run_id)
        items = pred.mapInArrow(fn, analysis.ITEM_CLUSTERS.spark_schema()).persist(StorageLevel.MEMORY_AND_DISK)
        ranked = items.withColumn(
            "r", F.row_number().over(Window.partitionBy("cluster").orderBy("distance", "item_id"))
        ).where(F.col("r") <= prototypes)
        protos: list[list[str]] = [[] for _ in range(k_eff)]
        for row in ranked.select("cluster", "r", "item_id").orderBy("cluster", "r").collect():
            protos[int(row["cluster"])].append(str(row["item_id"]))
    finally:
        feats.unpersist()
    return SparkClustering(items=items, centroids=centroids, sizes=sizes, prototypes=protos)


def _assign_batches(
    batches: Iterator[pa.RecordBatch], protos: Broadcast[tuple[np.ndarray, np.ndarray, list[str]]], dim: int,
    metric: str,
) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    pvec, pcl, pids = protos.value
    ids = np.asarray(pids, dtype=object)
    for b in batches:
        if b.num_rows == 0:
            continue
        flat = b.column("embedding").flatten().to_numpy(zero_copy_only=False)
        x = np.asarray(flat, dtype=np.float32).reshape(b.num_rows, dim)
        cluster, dist, row = assign_to_prototypes(x, pvec, pcl, metric)
        yield pa.RecordBatch.from_arrays(
            [b.column("item_id"), pa.array(cluster.astype(np.int32), pa.int32()),
             pa.array(dist.astype(np.float32), pa.float32()), pa.array(ids[row], pa.string())],
            names=["item_id", "cluster", "distance", "prototype_id"],
        )


def assign_frame(
    spark: SparkSession, items: DataFrame, model: ClusterModel, dim: int, metric: str = "cosine"
) -> DataFrame:
    """Nearest-prototype assignment of ``items`` (item_id, embedding) in the executors, the
    prototypes broadcast: item_id, cluster, distance, prototype_id."""
    if model.prototype_vectors.shape[0] == 0:
        raise ValueError("no prototypes to assign to")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")
    bc = spark.sparkContext.broadcast(
        (l2_normalize(model.prototype_vectors), np.asarray(model.prototype_cluster), list(model.prototype_ids))
    )
    fn = functools.partial(_assign_batches, protos=bc, dim=dim, metric=metric)
    return items.select("item_id", "embedding").mapInArrow(
        fn, "item_id string, cluster int, distance float, prototype_id string"
    )
