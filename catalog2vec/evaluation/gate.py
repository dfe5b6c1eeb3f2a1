"""The promotion gate: a trained candidate replaces the champion only when evaluation says so.

DESIGN's promotion rule: training publishes a *candidate* (``models/<version>/`` + card, MLflow alias
``challenger``); this module decides; only :func:`promote` moves ``models/LATEST`` (the champion)
and the registry's ``champion`` alias — and with ``models/LATEST`` the ``*_latest`` views, which
``register_tables`` points at the version ``models/LATEST`` names.

The decision scores the candidate and the champion on the **same held-out items**: the test split
of the candidate's vocabulary (``silver/item_labels``; the split is a hash of item_id, so these are
items neither model trained on), at most ``[evaluation] max_test_items`` of them chosen by a hash of
item_id (the driver holds O(cap), never O(items)). Both models are scored from their weights
directly, before any embedding table exists (the gate runs before ``embed``):

* ``tag_recall@k`` — top-k recall of each item's own words by the model's tag head (the paper's
  label-prediction metric); words are compared as strings, so a champion trained on another
  vocabulary version is scored against the same ground truth;
* ``retrieval_precision@10`` — precision@10 of cosine retrieval among the held-out items, relevant
  = same category (``bronze/catalog_items``; ``None`` without categories).

The candidate passes when ``candidate >= champion + [promotion] min_delta`` on ``[promotion]
metric``; with no champion yet it passes (the first model is promoted); the champion itself passes
(a re-run is idempotent). The decision is a JSON record, ``reports/<candidate>/promotion.json``.

>>> from catalog2vec.evaluation import gate
>>> decision = gate.decide(spark, cfg, "resnet18-bce-1a2b3c4d-5e6f7a8b")   # doctest: +SKIP
>>> decision.promoted, decision.reason                                     # doctest: +SKIP
(False, 'tag_recall@5 0.412 < champion 0.455 + min_delta 0.000')
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from catalog2vec import layout, models, storage, tracking
from catalog2vec.errors import InvalidInput
from catalog2vec.evaluation import metrics as M

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

    from catalog2vec.config import Config
    from catalog2vec.vision.model import LoadedModel

log = logging.getLogger(__name__)

TAG_KS = (3, 5, 10)
METRICS = (*(f"tag_recall@{k}" for k in TAG_KS), "retrieval_precision@10")  # [promotion] metric choices
DECISION_FILE = "promotion.json"


@dataclass(frozen=True)
class Decision:
    """What the gate decided about one candidate, and why (the JSON record)."""

    candidate: str
    champion: str  # "" = there was none
    metric: str
    min_delta: float
    passed: bool  # the candidate met the threshold (or there was no champion)
    promoted: bool  # passed, or fail_if_worse is off
    reason: str
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)  # version -> metric -> value
    heldout_items: int = 0
    run_id: str = ""
    decided_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decision_path(root: str | os.PathLike[str], candidate: str) -> str:
    """``<lakehouse>/reports/<candidate>/promotion.json``."""
    return storage.join(layout.report_dir(root, candidate), DECISION_FILE)


def heldout_items(spark: SparkSession, cfg: Config, vocab_version: str) -> pd.DataFrame:
    """pandas ``item_id, words, category, image`` of at most ``evaluation.max_test_items`` test-split
    items of ``vocab_version`` that have an image (chosen by a seeded hash of item_id, in Spark)."""
    from pyspark.sql import functions as F

    from catalog2vec.lakehouse import read_table, table_exists
    from catalog2vec.lakehouse.sampling import cap_by_hash
    from catalog2vec.schemas import bronze, silver

    root = cfg.lakehouse
    labels = read_table(spark, root, silver.ITEM_LABELS).where(
        (F.col("vocab_version") == vocab_version) & (F.col("split") == "test"))
    vocab = read_table(spark, root, silver.VOCAB).where(F.col("vocab_version") == vocab_version)
    images = read_table(spark, root, silver.IMAGES).select("item_id", "image")
    chosen = cap_by_hash(labels.select("item_id", "labels").join(images.select("item_id"), "item_id", "left_semi"),
                         cfg.evaluation.max_test_items, "item_id", cfg.evaluation.seed)
    words = (chosen.select("item_id", F.explode("labels").alias("index"))
             .join(vocab.select("index", "token"), "index")
             .groupBy("item_id").agg(F.sort_array(F.collect_set("token")).alias("words")))
    frame = words.join(images, "item_id")
    if table_exists(root, bronze.CATALOG_ITEMS):
        items = read_table(spark, root, bronze.CATALOG_ITEMS).select("item_id", "category")
        frame = frame.join(items, "item_id", "left")
    else:
        frame = frame.withColumn("category", F.lit(None).cast("string"))
    pdf: pd.DataFrame = frame.orderBy("item_id").toPandas()
    return pdf


def score_model(loaded: LoadedModel, items: pd.DataFrame) -> dict[str, float | None]:
    """``tag_recall@3|5|10`` of the model's tag head and ``retrieval_precision@10`` (same category)
    on ``items`` (:func:`heldout_items`), from the model's weights."""
    import torch

    from catalog2vec.retrieval.query import embed_images

    z = embed_images(loaded.model, loaded.image_size, [bytes(b) for b in items["image"]])
    with torch.inference_mode():
        probs = loaded.model.tag_probabilities(torch.from_numpy(z)).numpy()
    top = M.top_k_from_scores(probs, min(max(TAG_KS), probs.shape[1]))
    predicted = [[loaded.tokens[int(i)] for i in row] for row in top]
    truth = [list(w) for w in items["words"]]
    scores: dict[str, float | None] = {f"tag_recall@{k}": M.tag_recall_at_k(predicted, truth, k) for k in TAG_KS}
    categories = [str(c) if c is not None and c == c else "" for c in items["category"]]
    known = [i for i, c in enumerate(categories) if c]
    scores["retrieval_precision@10"] = None
    if len(known) > 1 and len({categories[i] for i in known}) > 1:
        ranked = M.rank_by_cosine(z[known], z[known], exclude_self=True)
        report = M.retrieval_report_from_ranking(ranked, [categories[i] for i in known], (10,))
        scores["retrieval_precision@10"] = float(report["precision@10"])
    return {k: (None if v is None else round(float(v), 6)) for k, v in scores.items()}


def _verdict(cfg: Config, candidate: float | None, champion: float | None) -> tuple[bool, str]:
    p = cfg.promotion
    if candidate is None or champion is None:
        raise InvalidInput(f"promotion.metric {p.metric!r} cannot be measured on these items "
                           "(retrieval_precision@10 needs categories in bronze/catalog_items)")
    need = champion + p.min_delta
    sign = ">=" if candidate >= need else "<"
    return candidate >= need, f"{p.metric} {candidate:.4f} {sign} champion {champion:.4f} + min_delta {p.min_delta:.4f}"


def decide(spark: SparkSession, cfg: Config, candidate: str) -> Decision:
    """Score ``candidate`` against the champion (``models/LATEST``) on the held-out items."""
    from catalog2vec.vision.model import load_model_dir

    p = cfg.promotion
    champion = models.read_latest(cfg.lakehouse)
    if champion and champion not in models.list_versions(cfg.lakehouse):
        champion = ""  # LATEST names no card: treated as no champion (models.resolve would refuse it)
    base = Decision(candidate, champion, p.metric, p.min_delta, passed=True, promoted=True, reason="",
                    run_id=cfg.run_id, decided_at=datetime.now(UTC).isoformat())
    if champion == candidate:
        return replace(base, reason="the candidate is already the champion")
    cand = load_model_dir(models.model_dir(cfg.lakehouse, candidate))
    items = heldout_items(spark, cfg, cand.vocab_version)
    if len(items) < 2:
        raise InvalidInput(f"only {len(items)} held-out (test-split) items with an image for vocab_version "
                           f"{cand.vocab_version}: cannot evaluate candidate {candidate}")
    scores = {candidate: score_model(cand, items)}
    if not champion:
        return replace(base, reason="no champion yet: the first candidate is promoted", scores=scores,
                       heldout_items=len(items))
    scores[champion] = score_model(load_model_dir(models.model_dir(cfg.lakehouse, champion)), items)
    passed, why = _verdict(cfg, scores[candidate][p.metric], scores[champion][p.metric])
    if not passed and not p.fail_if_worse:
        why += " (promotion.fail_if_worse = false: promoted anyway)"
    return replace(base, passed=passed, promoted=passed or not p.fail_if_worse, reason=why, scores=scores,
                   heldout_items=len(items))


def write_decision(cfg: Config, decision: Decision) -> str:
    """The decision as ``reports/<candidate>/promotion.json`` (one atomic write); returns its path."""
    return storage.publish(decision_path(cfg.lakehouse, decision.candidate), decision.to_dict())


def promote(cfg: Config, candidate: str) -> dict[str, Any]:
    """Make ``candidate`` the champion: ``models/LATEST`` first (the lakehouse is the source of truth;
    every model stage resolves ``latest`` from it), then the registry's ``champion`` alias when the
    image model is tracked (``train.mlflow``). The ``*_latest`` views follow ``models/LATEST`` at the
    next ``register_tables``. Returns what moved."""
    previous = models.read_latest(cfg.lakehouse)
    models.publish_latest(cfg.lakehouse, candidate)
    moved: dict[str, Any] = {"models/LATEST": candidate, "previous": previous or None, "registry_version": None}
    if cfg.train.mlflow:
        moved["registry_version"] = tracking.move_alias(tracking.registry(cfg), candidate)
    log.info("promoted %s (was %s): %s", candidate, previous or "none", moved)
    return moved


__all__ = ["DECISION_FILE", "Decision", "decide", "decision_path", "heldout_items", "promote", "score_model",
           "write_decision"]
