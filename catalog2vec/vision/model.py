"""The weakly supervised image model: a torchvision ResNet backbone, an optional projection and a
word-embedding head over the K vocabulary words (Corbière et al. 2017; Illustration2Vec for ``bce``).

``z = proj(pool(resnet(x)))`` is the item embedding; the ``linear`` head scores words as
``z · Wᵀ + b`` with ``W`` (K × D). The ``cosine`` head (a cosine classifier) L2-normalises the
embedding — ``z`` is then a unit vector — and scores ``s · cos(z, W_k) + b_k`` with a learned
temperature ``s = exp(logit_scale)``: no word can win by growing the norm of one shared direction,
which is what collapsed the linear head's embeddings (mean pairwise cosine 0.945 on the demo).
``loss="softmax"`` trains sampled softmax (one positive word per image against
sampled negatives); ``loss="bce"`` trains a multi-label sigmoid over all K words.

Optional **attribute heads** (``train.attribute_heads``, :mod:`catalog2vec.vision.attributes`): one
softmax head per structured catalog field (``category``, ``color``, ``gender``) beside the word
head, reading the same ``z`` (so what they learn is in the embedding written to gold); scored like
the word head (``cosine``: own temperature × cos(z, A_c) + b_c). The card's ``attribute_heads``
records the fields, class lists and loss weights; :func:`load_model_dir` rebuilds them from it.

A model directory (``<lakehouse>/models/<model_version>/``) holds ``model.pt`` (state_dict),
``vocab.parquet`` (token, index) and ``model_card.json``; :func:`load_model_dir` restores it.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from catalog2vec import models, storage
from catalog2vec.errors import InvalidInput, MissingInput

ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101")
LOSSES = ("softmax", "bce")
HEADS = ("linear", "cosine")
CARD_FORMAT = 1
MAX_LOGIT_SCALE = 100.0


class AttributeHead(nn.Module):
    """A softmax head over one field's classes: ``z · Aᵀ + b`` (``linear``) or ``s · cos(z, A) + b``
    with its own learned temperature ``s`` (``cosine``)."""

    def __init__(self, dim: int, num_classes: int, head: str, init_scale: float = 10.0) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"an attribute head needs >= 2 classes, got {num_classes}")
        self.head = head
        self.classes = nn.Linear(dim, num_classes)
        nn.init.normal_(self.classes.weight, std=0.01)
        nn.init.zeros_(self.classes.bias)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(init_scale)), requires_grad=head == "cosine")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.head != "cosine":
            return self.classes(z)  # type: ignore[no-any-return]
        w = nn.functional.normalize(self.classes.weight, dim=-1) * self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)
        return nn.functional.linear(nn.functional.normalize(z, dim=-1), w, self.classes.bias)


class WeakLabelNet(nn.Module):
    """ResNet backbone (fc removed) → optional linear projection → word head (K × D + bias)."""

    def __init__(
        self,
        arch: str,
        num_words: int,
        embed_dim: int = 0,
        dropout: float = 0.0,
        loss: str = "softmax",
        head: str = "linear",
        init_scale: float = 10.0,
        attributes: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__()

        import torchvision

        if arch not in ARCHS:
            raise InvalidInput(f"unknown arch {arch!r}; choose from {ARCHS}")
        if loss not in LOSSES:
            raise InvalidInput(f"unknown loss {loss!r}; choose from {LOSSES}")
        if head not in HEADS:
            raise InvalidInput(f"unknown head {head!r}; choose from {HEADS}")
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
        self.head = head
        self.feature_dim = feat_dim
        self.embedding_dim = int(embed_dim or feat_dim)
        self.num_words = int(num_words)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        # word embeddings W (K x D) and per-word bias b
        self.words = nn.Linear(self.embedding_dim, self.num_words)
        nn.init.normal_(self.words.weight, std=0.01)
        nn.init.zeros_(self.words.bias)
        # cosine head: learned temperature, log-parametrised (a plain buffer-free scalar for linear)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(init_scale)), requires_grad=head == "cosine")
        # attribute heads (field -> number of classes), in the order of train.attribute_heads
        self.attribute_heads = nn.ModuleDict({f: AttributeHead(self.embedding_dim, int(n), head, init_scale)
                                              for f, n in (attributes or {}).items()})

    def attribute_logit_layers(self) -> dict[str, nn.Linear]:
        """Per attribute head, its class layer (weight ``(C_f, D)``)."""
        return {f: h.classes for f, h in self.attribute_heads.items() if isinstance(h, AttributeHead)}

    def attribute_logits(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per attribute head, its class scores ``(B, C_f)`` of the embedding ``z``."""
        return {f: h(z) for f, h in self.attribute_heads.items()}

    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def init_bias(self, prior: torch.Tensor) -> None:
        """Start the word bias at the label prior (log-odds for ``bce``, log-frequency for
        ``softmax``) so the first steps are not spent learning word frequencies."""
        p = prior.double().clamp(1e-6, 1 - 1e-6)
        b = torch.log(p / (1 - p)) if self.loss == "bce" else torch.log(p / p.sum())
        with torch.no_grad():
            self.words.bias.copy_(b.to(self.words.bias.dtype))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) → embedding z (B, D); unit-norm for the ``cosine`` head."""
        z = self.proj(self.backbone(images))
        if self.head == "cosine":
            z = nn.functional.normalize(z, dim=-1)
        return z  # type: ignore[no-any-return]

    def _weights(self, w: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(w, dim=-1) * self.scale() if self.head == "cosine" else w

    def _input(self, z: torch.Tensor) -> torch.Tensor:
        z = self.dropout(z)
        return nn.functional.normalize(z, dim=-1) if self.head == "cosine" else z

    def word_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Scores of every word, z · Wᵀ + b (``cosine``: s · cos(z, W) + b): (B, K)."""
        return nn.functional.linear(self._input(z), self._weights(self.words.weight), self.words.bias)

    def sampled_logits(self, z: torch.Tensor, word_ids: torch.Tensor) -> torch.Tensor:
        """Scores of selected words. ``word_ids`` (B, M) per row or (M,) shared by the batch."""
        z = self._input(z)
        w = self._weights(self.words.weight[word_ids])  # (B, M, D) or (M, D)
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
    if not storage.isfile(path):
        raise MissingInput(f"init weights not found: {path}")
    state = torch_load(path)
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
    head: str = "linear",
    attributes: Mapping[str, int] | None = None,
) -> WeakLabelNet:
    """A :class:`WeakLabelNet`; ``init_weights`` = path or URI of a torchvision state dict (or "");
    ``attributes`` = field -> number of classes of each attribute head."""
    model = WeakLabelNet(arch, num_words, embed_dim=embed_dim, dropout=dropout, loss=loss, head=head,
                         attributes=attributes)
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


torch_bytes = models.torch_bytes
torch_load = models.load_torch
atomic_torch_save = models.save_torch


def save_model_dir(
    path: str | os.PathLike[str],
    model: WeakLabelNet,
    tokens: list[str],
    vocab_version: str,
    config: dict[str, Any],
    card_extra: dict[str, Any] | None = None,
) -> None:
    """Write ``model.pt``, ``vocab.parquet`` (token, index), then ``model_card.json`` (the marker:
    a reader trusts the directory once the card exists), to a local path or URI."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(tokens) != model.num_words:
        raise ValueError(f"{len(tokens)} tokens for a model with {model.num_words} words")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    table = pa.table({"token": pa.array(tokens, pa.string()), "index": pa.array(range(len(tokens)), pa.int32())})
    vocab_buf = io.BytesIO()
    pq.write_table(table, vocab_buf)
    image_size = int(config.get("image_size", config.get("train", {}).get("image_size", 224)))
    card: dict[str, Any] = {
        "format": CARD_FORMAT,
        "arch": model.arch,
        "loss": model.loss,
        "head": model.head,
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
    heads = {f: int(h.weight.shape[0]) for f, h in model.attribute_logit_layers().items()}
    if card_attributes(card) != heads:  # the card must rebuild the model (load_model_dir)
        raise ValueError(f"card_extra['attribute_heads'] must list the model's heads and classes {heads}")
    models.publish(path, card, {"model.pt": torch_bytes(state), "vocab.parquet": vocab_buf.getvalue()})


def card_attributes(card: Mapping[str, Any]) -> dict[str, int]:
    """Field -> number of classes of the attribute heads a model card records (none: {})."""
    spec = card.get("attribute_heads") or {}
    classes = spec.get("classes") or {}
    fields = spec.get("fields") or []
    if any(f not in classes for f in fields):
        raise InvalidInput(f"model card: attribute_heads lists {fields} but has classes for {sorted(classes)}")
    return {str(f): len(classes[f]) for f in fields}


def build_model_from_card(card: models.ModelCard) -> WeakLabelNet:
    """The network a model card describes (arch, projection, dropout, head, attribute heads), at
    random init: the one rule that turns a card into a network (:func:`load_model_dir` then loads
    the weights; the evaluation's random-weights baseline keeps them random)."""
    return build_model(card.arch, card.num_words, embed_dim=card.embed_dim, dropout=card.dropout, loss=card.loss,
                       head=card.head, attributes=card_attributes(card.data))


def load_model_dir(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> LoadedModel:
    """Restore a model directory written by :func:`save_model_dir` (model in eval mode)."""
    import pyarrow.parquet as pq

    root = storage.normalize(path)
    if not storage.exists(storage.join(root, models.CARD_FILE)):
        if not storage.isdir(root):
            raise MissingInput(f"model directory not found: {root}")
        raise MissingInput(f"{root}: missing {models.CARD_FILE} (not a published model directory)")
    for name in ("model.pt", "vocab.parquet"):
        if not storage.exists(storage.join(root, name)):
            raise MissingInput(f"{root}: missing {name} (not a complete model directory)")
    try:
        card = models.ModelCard.from_dict(storage.read_json(storage.join(root, models.CARD_FILE)),
                                          f"{root}/model_card.json")
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{root}/model_card.json is not valid JSON: {exc}") from exc
    vocab = pq.read_table(io.BytesIO(storage.read_bytes(storage.join(root, "vocab.parquet")))).sort_by("index")
    tokens = [str(t) for t in vocab.column("token").to_pylist()]
    if len(tokens) != card.num_words or vocab.column("index").to_pylist() != list(range(len(tokens))):
        raise InvalidInput(f"{root}/vocab.parquet does not hold indices 0..{card.num_words - 1}")
    model = build_model_from_card(card)
    state = torch_load(storage.join(root, "model.pt"), map_location=map_location)
    if "logit_scale" not in state:  # a model saved before the cosine head existed
        state = {**state, "logit_scale": model.logit_scale.detach().clone()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise InvalidInput(f"{root}/model.pt does not match its model card: {exc}") from exc
    model.to(map_location).eval()
    return LoadedModel(
        model=model,
        tokens=tokens,
        vocab_version=card.vocab_version,
        image_size=card.image_size,
        card=card.to_dict(),
    )


__all__ = [
    "ARCHS",
    "HEADS",
    "LOSSES",
    "AttributeHead",
    "LoadedModel",
    "WeakLabelNet",
    "atomic_torch_save",
    "build_model",
    "build_model_from_card",
    "card_attributes",
    "load_init_weights",
    "load_model_dir",
    "save_model_dir",
    "torch_bytes",
    "torch_load",
]
