"""The weakly supervised image model: a torchvision ResNet backbone, an optional projection and a
word-embedding head over the K vocabulary words (Corbière et al. 2017; Illustration2Vec for ``bce``).

``z = proj(pool(resnet(x)))`` is the item embedding; the head scores words as ``z · Wᵀ + b``
with ``W`` (K × D). ``loss="softmax"`` trains sampled softmax (one positive word per image against
sampled negatives); ``loss="bce"`` trains a multi-label sigmoid over all K words.

A model directory (``<lakehouse>/models/<model_version>/``) holds ``model.pt`` (state_dict),
``vocab.parquet`` (token, index) and ``model_card.json``; :func:`load_model_dir` restores it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101")
LOSSES = ("softmax", "bce")
CARD_FORMAT = 1


class WeakLabelNet(nn.Module):
    """ResNet backbone (fc removed) → optional linear projection → word head (K × D + bias)."""

    def __init__(
        self,
        arch: str,
        num_words: int,
        embed_dim: int = 0,
        dropout: float = 0.0,
        loss: str = "softmax",
    ) -> None:
        super().__init__()
        import torchvision

        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; choose from {ARCHS}")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose from {LOSSES}")
        if num_words < 1:
            raise ValueError(f"num_words must be >= 1, got {num_words}")
        if embed_dim < 0:
            raise ValueError(f"embed_dim must be >= 0, got {embed_dim}")
        backbone = getattr(torchvision.models, arch)(weights=None)
        feat_dim = int(backbone.fc.in_features)
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.proj: nn.Module = nn.Linear(feat_dim, embed_dim) if embed_dim else nn.Identity()
        self.arch = arch
        self.loss = loss
        self.feature_dim = feat_dim
        self.embedding_dim = int(embed_dim or feat_dim)
        self.num_words = int(num_words)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        # word embeddings W (K x D) and per-word bias b
        self.words = nn.Linear(self.embedding_dim, self.num_words)
        nn.init.normal_(self.words.weight, std=0.01)
        nn.init.zeros_(self.words.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) → embedding z (B, D)."""
        return self.proj(self.backbone(images))  # type: ignore[no-any-return]

    def word_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Scores of every word, z · Wᵀ + b: (B, K)."""
        return self.words(self.dropout(z))  # type: ignore[no-any-return]

    def sampled_logits(self, z: torch.Tensor, word_ids: torch.Tensor) -> torch.Tensor:
        """Scores of selected words. ``word_ids`` (B, M) per row or (M,) shared by the batch."""
        z = self.dropout(z)
        w = self.words.weight[word_ids]  # (B, M, D) or (M, D)
        b = self.words.bias[word_ids]
        if word_ids.dim() == 1:
            return z @ w.t() + b
        return torch.einsum("bd,bmd->bm", z, w) + b

    def tag_probabilities(self, z: torch.Tensor) -> torch.Tensor:
        """Softmax over the K words (``softmax`` models) or per-word sigmoid (``bce``): (B, K)."""
        logits = self.word_logits(z).float()
        return torch.sigmoid(logits) if self.loss == "bce" else torch.softmax(logits, dim=-1)


def load_init_weights(model: WeakLabelNet, path: str) -> list[str]:
    """Load a torchvision-format ResNet state dict (``fc.*`` ignored) into the backbone.

    Returns the backbone keys that were *not* in the file (empty for a full torchvision checkpoint).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"init weights not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, Mapping) and "model" in state and isinstance(state["model"], Mapping):
        state = state["model"]  # a torchvision reference train.py checkpoint
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own = model.backbone.state_dict()
    unexpected = sorted(set(state) - set(own))
    if unexpected:
        raise ValueError(f"{path}: not a torchvision {model.arch} state dict (unexpected keys {unexpected[:5]})")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise ValueError(f"{path}: {k} has shape {tuple(v.shape)}, {model.arch} expects {tuple(own[k].shape)}")
    missing, _ = model.backbone.load_state_dict(state, strict=False)
    return list(missing)


def build_model(
    arch: str,
    num_words: int,
    embed_dim: int = 0,
    dropout: float = 0.0,
    init_weights: str = "",
    loss: str = "softmax",
) -> WeakLabelNet:
    """A :class:`WeakLabelNet`; ``init_weights`` = path of a torchvision state dict (or "")."""
    model = WeakLabelNet(arch, num_words, embed_dim=embed_dim, dropout=dropout, loss=loss)
    if init_weights:
        load_init_weights(model, init_weights)
    return model


@dataclass
class LoadedModel:
    model: WeakLabelNet
    tokens: list[str]
    vocab_version: str
    image_size: int
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def model_version(self) -> str:
        return str(self.card.get("model_version", ""))


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to a temporary file in the same directory, then ``os.replace``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_model_dir(
    path: str | os.PathLike[str],
    model: WeakLabelNet,
    tokens: list[str],
    vocab_version: str,
    config: dict[str, Any],
    card_extra: dict[str, Any] | None = None,
) -> None:
    """Write ``model.pt``, ``vocab.parquet`` (token, index) and ``model_card.json`` (each atomically)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(tokens) != model.num_words:
        raise ValueError(f"{len(tokens)} tokens for a model with {model.num_words} words")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save(state, out / "model.pt")
    table = pa.table({"token": pa.array(tokens, pa.string()), "index": pa.array(range(len(tokens)), pa.int32())})
    tmp = out / ".vocab.parquet.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, out / "vocab.parquet")
    image_size = int(config.get("image_size", config.get("train", {}).get("image_size", 224)))
    card: dict[str, Any] = {
        "format": CARD_FORMAT,
        "arch": model.arch,
        "loss": model.loss,
        "embedding_dim": model.embedding_dim,
        "feature_dim": model.feature_dim,
        "projected": not isinstance(model.proj, nn.Identity),
        "dropout": float(model.dropout.p) if isinstance(model.dropout, nn.Dropout) else 0.0,
        "num_words": model.num_words,
        "image_size": image_size,
        "vocab_version": vocab_version,
        "config": config,
        "metrics": {},
    }
    card.update(card_extra or {})
    _atomic_write_bytes(out / "model_card.json", json.dumps(card, indent=2, sort_keys=True, default=str).encode())


def load_model_dir(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> LoadedModel:
    """Restore a model directory written by :func:`save_model_dir` (model in eval mode)."""
    import pyarrow.parquet as pq

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"model directory not found: {root}")
    for name in ("model.pt", "vocab.parquet", "model_card.json"):
        if not (root / name).is_file():
            raise FileNotFoundError(f"{root}: missing {name} (not a complete model directory)")
    try:
        card = json.loads((root / "model_card.json").read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{root}/model_card.json is not valid JSON: {exc}") from exc
    for key in ("arch", "loss", "embedding_dim", "num_words", "image_size", "vocab_version"):
        if key not in card:
            raise ValueError(f"{root}/model_card.json lacks {key!r}")
    vocab = pq.read_table(root / "vocab.parquet").sort_by("index")
    tokens = [str(t) for t in vocab.column("token").to_pylist()]
    if len(tokens) != int(card["num_words"]) or vocab.column("index").to_pylist() != list(range(len(tokens))):
        raise ValueError(f"{root}/vocab.parquet does not hold indices 0..{int(card['num_words']) - 1}")
    model = WeakLabelNet(
        card["arch"],
        int(card["num_words"]),
        embed_dim=int(card["embedding_dim"]) if card.get("projected") else 0,
        dropout=float(card.get("dropout", 0.0)),
        loss=card["loss"],
    )
    state = torch.load(root / "model.pt", map_location=map_location, weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{root}/model.pt does not match its model card: {exc}") from exc
    model.to(map_location).eval()
    return LoadedModel(
        model=model,
        tokens=tokens,
        vocab_version=str(card["vocab_version"]),
        image_size=int(card["image_size"]),
        card=card,
    )


__all__ = [
    "ARCHS",
    "LOSSES",
    "LoadedModel",
    "WeakLabelNet",
    "atomic_torch_save",
    "build_model",
    "load_init_weights",
    "load_model_dir",
    "save_model_dir",
]
