"""Attribute-aware similarity over frozen embeddings: a Pairwise Attribute-informed similarity
Network in the spirit of PAN (Mishra et al. 2021, "Effectively Leveraging Attributes for Visual
Similarity").

For a pair of frozen embeddings (h1, h2) the network computes

* C condition similarity scores ``s_c ∈ (0, 1)``: each condition projects both items into its
  own subspace ``u = P_c h`` and scores the symmetric pair features ``[u1⊙u2, |u1−u2|, u1+u2]``
  with a small per-condition MLP;
* C relevance weights ``w = softmax(g([h1⊙h2, |h1−h2|]))``;
* the similarity ``p = Σ_c w_c · s_c``.

Training is binary cross-entropy on labelled pairs (positives: same category + colour; sampled
negatives) plus, with weight λ, attribute supervision of the conditions: condition c is tied to
a vocabulary word a_c and ``s_c`` is trained towards ``f_a(a_c ∈ words(item1), a_c ∈ words(item2))``
with f_a ∈ {xnor, or, and}. λ = 0 leaves the conditions unsupervised.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from catalog2vec import models, storage
from catalog2vec.config import SimilaritySection
from catalog2vec.vectors import l2_normalize

log = logging.getLogger(__name__)

ATTRIBUTE_FNS = ("xnor", "or", "and")
EPS = 1e-6


def attribute_targets(a1: torch.Tensor, a2: torch.Tensor, fn: str) -> torch.Tensor:
    """f_a over binary attribute indicators (B, C) of the two items of each pair -> (B, C) in {0, 1}."""
    b1, b2 = a1 > 0.5, a2 > 0.5
    if fn == "xnor":
        out = b1 == b2
    elif fn == "or":
        out = b1 | b2
    elif fn == "and":
        out = b1 & b2
    else:
        raise ValueError(f"unknown attribute function {fn!r}; choose one of {ATTRIBUTE_FNS}")
    return out.float()


class PAN(nn.Module):
    """Conditional similarity head over pairs of frozen embeddings (see module doc)."""

    def __init__(
        self, dim: int, conditions: int, cond_dim: int = 32, hidden: int = 32, gate_hidden: int = 64
    ):
        super().__init__()
        if conditions < 1:
            raise ValueError("PAN needs at least one condition")
        self.dim, self.conditions, self.cond_dim = dim, conditions, cond_dim
        self.project = nn.Linear(dim, conditions * cond_dim)
        self.w1 = nn.Parameter(torch.randn(conditions, 3 * cond_dim, hidden) / np.sqrt(3 * cond_dim))
        self.b1 = nn.Parameter(torch.zeros(conditions, hidden))
        self.w2 = nn.Parameter(torch.randn(conditions, hidden) / np.sqrt(hidden))
        self.b2 = nn.Parameter(torch.zeros(conditions))
        self.gate = nn.Sequential(
            nn.Linear(2 * dim, gate_hidden), nn.ReLU(), nn.Linear(gate_hidden, conditions)
        )

    def forward(self, h1: torch.Tensor, h2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (p (B,), s (B, C), w (B, C))."""
        b = h1.shape[0]
        u1 = self.project(h1).view(b, self.conditions, self.cond_dim)
        u2 = self.project(h2).view(b, self.conditions, self.cond_dim)
        feats = torch.cat([u1 * u2, (u1 - u2).abs(), u1 + u2], dim=-1)  # (B, C, 3dc), symmetric
        hid = torch.relu(torch.einsum("bcf,cfh->bch", feats, self.w1) + self.b1)
        s = torch.sigmoid(torch.einsum("bch,ch->bc", hid, self.w2) + self.b2)
        w = torch.softmax(self.gate(torch.cat([h1 * h2, (h1 - h2).abs()], dim=-1)), dim=-1)
        p = (w * s).sum(dim=-1)
        return p, s, w


# the network's hyper-parameters are the config's [similarity] section, declared once
PANConfig = SimilaritySection


@dataclass
class TrainedPAN:
    model: PAN
    config: PANConfig
    attribute_words: list[str] = field(default_factory=list)
    history: list[float] = field(default_factory=list)

    def save(self, directory: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> str:
        """Publish ``pan.pt`` first, ``pan_card.json`` (the marker) last, to a local path or URI."""
        card = {
            "dim": self.model.dim,
            "config": asdict(self.config),
            "attribute_words": self.attribute_words,
            "final_loss": self.history[-1] if self.history else None,
            **(extra or {}),
        }
        storage.publish(storage.join(directory, "pan_card.json"), card,
                        {storage.join(directory, "pan.pt"): models.torch_bytes(self.model.state_dict())})
        return storage.normalize(directory)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> TrainedPAN:
        d = storage.normalize(directory)
        if not storage.exists(storage.join(d, "pan_card.json")):
            raise FileNotFoundError(f"no trained similarity model at {d} (run jobs/train_similarity.py)")
        card = storage.read_json(storage.join(d, "pan_card.json"))
        cfg = PANConfig(**card["config"])
        model = PAN(int(card["dim"]), cfg.conditions, cfg.cond_dim)
        model.load_state_dict(models.load_torch(storage.join(d, "pan.pt")))
        model.eval()
        return cls(model, cfg, list(card.get("attribute_words", [])))


def choose_attribute_words(label_sets: list[list[int]], tokens: list[str], count: int) -> list[int]:
    """The ``count`` vocabulary words whose presence splits the items most evenly (highest binary
    entropy of document frequency), ties by index: the most informative weak attributes."""
    n = len(label_sets)
    if n == 0 or count <= 0:
        return []
    df = np.zeros(len(tokens), dtype=np.float64)
    for labels in label_sets:
        df[np.unique(np.asarray(labels, dtype=np.int64))] += 1
    p = np.clip(df / n, EPS, 1 - EPS)
    entropy = -(p * np.log(p) + (1 - p) * np.log(1 - p))
    entropy[df == 0] = -1.0
    order = np.lexsort((np.arange(len(tokens)), -entropy))
    return [int(i) for i in order[:count] if df[i] > 0]


def attribute_matrix(label_sets: list[list[int]], attribute_ids: list[int], conditions: int) -> np.ndarray:
    """(n, conditions) 0/1 presence of each condition's word; columns past len(attribute_ids) are 0."""
    pos = {w: c for c, w in enumerate(attribute_ids)}
    out = np.zeros((len(label_sets), conditions), dtype=np.float32)
    for i, labels in enumerate(label_sets):
        for w in labels:
            c = pos.get(int(w))
            if c is not None:
                out[i, c] = 1.0
    return out


def positive_pairs(groups: list[Any], max_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """All (i, j), i < j, with the same group label (subsampled to ``max_pairs``): (P, 2)."""
    by_group: dict[Any, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    pairs = [
        (a, b) for members in by_group.values() for ai, a in enumerate(members) for b in members[ai + 1 :]
    ]
    arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if arr.shape[0] > max_pairs:
        arr = arr[rng.choice(arr.shape[0], max_pairs, replace=False)]
    return arr


def negative_pairs(groups: list[Any], count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random pairs from different groups: (count, 2)."""
    g = np.asarray([str(x) for x in groups], dtype=object)
    n = len(g)
    out = np.zeros((0, 2), dtype=np.int64)
    for _ in range(20):
        if out.shape[0] >= count:
            break
        cand = rng.integers(0, n, size=(2 * count, 2))
        cand = cand[g[cand[:, 0]] != g[cand[:, 1]]]
        out = np.concatenate([out, cand])
    return out[:count]


def train_pan(
    embeddings: np.ndarray,
    groups: list[Any],
    attributes: np.ndarray | None,
    config: PANConfig,
    attribute_words: list[str] | None = None,
) -> TrainedPAN:
    """Train PAN on frozen, L2-normalised ``embeddings`` (n, d).

    ``groups``: the label deciding similarity (e.g. "category|colour"); ``attributes``: (n, C)
    0/1 word indicators (or None: unsupervised conditions, as λ = 0).
    """
    if config.attribute_fn not in ATTRIBUTE_FNS:
        raise ValueError(f"unknown attribute function {config.attribute_fn!r}; choose one of {ATTRIBUTE_FNS}")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    h = torch.from_numpy(l2_normalize(embeddings))
    attr = torch.from_numpy(np.asarray(attributes, dtype=np.float32)) if attributes is not None else None
    if attr is not None and attr.shape != (h.shape[0], config.conditions):
        raise ValueError(f"attributes must be (n, {config.conditions}), got {tuple(attr.shape)}")
    pos = positive_pairs(groups, config.max_pos_pairs, rng)
    if pos.shape[0] == 0:
        raise ValueError("no positive pairs: no two training items share a group (category + colour)")
    model = PAN(h.shape[1], config.conditions, config.cond_dim)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history: list[float] = []
    lam = config.lam if attr is not None else 0.0
    for epoch in range(config.epochs):
        neg = negative_pairs(groups, pos.shape[0] * config.neg_per_pos, rng)
        pairs = np.concatenate([pos, neg])
        # random orientation: the head must not depend on pair order
        flip = rng.random(pairs.shape[0]) < 0.5
        pairs[flip] = pairs[flip][:, ::-1]
        y = np.concatenate([np.ones(pos.shape[0]), np.zeros(neg.shape[0])]).astype(np.float32)
        perm = rng.permutation(pairs.shape[0])
        pairs_t, y_t = torch.from_numpy(pairs[perm].copy()), torch.from_numpy(y[perm])
        model.train()
        total, seen = 0.0, 0
        for start in range(0, pairs_t.shape[0], config.batch_size):
            idx = pairs_t[start : start + config.batch_size]
            yb = y_t[start : start + config.batch_size]
            p, s, _ = model(h[idx[:, 0]], h[idx[:, 1]])
            loss = F.binary_cross_entropy(p.clamp(EPS, 1 - EPS), yb)
            if lam > 0 and attr is not None:
                target = attribute_targets(attr[idx[:, 0]], attr[idx[:, 1]], config.attribute_fn)
                loss = loss + lam * F.binary_cross_entropy(s.clamp(EPS, 1 - EPS), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.shape[0]
            seen += idx.shape[0]
        history.append(total / max(seen, 1))
        if epoch == 0 or (epoch + 1) % 5 == 0 or epoch + 1 == config.epochs:
            log.info("PAN epoch %d/%d loss %.4f (%d pairs)", epoch + 1, config.epochs, history[-1], seen)
    model.eval()
    return TrainedPAN(model, config, list(attribute_words or []), history)


@torch.inference_mode()
def pan_scores(model: PAN, h1: np.ndarray, h2: np.ndarray, batch_size: int = 4096) -> tuple[np.ndarray, ...]:
    """(p (n,), s (n, C), w (n, C)) for aligned rows of h1, h2 (L2-normalised inside)."""
    a, b = torch.from_numpy(l2_normalize(h1)), torch.from_numpy(l2_normalize(h2))
    ps, ss, ws = [], [], []
    for start in range(0, a.shape[0], batch_size):
        p, s, w = model(a[start : start + batch_size], b[start : start + batch_size])
        ps.append(p.numpy())
        ss.append(s.numpy())
        ws.append(w.numpy())
    if not ps:
        c = model.conditions
        return np.zeros(0), np.zeros((0, c)), np.zeros((0, c))
    return np.concatenate(ps), np.concatenate(ss), np.concatenate(ws)


def pan_similarity_matrix(model: PAN, queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """(nq, ng) PAN similarities of every query against every gallery item."""
    nq, ng = queries.shape[0], gallery.shape[0]
    qi, gi = np.repeat(np.arange(nq), ng), np.tile(np.arange(ng), nq)
    p, _, _ = pan_scores(model, queries[qi], gallery[gi])
    return p.reshape(nq, ng)
