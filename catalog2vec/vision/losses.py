"""The two training losses and the ranking metrics used for validation.

* ``softmax`` (Corbière et al. 2017): per image one of its words, sampled uniformly (done by the
  dataset), is the positive; ``N`` negative words are sampled once per batch (uniform or
  unigram^0.75) from the words that are *no* positive of the batch; a negative that happens to be
  another label of the same item is masked out; cross-entropy over [positive, negatives].
* ``bce`` (Illustration2Vec): multi-label sigmoid cross-entropy over all K words.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from catalog2vec.vision.model import WeakLabelNet

SAMPLERS = ("uniform", "unigram")


class NegativeSampler:
    """Samples distinct negative word ids, never one of ``exclude``."""

    def __init__(self, counts: np.ndarray | torch.Tensor, kind: str = "unigram", power: float = 0.75) -> None:
        if kind not in SAMPLERS:
            raise ValueError(f"unknown negative sampler {kind!r}; choose from {SAMPLERS}")
        c = torch.as_tensor(np.asarray(counts, dtype=np.float64))
        if c.dim() != 1 or len(c) == 0:
            raise ValueError("counts must be a non-empty vector")
        w = torch.ones_like(c) if kind == "uniform" else c.clamp(min=0).pow(power)
        if float(w.sum()) <= 0:
            w = torch.ones_like(c)
        self.weights = w / w.sum()
        self.kind = kind

    @property
    def num_words(self) -> int:
        return int(self.weights.numel())

    def sample(self, num: int, exclude: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        w = self.weights.clone()
        w[exclude.long().unique()] = 0.0
        available = int((w > 0).sum())
        n = min(num, available)
        if n == 0:
            return torch.empty(0, dtype=torch.long)
        return torch.multinomial(w, n, replacement=False, generator=generator)


def multi_hot(labels: list[list[int]], num_words: int, device: torch.device | str = "cpu") -> torch.Tensor:
    target = torch.zeros(len(labels), num_words, dtype=torch.bool)
    for r, labs in enumerate(labels):
        target[r, labs] = True
    return target.to(device)


def softmax_loss(model: WeakLabelNet, z: torch.Tensor, positive: torch.Tensor, targets: torch.Tensor,
                 negatives: torch.Tensor) -> torch.Tensor:
    """Sampled softmax: logits [pos, negs] per row, negatives that are labels of the row masked."""
    b = z.shape[0]
    ids = torch.cat([positive[:, None], negatives[None, :].expand(b, -1)], dim=1)
    logits = model.sampled_logits(z, ids).float()
    if negatives.numel():
        other_label = targets[:, negatives]  # (B, M): the negative is another label of this item
        logits[:, 1:] = logits[:, 1:].masked_fill(other_label, float("-inf"))
    return F.cross_entropy(logits, torch.zeros(b, dtype=torch.long, device=z.device))


def bce_loss(model: WeakLabelNet, z: torch.Tensor, targets: torch.Tensor,
             pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(model.word_logits(z).float(), targets.float(), pos_weight=pos_weight)


def bce_pos_weight(counts: np.ndarray, num_items: int, power: float, max_weight: float = 100.0) -> torch.Tensor:
    """Per-word positive weight ``((N - n_w) / n_w) ** power`` (clipped to [1, max_weight]): a word
    on half the items (``men``) keeps weight 1, a word on 1 % of them gets 99**power."""
    n = np.clip(np.asarray(counts, dtype=np.float64), 1.0, None)
    w = np.clip((max(num_items, 1) - n) / n, 1.0, None) ** power
    return torch.as_tensor(np.clip(w, 1.0, max_weight), dtype=torch.float32)


def ranking_sums(scores: np.ndarray, labels: list[list[int]], k: int) -> dict[str, float]:
    """Per-batch sums of precision@k, recall@k and average precision (divide by ``n``)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    sums = {f"precision@{k}": 0.0, f"recall@{k}": 0.0, "map": 0.0, "n": 0.0}
    for row, labs in zip(order, labels, strict=True):
        if not labs:
            continue
        rel = np.isin(row, np.asarray(labs))
        hits_k = float(rel[:k].sum())
        sums[f"precision@{k}"] += hits_k / k
        sums[f"recall@{k}"] += hits_k / len(labs)
        ranks = np.flatnonzero(rel) + 1
        sums["map"] += float(np.mean(np.arange(1, len(ranks) + 1) / ranks))
        sums["n"] += 1
    return sums


def finish(sums: dict[str, float]) -> dict[str, float]:
    n = max(sums.get("n", 0.0), 1.0)
    return {key: (val / n if key != "n" else int(val)) for key, val in sums.items()}


def frequency_baseline(train_labels: list[list[int]], eval_labels: list[list[int]], num_words: int,
                       k: int) -> dict[str, Any]:
    """Metrics of predicting the training label frequencies for every item (the chance baseline)."""
    freq = np.zeros(num_words)
    for labs in train_labels:
        freq[labs] += 1
    scores = np.tile(freq, (len(eval_labels), 1)) if eval_labels else np.zeros((0, num_words))
    return finish(ranking_sums(scores, eval_labels, k))


__all__ = ["NegativeSampler", "bce_loss", "bce_pos_weight", "finish", "frequency_baseline", "multi_hot", "ranking_sums", "softmax_loss"]
