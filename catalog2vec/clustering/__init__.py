"""catalog2vec.clustering: k-means in embedding space (Spark MLlib on the table's normalised
vectors, in the executors), the items nearest each centroid as prototypes (a window rank), and
nearest-prototype assignment of new items (a UDF with the prototypes broadcast)."""

from catalog2vec.clustering.kmeans import (
    METRICS,
    ClusterModel,
    SparkClustering,
    assign_frame,
    assign_to_prototypes,
    distances,
    select_prototypes,
    spark_clusters,
    unit_features,
)

__all__ = [
    "METRICS",
    "ClusterModel",
    "SparkClustering",
    "assign_frame",
    "assign_to_prototypes",
    "distances",
    "select_prototypes",
    "spark_clusters",
    "unit_features",
]
