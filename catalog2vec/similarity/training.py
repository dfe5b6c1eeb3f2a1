"""Train the attribute-aware similarity head (PAN) on one model version's frozen embeddings.

Training items: the train split of ``silver.item_labels`` (vocabulary version of the model card)
that have an embedding, a category and a colour. Positives: pairs with the same category +
colour; negatives: sampled pairs that differ. Condition c is supervised by the vocabulary word
whose presence splits the training items most evenly (see ``choose_attribute_words``).
The head is saved to ``<lakehouse>/similarity/<model_version>/`` (pan.pt + pan_card.json).

Bounded at any catalog size: at most ``similarity.max_train_items`` train-split items (pairs are
drawn among them, at most ``similarity.max_pos_pairs`` positives) and ``max_heldout_items``
val + test items (the held-out pair AUC) are read, a deterministic sample by a hash of
item_id chosen in Spark (:func:`catalog2vec.retrieval.inputs.split_frame` with caps).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from catalog2vec.config import Config
from catalog2vec.errors import InvalidInput
from catalog2vec.layout import similarity_dir
from catalog2vec.retrieval.inputs import split_frame
from catalog2vec.similarity.pan import (
    PANConfig,
    TrainedPAN,
    attribute_matrix,
    choose_attribute_words,
    negative_pairs,
    pan_scores,
    positive_pairs,
    train_pan,
)
from catalog2vec.vectors import auc, l2_normalize

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def pan_config(cfg: Config) -> PANConfig:
    """The network's hyper-parameters: the config's ``[similarity]`` section itself."""
    return cfg.similarity


def pair_eval(
    trained: TrainedPAN, h: np.ndarray, groups: list[str], seed: int = 1, max_pos: int = 5000
) -> dict[str, Any]:
    """Pair AUC of PAN vs plain cosine on labelled pairs of held-out items."""
    rng = np.random.default_rng(seed)
    pos = positive_pairs(groups, max_pos, rng)
    if pos.shape[0] == 0:
        return {"pairs": 0, "auc_pan": float("nan"), "auc_cosine": float("nan")}
    neg = negative_pairs(groups, pos.shape[0] * 3, rng)
    pairs = np.concatenate([pos, neg])
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    p, _, _ = pan_scores(trained.model, h[pairs[:, 0]], h[pairs[:, 1]])
    hn = l2_normalize(h)
    cos = (hn[pairs[:, 0]] * hn[pairs[:, 1]]).sum(axis=1)
    return {"pairs": len(y), "positives": len(pos), "auc_pan": auc(y, p), "auc_cosine": auc(y, cos)}


def train_similarity(spark: SparkSession, cfg: Config, model_version: str) -> dict[str, Any]:
    pcfg = pan_config(cfg)
    caps = {"train": pcfg.max_train_items, "val": pcfg.max_heldout_items, "test": pcfg.max_heldout_items}
    frame, emb, tokens, vocab_version = split_frame(spark, cfg, model_version, caps, pcfg.seed)
    train = frame[(frame["split"] == "train") & frame["group"].notna()]
    if train.empty:
        raise InvalidInput("no training items with an embedding, a category and a colour")
    label_sets = [list(v) for v in train["labels"]]
    attr_ids = choose_attribute_words(label_sets, tokens, pcfg.conditions) if pcfg.lam > 0 else []
    attrs = attribute_matrix(label_sets, attr_ids, pcfg.conditions) if attr_ids else None
    words = [tokens[i] for i in attr_ids]
    log.info(
        "PAN: %d train items, %d groups, attribute words %s", len(train), train["group"].nunique(), words
    )
    trained = train_pan(emb.matrix[train["row"].to_numpy()], list(train["group"]), attrs, pcfg, words)
    held = frame[(frame["split"] != "train") & frame["group"].notna()]
    evaluation = (
        pair_eval(trained, emb.matrix[held["row"].to_numpy()], list(held["group"])) if len(held) > 1 else {}
    )
    extra = {
        "model_version": model_version,
        "vocab_version": vocab_version,
        "train_items": len(train),
        "max_train_items": pcfg.max_train_items,
        "train_groups": int(train["group"].nunique()),
        "skipped_no_category_or_colour": int(frame["group"].isna().sum()),
        "loss_history": trained.history,
        "heldout_pairs": evaluation,
        "run_id": cfg.run_id,
    }
    out = trained.save(similarity_dir(cfg.lakehouse, model_version), extra)
    return {
        "model_version": model_version,
        "dir": str(out),
        **{k: v for k, v in extra.items() if k != "loss_history"},
    }
