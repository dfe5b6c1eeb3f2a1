from __future__ import annotations

import numpy as np
import pytest

from catalog2vec.evaluation.metrics import (
    auc,
    hit_at_k,
    nmi,
    precision_at_k,
    purity,
    rank_by_cosine,
    recall_at_k,
    relevance_matrix,
    retrieval_report,
    tag_recall_at_k,
    top_k_from_scores,
)


def test_precision_recall_hit_hand_computed() -> None:
    # query 0: ranks R N R N (2 relevant); query 1: N N N R (1 relevant); query 2: nothing relevant
    rel = np.array([[1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=bool)
    assert precision_at_k(rel, 1) == pytest.approx((1 + 0 + 0) / 3)
    assert precision_at_k(rel, 2) == pytest.approx((0.5 + 0 + 0) / 3)
    assert precision_at_k(rel, 4) == pytest.approx((0.5 + 0.25 + 0) / 3)
    # recall averages over queries with at least one relevant item (query 2 excluded)
    assert recall_at_k(rel, 1) == pytest.approx((0.5 + 0.0) / 2)
    assert recall_at_k(rel, 3) == pytest.approx((1.0 + 0.0) / 2)
    assert recall_at_k(rel, 4) == pytest.approx(1.0)
    assert hit_at_k(rel, 1) == pytest.approx(1 / 3)
    assert hit_at_k(rel, 4) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        precision_at_k(rel, 0)


def test_rank_by_cosine_excludes_self_and_relevance() -> None:
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    ranked = rank_by_cosine(x, x, exclude_self=True)
    assert ranked.shape == (4, 3)
    assert ranked[0].tolist() == [1, 3, 2]
    assert ranked[2].tolist() == [3, 1, 0]
    rel = relevance_matrix(ranked, ["a", "a", "b", "b"], ["a", "a", "b", "b"])
    assert rel[:, 0].all()  # nearest neighbour always shares the label here
    rep = retrieval_report(x, ["a", "a", "b", "b"], ks=(1, 2))
    assert rep["precision@1"] == 1.0 and rep["precision@2"] == 0.5 and rep["recall@1"] == 1.0


def test_tag_recall_hand_computed() -> None:
    pred = [["red", "shirt", "men"], ["shoe", "blue", "sport"], ["x", "y", "z"]]
    truth = [["shirt", "red", "cotton", "slim"], ["sport"], []]  # empty truth is skipped
    assert tag_recall_at_k(pred, truth, 1) == pytest.approx((1 / 4 + 0) / 2)
    assert tag_recall_at_k(pred, truth, 3) == pytest.approx((2 / 4 + 1) / 2)


def test_top_k_from_scores() -> None:
    s = np.array([[0.1, 0.5, 0.3, 0.9], [4, 3, 2, 1]])
    assert top_k_from_scores(s, 2).tolist() == [[3, 1], [0, 1]]


def test_nmi_and_purity_hand_computed() -> None:
    true = ["a", "a", "b", "b"]
    assert nmi(true, [0, 0, 1, 1]) == pytest.approx(1.0)
    assert nmi(true, [1, 1, 0, 0]) == pytest.approx(1.0)
    assert nmi(true, [0, 1, 0, 1]) == pytest.approx(0.0, abs=1e-12)
    # classes a,a,b,b vs clusters 0,0,0,1: I = 0.5*log2 - ... ; check against the closed form
    p = np.array([0.5, 0.5])
    h_true = -(p * np.log(p)).sum()
    q = np.array([0.75, 0.25])
    h_pred = -(q * np.log(q)).sum()
    joint = {(0, "a"): 0.5, (0, "b"): 0.25, (1, "b"): 0.25}
    mi = sum(v * np.log(v / ({0: 0.75, 1: 0.25}[c] * 0.5)) for (c, _), v in joint.items())
    assert nmi(true, [0, 0, 0, 1]) == pytest.approx(mi / ((h_true + h_pred) / 2))
    assert purity(true, [0, 0, 0, 1]) == pytest.approx(3 / 4)
    assert purity(true, [0, 1, 2, 3]) == 1.0
    assert purity(["a", "b", "c"], [0, 0, 0]) == pytest.approx(1 / 3)


def test_auc_hand_computed() -> None:
    # positives 0.8, 0.4 ; negatives 0.6, 0.2 -> ordered pairs (pos > neg): 0.8>0.6, 0.8>0.2, 0.4>0.2 = 3/4
    assert auc([1, 0, 1, 0], [0.8, 0.6, 0.4, 0.2]) == pytest.approx(0.75)
    assert auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="both"):
        auc([1, 1], [0.1, 0.2])


def test_per_class_summary_f1_and_confusion_hand_computed() -> None:
    from catalog2vec.evaluation.metrics import per_class_summary

    # Blue x4: 2 right, 2 called Black; Black x3: all right; White x2: 1 right, 1 Blue; Red x1 (outside top 3)
    truth = ["Blue"] * 4 + ["Black"] * 3 + ["White"] * 2 + ["Red"]
    pred = ["Blue", "Blue", "Black", "Black", "Black", "Black", "Black", "White", "Blue", "Red"]
    rows = per_class_summary(truth, pred, top=3)["classes"]
    assert [r["class"] for r in rows] == ["Blue", "Black", "White"]  # most frequent first
    blue, black, white = rows
    assert blue["support"] == 4 and blue["recall"] == pytest.approx(0.5)
    assert blue["precision"] == pytest.approx(2 / 3)  # 2 of the 3 predicted Blue are Blue
    assert blue["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert blue["most_confused_with"] == "Black" and blue["confused_share"] == pytest.approx(0.5)
    assert black["precision"] == pytest.approx(3 / 5) and black["recall"] == 1.0
    assert black["most_confused_with"] == "" and black["confused_share"] == 0.0
    assert white["most_confused_with"] == "Blue" and white["confused_share"] == pytest.approx(0.5)
    assert per_class_summary([], [], top=3) == {"classes": []}
    with pytest.raises(ValueError):
        per_class_summary(["a"], [], top=1)


def test_linear_probe_per_class_matches_its_macro_f1() -> None:
    from catalog2vec.evaluation.features import linear_probe

    rng = np.random.default_rng(0)
    centers = {"Blue": (3.0, 0.0), "Black": (0.0, 3.0), "White": (-3.0, -3.0)}
    def draw(n: int) -> tuple[np.ndarray, list[str]]:
        ys = [list(centers)[i % 3] for i in range(n)]
        return np.asarray([centers[y] for y in ys]) + rng.normal(0, 0.3, (n, 2)), ys
    xtr, ytr = draw(60)
    xte, yte = draw(30)
    res = linear_probe(xtr, ytr, xte, yte, per_class=2)
    assert res["macro_f1"] == pytest.approx(1.0) and len(res["per_class"]) == 2
    assert all(r["f1"] == pytest.approx(1.0) and r["support"] == 10 for r in res["per_class"])
    assert "per_class" not in linear_probe(xtr, ytr, xte, yte)
