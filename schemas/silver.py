"""Silver: cleaned, validated, versioned derivations."""

from catalog2vec.lakehouse.table import Column as C
from catalog2vec.lakehouse.table import TableSpec
from catalog2vec.schemas import properties

CATALOG_TOKENS = TableSpec(
    layer="silver",
    properties=properties.BASE,
    name="catalog_tokens",
    doc="Cleaned token list per item (catalog2vec.text).",
    key=("item_id",),
    columns=(
        C("item_id", "string", False),
        C("tokens", "array<string>", False, "visual tokens after normalisation and filtering, in text order"),
        C("n_raw_tokens", "int", True, "tokens before filtering"),
        C("truncated", "boolean", True, "text was cut at text.max_chars"),
        C("run_id", "string", False),
    ),
)

VOCAB = TableSpec(
    layer="silver",
    properties=properties.BASE,
    name="vocab",
    doc="Top-K vocabulary by count (ties by token), indices 0..K-1; vocab_version is a content hash.",
    key=("vocab_version", "token"),
    version_column="vocab_version",
    columns=(
        C("vocab_version", "string", False),
        C("token", "string", False),
        C("index", "int", False),
        C("count", "long", False, "occurrences (field weights applied)"),
        C("doc_freq", "long", False, "items containing the token"),
    ),
)

ITEM_LABELS = TableSpec(
    layer="silver",
    properties=properties.BASE,
    name="item_labels",
    doc="Weak labels: vocabulary indices per item, deterministic split by hash of item_id.",
    key=("vocab_version", "item_id"),
    version_column="vocab_version",
    columns=(
        C("vocab_version", "string", False),
        C("item_id", "string", False),
        C("labels", "array<int>", False, "sorted distinct vocabulary indices"),
        C("split", "string", False, "train | val | test"),
        C("run_id", "string", False),
    ),
)

IMAGES = TableSpec(
    layer="silver",
    properties=properties.BASE,
    name="images",
    doc="Validated, RGB, resized, re-encoded JPEG bytes per item.",
    key=("item_id",),
    zorder_by=("item_id",),  # maintain_tables clusters files by item_id: lookups of a few images skip the rest
    columns=(
        C("item_id", "string", False),
        C("image_uri", "string", True),
        C("sha256", "string", False, "sha256 of the source bytes"),
        C("width", "int", False, "normalised width"),
        C("height", "int", False, "normalised height"),
        C("orig_width", "int", True),
        C("orig_height", "int", True),
        C("orig_mode", "string", True, "Pillow mode of the source (RGB, CMYK, P, LA, I;16, …)"),
        C("image", "binary", False, "normalised JPEG bytes"),
        C("run_id", "string", False),
    ),
)
