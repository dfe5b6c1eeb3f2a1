"""Neutral numeric helpers on embedding matrices and scores, shared by the feature packages
(retrieval, clustering, similarity, evaluation, vision) — a foundation: it imports none of them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation as float32 (zero rows stay zero)."""
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-d matrix of vectors, got shape {arr.shape}")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return np.ascontiguousarray(arr / np.maximum(norms, eps), dtype=np.float32)


def auc(y_true: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """ROC AUC; ValueError when only one class is present."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y_true)
    if len(np.unique(y)) < 2:
        raise ValueError("AUC needs both positive and negative examples")
    return float(roc_auc_score(y, np.asarray(scores)))


def collapse_diagnostics(z: np.ndarray) -> dict[str, float]:
    """Mean pairwise cosine of the embeddings (1 = all one direction) and their effective rank
    (Roy & Vetterli: exp of the entropy of the normalised singular values), uncentred and centred."""
    if len(z) < 2:
        return {}
    x = l2_normalize(np.asarray(z, dtype=np.float64))
    n = len(x)
    s = x.sum(axis=0)
    mean_cos = float((s @ s - n) / (n * (n - 1)))

    def erank(m: np.ndarray) -> float:
        sv = np.linalg.svd(m, compute_uv=False)
        p = sv / max(sv.sum(), 1e-12)
        p = p[p > 0]
        return float(np.exp(-(p * np.log(p)).sum()))

    return {"items": n, "dim": int(x.shape[1]), "mean_pairwise_cosine": round(mean_cos, 4),
            "effective_rank": round(erank(x), 2), "effective_rank_centered": round(erank(x - x.mean(axis=0)), 2)}
