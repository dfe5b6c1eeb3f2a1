"""catalog2vec.clustering: k-means in embedding space (Spark MLlib on normalised vectors), the
items nearest each centroid as prototypes, and nearest-prototype assignment of new items."""

from catalog2vec.clustering.kmeans import (
    METRICS,
    ClusterModel,
    assign_to_prototypes,
    cluster_embeddings,
    distances,
    select_prototypes,
    spark_kmeans,
)

__all__ = [
    "METRICS",
    "ClusterModel",
    "assign_to_prototypes",
    "cluster_embeddings",
    "distances",
    "select_prototypes",
    "spark_kmeans",
]
