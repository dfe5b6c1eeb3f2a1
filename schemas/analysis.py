"""Gold tables derived from embeddings: neighbours and clusters (retrieval / clustering)."""

from catalog2vec.lakehouse.table import Column as C
from catalog2vec.lakehouse.table import TableSpec
from catalog2vec.schemas import properties

ITEM_NEIGHBORS = TableSpec(
    layer="gold",
    properties=properties.GOLD,
    name="item_neighbors",
    doc="k nearest neighbours per item in embedding space.",
    key=("model_version", "item_id", "rank"),
    version_column="model_version",
    partition_by=("model_version",),
    columns=(
        C("model_version", "string", False),
        C("item_id", "string", False),
        C("rank", "int", False),
        C("neighbor_id", "string", False),
        C("score", "float", False, "cosine similarity"),
        C("run_id", "string", False),
    ),
)

CLUSTERS = TableSpec(
    layer="gold",
    properties=properties.GOLD,
    name="clusters",
    doc="k-means clusters in embedding space with their prototype items.",
    key=("model_version", "cluster"),
    version_column="model_version",
    partition_by=("model_version",),
    columns=(
        C("model_version", "string", False),
        C("cluster", "int", False),
        C("centroid", "array<float>", False),
        C("size", "long", False),
        C("prototypes", "array<string>", False, "item_ids nearest the centroid, nearest first"),
        C("run_id", "string", False),
    ),
)

ITEM_CLUSTERS = TableSpec(
    layer="gold",
    properties=properties.GOLD,
    name="item_clusters",
    doc="Cluster assignment per item.",
    key=("model_version", "item_id"),
    version_column="model_version",
    partition_by=("model_version",),
    columns=(
        C("model_version", "string", False),
        C("item_id", "string", False),
        C("cluster", "int", False),
        C("distance", "float", False, "distance to the centroid (cosine distance on normalised vectors)"),
        C("run_id", "string", False),
    ),
)
