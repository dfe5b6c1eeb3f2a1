"""catalog2vec.similarity: attribute-aware conditional similarity (PAN) over frozen embeddings."""

from catalog2vec.similarity.pan import (
    ATTRIBUTE_FNS,
    PAN,
    PANConfig,
    TrainedPAN,
    attribute_targets,
    pan_scores,
    pan_similarity_matrix,
    train_pan,
)

__all__ = [
    "ATTRIBUTE_FNS",
    "PAN",
    "PANConfig",
    "TrainedPAN",
    "attribute_targets",
    "pan_scores",
    "pan_similarity_matrix",
    "train_pan",
]
