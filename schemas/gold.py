"""Gold: model outputs and the tables analysts and downstream models read."""

from catalog2vec.lakehouse.table import Column as C
from catalog2vec.lakehouse.table import TableSpec
from catalog2vec.schemas import properties

ITEM_EMBEDDINGS = TableSpec(
    layer="gold",
    properties=properties.GOLD,
    name="item_embeddings",
    doc="Pooled image feature z per item and model version.",
    key=("model_version", "item_id"),
    version_column="model_version",
    partition_by=("model_version",),
    columns=(
        C("model_version", "string", False),
        C("item_id", "string", False),
        C("sha256", "string", False, "sha256 of the source image bytes"),
        C("embedding", "array<float>", False),
        C("norm", "float", False, "L2 norm of embedding"),
        C("run_id", "string", False),
    ),
)

ITEM_TAGS = TableSpec(
    layer="gold",
    properties=properties.GOLD,
    name="item_tags",
    doc="Top-N predicted tags per item with probability and rank (1 = most likely).",
    key=("model_version", "item_id", "tag"),
    version_column="model_version",
    partition_by=("model_version",),
    columns=(
        C("model_version", "string", False),
        C("item_id", "string", False),
        C("tag", "string", False),
        C("probability", "float", False),
        C("rank", "int", False),
        C("run_id", "string", False),
    ),
)

ITEM_TAG_PROBABILITIES = TableSpec(
    layer="gold",
    properties=properties.GOLD,
    name="item_tag_probabilities",
    doc="Full tag probability vector per item (index i = vocabulary index i of the model's vocab); "
    "written only when embed.full_probabilities = true.",
    key=("model_version", "item_id"),
    version_column="model_version",
    partition_by=("model_version",),
    columns=(
        C("model_version", "string", False),
        C("item_id", "string", False),
        C("probabilities", "array<float>", False, "K probabilities (softmax or sigmoid, per the model's loss)"),
        C("run_id", "string", False),
    ),
)
