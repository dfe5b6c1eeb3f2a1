"""Linear probe on frozen features and the two baseline feature extractors.

* :func:`linear_probe`: scikit-learn ``LogisticRegression`` on standardised frozen features,
  trained on the train split, scored on the test split (accuracy and macro-F1) — the
  DeepFashion-style category / attribute protocol.
* :func:`color_histogram`: a joint RGB histogram (``bins``³) of the image, near-white studio
  background removed, L1-normalised then square-rooted (Hellinger), so cosine is meaningful.
* :func:`random_weights_model`: the same architecture as a trained model, at random init.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from catalog2vec import models


def linear_probe(
    train_x: np.ndarray,
    train_y: Sequence[Any],
    test_x: np.ndarray,
    test_y: Sequence[Any],
    c: float = 1.0,
    max_iter: int = 1000,
    seed: int = 0,
    per_class: int = 0,
) -> dict[str, Any]:
    """Fit LogisticRegression on (train_x, train_y); accuracy and macro-F1 on the test split.

    Test items whose class never occurs in training count as errors (never silently removed).
    ``per_class`` > 0 adds ``per_class``: F1 and the most common confusion of that many most
    frequent test classes (:func:`catalog2vec.evaluation.metrics.per_class_summary`).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ytr = np.asarray([str(v) for v in train_y], dtype=object)
    yte = np.asarray([str(v) for v in test_y], dtype=object)
    classes = sorted(set(ytr.tolist()))
    result: dict[str, Any] = {
        "train_items": len(ytr),
        "test_items": len(yte),
        "classes": len(classes),
        "test_unseen_class": int(sum(1 for v in yte if v not in set(classes))),
    }
    if len(yte) == 0 or len(ytr) == 0:
        return {**result, "accuracy": float("nan"), "macro_f1": float("nan")}
    if len(classes) < 2:
        pred = np.asarray([classes[0]] * len(yte), dtype=object)
    else:
        from threadpoolctl import threadpool_limits

        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter, random_state=seed))
        # two OpenBLAS builds (numpy's and scipy's) share the process with torch's OpenMP pool;
        # letting them thread against each other made this small fit ~50x slower (measured)
        with threadpool_limits(limits=1):
            clf.fit(np.asarray(train_x, dtype=np.float64), ytr)
            pred = clf.predict(np.asarray(test_x, dtype=np.float64))
    result["accuracy"] = float(accuracy_score(yte, pred))
    result["macro_f1"] = float(f1_score(yte, pred, average="macro", zero_division=0))
    if per_class > 0:
        from catalog2vec.evaluation.metrics import per_class_summary

        result["per_class"] = per_class_summary(list(yte), list(pred), per_class)["classes"]
    return result


def color_histogram(image: bytes | Any, bins: int = 8, size: int = 64, white: int = 235) -> np.ndarray:
    """Joint RGB histogram (bins**3,) of an image (bytes or PIL), background-white pixels removed."""
    from PIL import Image

    img = Image.open(io.BytesIO(image)) if isinstance(image, bytes | bytearray) else image
    img = img.convert("RGB")
    img.thumbnail((size, size))
    px = np.asarray(img, dtype=np.uint8).reshape(-1, 3)
    fg = px[~(px >= white).all(axis=1)]
    if fg.shape[0] == 0:  # an all-white image: keep every pixel
        fg = px
    q = (fg.astype(np.int64) * bins) // 256
    codes = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    hist = np.bincount(codes, minlength=bins**3).astype(np.float64)
    hist /= max(hist.sum(), 1.0)
    return np.sqrt(hist).astype(np.float32)


def color_histograms(images: Sequence[bytes], bins: int = 8) -> np.ndarray:
    if not images:
        return np.zeros((0, bins**3), dtype=np.float32)
    return np.stack([color_histogram(b, bins) for b in images])


def random_weights_model(card: dict[str, Any], seed: int = 0) -> Any:
    """The trained model's architecture (same card, :func:`~catalog2vec.vision.model.build_model_from_card`)
    at random init."""
    import torch

    from catalog2vec.vision.model import build_model_from_card

    torch.manual_seed(seed)
    return build_model_from_card(models.ModelCard.from_dict(card)).eval()
