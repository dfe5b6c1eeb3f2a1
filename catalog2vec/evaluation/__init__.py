"""catalog2vec.evaluation: metric functions, linear probe, baselines and the HTML/JSON report."""

from catalog2vec.evaluation.metrics import (
    auc,
    hit_at_k,
    nmi,
    precision_at_k,
    purity,
    recall_at_k,
    retrieval_report,
    tag_recall_at_k,
)

__all__ = [
    "auc",
    "hit_at_k",
    "nmi",
    "precision_at_k",
    "purity",
    "recall_at_k",
    "retrieval_report",
    "tag_recall_at_k",
]
