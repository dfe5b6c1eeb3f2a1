"""Metric functions on plain numpy arrays (retrieval, label prediction, clustering, pairs).

Retrieval conventions (Corbière et al. 2017 evaluate top-k retrieval on held-out items):
each query item is ranked against a gallery *excluding itself*; a gallery item is relevant when
it shares the query's label (category, or category + colour).

* precision@k = |relevant ∩ top-k| / k, averaged over all queries;
* recall@k = |relevant ∩ top-k| / |relevant|, averaged over queries with at least one relevant item;
* hit@k (the paper's "top-k retrieval accuracy") = 1 if any of the top-k is relevant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from catalog2vec.vectors import auc as auc
from catalog2vec.vectors import collapse_diagnostics as collapse_diagnostics
from catalog2vec.vectors import l2_normalize


def rank_by_cosine(queries: np.ndarray, gallery: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    """Gallery indices sorted by decreasing cosine similarity, one row per query.

    With ``exclude_self`` (queries == gallery), each query's own index is moved out of the ranking
    (the result has ``n - 1`` columns).
    """

    sims = l2_normalize(queries) @ l2_normalize(gallery).T
    return rank_by_scores(sims, exclude_self)


def rank_by_scores(sims: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    """Indices sorted by decreasing score per row (stable: ties keep gallery order)."""
    sims = np.array(sims, dtype=np.float64, copy=True)
    if exclude_self:
        if sims.shape[0] != sims.shape[1]:
            raise ValueError("exclude_self needs a square query x gallery matrix")
        np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")
    if exclude_self:
        order = order[:, : sims.shape[1] - 1]
    return order


def relevance_matrix(
    ranked: np.ndarray, query_labels: Sequence[Any], gallery_labels: Sequence[Any]
) -> np.ndarray:
    """Boolean (nq, n_ranked): is the item at each rank relevant (same label as the query)?"""
    g = np.asarray(gallery_labels, dtype=object)
    q = np.asarray(query_labels, dtype=object)
    return np.asarray(g[ranked] == q[:, None], dtype=bool)


def precision_at_k(relevance: np.ndarray, k: int) -> float:
    """Mean over queries of (relevant items among the top k) / k."""
    if k < 1:
        raise ValueError("k must be >= 1")
    rel = np.asarray(relevance, dtype=bool)
    if rel.shape[0] == 0:
        return float("nan")
    return float(rel[:, :k].sum(axis=1).mean() / k)


def recall_at_k(relevance: np.ndarray, k: int, n_relevant: np.ndarray | None = None) -> float:
    """Mean over queries with >= 1 relevant item of (relevant among top k) / (all relevant).

    ``n_relevant`` defaults to the relevant count in each full ranked row.
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    rel = np.asarray(relevance, dtype=bool)
    total = rel.sum(axis=1) if n_relevant is None else np.asarray(n_relevant)
    mask = total > 0
    if not mask.any():
        return float("nan")
    return float((rel[mask, :k].sum(axis=1) / total[mask]).mean())


def hit_at_k(relevance: np.ndarray, k: int) -> float:
    """Fraction of queries with at least one relevant item in the top k."""
    rel = np.asarray(relevance, dtype=bool)
    if rel.shape[0] == 0:
        return float("nan")
    return float(rel[:, :k].any(axis=1).mean())


def retrieval_report(
    embeddings: np.ndarray, labels: Sequence[Any], ks: Sequence[int] = (1, 5, 10, 20)
) -> dict[str, Any]:
    """precision/recall/hit@k of every item against all the others (leave-one-out)."""
    ranked = rank_by_cosine(embeddings, embeddings, exclude_self=True)
    return retrieval_report_from_ranking(ranked, labels, ks)


def retrieval_report_from_ranking(
    ranked: np.ndarray, labels: Sequence[Any], ks: Sequence[int] = (1, 5, 10, 20)
) -> dict[str, Any]:
    rel = relevance_matrix(ranked, labels, labels)
    out: dict[str, Any] = {
        "queries": int(rel.shape[0]),
        "queries_with_relevant": int((rel.sum(axis=1) > 0).sum()),
    }
    for k in ks:
        out[f"precision@{k}"] = precision_at_k(rel, k)
        out[f"recall@{k}"] = recall_at_k(rel, k)
        out[f"hit@{k}"] = hit_at_k(rel, k)
    return out


def tag_recall_at_k(predicted: Sequence[Sequence[Any]], truth: Sequence[Sequence[Any]], k: int) -> float:
    """Mean over items with >= 1 true word of |top-k predicted ∩ true| / |true|.

    ``predicted`` rows are ranked (most probable first)."""
    if len(predicted) != len(truth):
        raise ValueError("predicted and truth must have one row per item")
    vals = [
        len(set(list(p)[:k]) & set(t)) / len(set(t)) for p, t in zip(predicted, truth, strict=True) if len(t)
    ]
    return float(np.mean(vals)) if vals else float("nan")


def top_k_from_scores(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k highest scores per row, highest first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def nmi(labels_true: Sequence[Any], labels_pred: Sequence[Any]) -> float:
    """Normalised mutual information (arithmetic mean normalisation, as scikit-learn)."""
    from sklearn.metrics import normalized_mutual_info_score

    return float(normalized_mutual_info_score(list(labels_true), list(labels_pred)))


def purity(labels_true: Sequence[Any], labels_pred: Sequence[Any]) -> float:
    """Σ over clusters of the size of its majority class, divided by n."""
    t = np.asarray(labels_true, dtype=object)
    p = np.asarray(labels_pred, dtype=object)
    if t.shape != p.shape:
        raise ValueError("labels_true and labels_pred differ in length")
    if t.size == 0:
        return float("nan")
    total = 0
    for cluster in set(p.tolist()):
        _, counts = np.unique(t[p == cluster].astype(str), return_counts=True)
        total += int(counts.max())
    return total / t.size


def per_class_summary(y_true: Sequence[Any], y_pred: Sequence[Any], top: int = 8) -> dict[str, Any]:
    """Per-class F1 and a confusion summary of the ``top`` most frequent true classes.

    For each of those classes (most frequent first): support, precision, recall, F1 and the class
    its items were most often mistaken for (with the share of its items that went there) — what a
    shopper sees when a ``blue`` jacket is called ``black``. Ties in frequency keep name order.
    """
    from sklearn.metrics import precision_recall_fscore_support

    t = np.asarray([str(v) for v in y_true], dtype=object)
    p = np.asarray([str(v) for v in y_pred], dtype=object)
    if t.shape != p.shape:
        raise ValueError("y_true and y_pred differ in length")
    names, counts = np.unique(t, return_counts=True)
    chosen = [str(names[i]) for i in sorted(range(len(names)), key=lambda i: (-counts[i], names[i]))[:top]]
    if not chosen:
        return {"classes": []}
    prec, rec, f1, support = precision_recall_fscore_support(t, p, labels=chosen, zero_division=0)
    rows = []
    for c, pr, rc, f, n in zip(chosen, prec, rec, f1, support, strict=True):
        wrong = p[(t == c) & (p != c)]
        other, share = "", 0.0
        if wrong.size:
            w_names, w_counts = np.unique(wrong, return_counts=True)
            j = int(np.argmax(w_counts))  # first maximum: name order on ties
            other, share = str(w_names[j]), float(w_counts[j] / n)
        rows.append({"class": c, "support": int(n), "precision": float(pr), "recall": float(rc), "f1": float(f),
                     "most_confused_with": other, "confused_share": share})
    return {"classes": rows}
