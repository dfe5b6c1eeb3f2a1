from __future__ import annotations

import numpy as np
import pytest
import torch

from catalog2vec.similarity.pan import (
    PAN,
    PANConfig,
    TrainedPAN,
    attribute_matrix,
    attribute_targets,
    choose_attribute_words,
    negative_pairs,
    pan_scores,
    positive_pairs,
    train_pan,
)
from catalog2vec.vectors import auc, l2_normalize


def test_attribute_functions_truth_tables() -> None:
    a1 = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    a2 = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
    assert attribute_targets(a1, a2, "xnor").tolist() == [[1, 0, 0, 1]]
    assert attribute_targets(a1, a2, "or").tolist() == [[0, 1, 1, 1]]
    assert attribute_targets(a1, a2, "and").tolist() == [[0, 0, 0, 1]]
    with pytest.raises(ValueError):
        attribute_targets(a1, a2, "xor")


def test_pan_is_symmetric_and_weights_sum_to_one() -> None:
    torch.manual_seed(0)
    m = PAN(6, 4).eval()
    h1, h2 = torch.randn(5, 6), torch.randn(5, 6)
    p12, s12, w12 = m(h1, h2)
    p21, _, _ = m(h2, h1)
    torch.testing.assert_close(p12, p21)
    torch.testing.assert_close(w12.sum(-1), torch.ones(5))
    assert ((p12 > 0) & (p12 < 1)).all() and s12.shape == (5, 4)


def test_pair_sampling_and_attribute_words() -> None:
    rng = np.random.default_rng(0)
    groups = ["a", "a", "a", "b", "c"]
    pos = positive_pairs(groups, 100, rng)
    assert sorted(map(tuple, pos.tolist())) == [(0, 1), (0, 2), (1, 2)]
    neg = negative_pairs(groups, 50, rng)
    assert neg.shape == (50, 2) and all(groups[i] != groups[j] for i, j in neg)
    labels = [[0, 1], [0], [0, 2], [0, 1, 2]]  # word 0 in all items, words 1 and 2 in half
    assert choose_attribute_words(labels, ["w0", "w1", "w2", "w3"], 2) == [1, 2]
    np.testing.assert_array_equal(
        attribute_matrix(labels, [1, 2], 3)[:, :2], [[1, 0], [0, 0], [0, 1], [1, 1]]
    )


def _planted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Two planted binary attributes on weak directions, buried under strong nuisance dimensions;
    similarity (the group) is decided by the attributes only."""
    rng = np.random.default_rng(seed)
    attrs = rng.integers(0, 2, size=(n, 2)).astype(np.float32)
    nuisance = rng.normal(size=(n, 30)) * 1.0
    signal = (2 * attrs - 1) * 0.35 + rng.normal(size=(n, 2)) * 0.05
    x = np.concatenate([signal, nuisance], axis=1).astype(np.float32)
    groups = [f"{int(a)}|{int(b)}" for a, b in attrs]
    return x, attrs, groups


def test_pan_learns_planted_attribute_far_above_cosine(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x, attrs, groups = _planted(400, 0)
    cfg = PANConfig(
        conditions=2,
        attribute_fn="xnor",
        lam=0.5,
        epochs=12,
        lr=3e-3,
        neg_per_pos=1,
        max_pos_pairs=3000,
        seed=0,
    )
    trained = train_pan(x, groups, attrs, cfg, attribute_words=["attr0", "attr1"])
    assert trained.history[-1] < trained.history[0]
    # held-out items
    xt, at, gt = _planted(300, 1)
    rng = np.random.default_rng(2)
    pairs = rng.integers(0, 300, size=(3000, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    y = np.array([gt[i] == gt[j] for i, j in pairs], dtype=int)
    p, s, _w = pan_scores(trained.model, xt[pairs[:, 0]], xt[pairs[:, 1]])
    xn = l2_normalize(xt)
    cos = (xn[pairs[:, 0]] * xn[pairs[:, 1]]).sum(1)
    auc_pan, auc_cos = auc(y, p), auc(y, cos)
    assert auc_cos < 0.65
    assert auc_pan > 0.9 and auc_pan > auc_cos + 0.25
    # the supervised conditions fire on their attribute: s_c ~ xnor(attr_c)
    for c in range(2):
        same = at[pairs[:, 0], c] == at[pairs[:, 1], c]
        assert auc(same.astype(int), s[:, c]) > 0.9
    # save / load gives identical scores
    trained.save(tmp_path / "pan")
    back = TrainedPAN.load(tmp_path / "pan")
    assert back.attribute_words == ["attr0", "attr1"]
    np.testing.assert_allclose(
        pan_scores(back.model, xt[:10], xt[10:20])[0],
        pan_scores(trained.model, xt[:10], xt[10:20])[0],
        rtol=1e-6,
    )


def test_train_pan_rejects_data_without_positive_pairs() -> None:
    with pytest.raises(ValueError, match="no positive pairs"):
        train_pan(np.eye(3, dtype=np.float32), ["a", "b", "c"], None, PANConfig(conditions=2, epochs=1))


@pytest.fixture(autouse=True)
def _one_thread():  # type: ignore[no-untyped-def]
    # tiny matrices: one intra-op thread is faster than two contended ones on a shared machine
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
