"""The one owner of model versions: where they live, which one is ``latest``, and publishing.

Layout (under any lakehouse root, local or URI, through :mod:`catalog2vec.storage`)::

    <root>/models/<model_version>/model.pt, vocab.parquet, ..., model_card.json   (card = marker)
    <root>/models/LATEST                                                          (one line)

A version exists once its ``model_card.json`` exists: the card is written last, so a reader
never sees a half-written model. Training publishes a *candidate* (its directory and card) and
never touches ``models/LATEST``: only the promotion step (``jobs/promote.py``, after the candidate
passed the evaluation gate, :mod:`catalog2vec.evaluation.gate`) points ``models/LATEST`` at it
(:func:`publish_latest`). ``models/LATEST`` therefore names the *champion*.

Aliases: a name that is no published version may be an MLflow registry alias (``champion``,
``models:/catalog2vec@champion``), resolved to the version tagged on the registered model version
(:func:`resolve_alias`, :mod:`catalog2vec.tracking`).

One rule for ``latest`` (:func:`resolve`): the version named in ``models/LATEST``; without that
file, the published version trained most recently (:func:`trained_at`: the card's ``created_at``, else
its modification time; ties: the name). Every name
(``latest`` included) is validated: it must be a published version.

>>> from catalog2vec import models
>>> models.resolve("lakehouse", "latest")          # doctest: +SKIP
'resnet18-bce-1a2b3c4d-5e6f7a8b'
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from catalog2vec import layout, names, storage, tracking
from catalog2vec.errors import InvalidInput, MissingInput

if TYPE_CHECKING:
    from catalog2vec.tracking import Registry

CARD_FILE = "model_card.json"
LATEST_FILE = layout.LATEST_FILE
# names under models/ that are not vision model versions
RESERVED = layout.MODELS_RESERVED


class ModelNotFoundError(MissingInput):
    """No published model matches the requested version (or ``latest`` names nothing)."""


# the keys a card must hold to rebuild its network (cards of every format so far hold them)
CARD_REQUIRED = ("arch", "loss", "embedding_dim", "num_words", "image_size", "vocab_version")


@dataclass(frozen=True)
class ModelCard:
    """A vision model card (``model_card.json``) as typed fields, read once by one rule.

    The JSON on disk is unchanged: :meth:`from_dict` reads the typed fields and keeps the whole
    mapping in ``data``, so :meth:`to_dict` gives back every key as written — unknown keys (a newer
    writer's, e.g. ``attribute_heads``) included. Optional keys take the defaults every reader used:
    ``head`` ``linear``, ``projected`` false, ``dropout`` 0.

    >>> card = ModelCard.from_dict({"arch": "resnet18", "loss": "bce", "embedding_dim": 64,
    ...                             "num_words": 10, "image_size": 64, "vocab_version": "v1", "new_key": 1})
    >>> (card.arch, card.embed_dim, card.dropout, card.to_dict()["new_key"])
    ('resnet18', 0, 0.0, 1)
    """

    arch: str
    loss: str
    embedding_dim: int
    num_words: int
    image_size: int
    vocab_version: str
    head: str = "linear"
    projected: bool = False
    dropout: float = 0.0
    model_version: str = ""
    data: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, card: Mapping[str, Any], where: str = "model card") -> ModelCard:
        """Typed view of a card mapping; :class:`InvalidInput` naming ``where`` when a required key
        is missing or a value has the wrong type."""
        missing = [k for k in CARD_REQUIRED if k not in card]
        if missing:
            raise InvalidInput(f"{where} lacks {missing[0]!r}")
        try:
            return cls(arch=str(card["arch"]), loss=str(card["loss"]), embedding_dim=int(card["embedding_dim"]),
                       num_words=int(card["num_words"]), image_size=int(card["image_size"]),
                       vocab_version=str(card["vocab_version"]), head=str(card.get("head") or "linear"),
                       projected=bool(card.get("projected", False)), dropout=float(card.get("dropout") or 0.0),
                       model_version=str(card.get("model_version") or ""), data=dict(card))
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{where}: {exc}") from exc

    @property
    def embed_dim(self) -> int:
        """The projection size the network is built with (0: no projection, the pooled feature)."""
        return self.embedding_dim if self.projected else 0

    def to_dict(self) -> dict[str, Any]:
        """The card as written (every key, unknown ones included)."""
        return dict(self.data)


def models_root(root: str | os.PathLike[str]) -> str:
    return layout.models_dir(root)


def model_dir(root: str | os.PathLike[str], model_version: str) -> str:
    """``<lakehouse>/models/<model_version>`` (:func:`catalog2vec.layout.model_dir`)."""
    return layout.model_dir(root, model_version)


def card_path(root: str | os.PathLike[str], model_version: str) -> str:
    return storage.join(model_dir(root, model_version), CARD_FILE)


def derive_version(explicit: str | None, arch: str, loss: str, vocab_version: str, config_digest: str) -> str:
    """The name a training run publishes its candidate under: ``explicit`` when given (validated),
    else ``<arch>-<loss>-<vocab_version[:8]>-<config_digest[:8]>`` (same config, same name).

    >>> derive_version("", "resnet18", "bce", "1a2b3c4d9", "5e6f7a8b0")
    'resnet18-bce-1a2b3c4d-5e6f7a8b'
    """
    if explicit:
        return names.validate_name(explicit, "model_version")
    return f"{arch}-{loss}-{vocab_version[:8]}-{config_digest[:8]}"


def list_versions(root: str | os.PathLike[str]) -> list[str]:
    """Published versions (those with a model card), sorted by name."""
    directory = models_root(root)
    return [
        name for name in storage.listdir(directory)
        if name not in RESERVED and not name.startswith((".", "_")) and storage.exists(storage.join(directory, name, CARD_FILE))
    ]


def read_card(root: str | os.PathLike[str], model_version: str) -> dict[str, Any]:
    path = card_path(root, model_version)
    try:
        card = storage.read_json(path)
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"model {model_version!r} has no card at {path}") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(card, dict):
        raise InvalidInput(f"{path}: a model card must be a JSON object")
    return card


def read_model_card(root: str | os.PathLike[str], model_version: str) -> ModelCard:
    """:func:`read_card` as a typed :class:`ModelCard` (:class:`InvalidInput` when it cannot rebuild a model)."""
    return ModelCard.from_dict(read_card(root, model_version), card_path(root, model_version))


def read_latest(root: str | os.PathLike[str]) -> str:
    """The name in ``models/LATEST`` (``""`` when the file does not exist)."""
    path = layout.latest_file(root)
    try:
        return storage.read_text(path).strip()
    except FileNotFoundError:
        return ""


def trained_at(root: str | os.PathLike[str], model_version: str) -> datetime:
    """When a published version was trained: its card's ``created_at`` (ISO 8601; naive = UTC),
    else the card object's modification time."""
    try:
        created = read_card(root, model_version).get("created_at")
        if isinstance(created, str) and created:
            when = datetime.fromisoformat(created.replace("Z", "+00:00"))
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    except ValueError:
        pass
    return datetime.fromtimestamp(storage.modified(card_path(root, model_version)), tz=UTC)


def newest_trained_at(root: str | os.PathLike[str]) -> datetime | None:
    """:func:`trained_at` of the most recently trained published version (``None``: no model)."""
    versions = list_versions(root)
    return max((trained_at(root, v) for v in versions), default=None)


def newest_version(root: str | os.PathLike[str]) -> str:
    """The most recently trained published version (:func:`trained_at`, ties: the name) — the
    candidate a training run just published. Raises :class:`ModelNotFoundError` without any."""
    versions = list_versions(root)
    if not versions:
        raise ModelNotFoundError(f"no trained model under {models_root(root)} (run jobs/train.py first)")
    return max(versions, key=lambda v: (trained_at(root, v), v))


def resolve(root: str | os.PathLike[str], requested: str | None = "latest", registry: Registry | None = None) -> str:
    """``latest`` / ``""`` / ``None`` → the version in ``models/LATEST`` (else the newest card);
    an MLflow alias (:func:`resolve_alias`) → the version registered under it; any other name is
    returned after checking it is published. Raises :class:`ModelNotFoundError`."""
    name = (requested or "latest").strip()
    versions = list_versions(root)
    directory = models_root(root)
    if name != "latest" and name not in versions:
        aliased = resolve_alias(name, registry)
        if aliased is not None:
            if aliased not in versions:
                raise ModelNotFoundError(
                    f"MLflow alias {name!r} names catalog2vec model {aliased!r}, which is not published under {directory}"
                )
            return aliased
    if name == "latest":
        name = read_latest(root)
        if not name:
            name = newest_version(root)
        elif name not in versions:
            raise ModelNotFoundError(
                f"{layout.latest_file(root)} names {name!r}, which has no model card; available: {versions or 'none'}"
            )
    if name not in versions:
        raise ModelNotFoundError(
            f"unknown model_version {name!r}: no {storage.join(directory, name, CARD_FILE)}; available: {versions or 'none'}"
        )
    return name


def resolve_alias(name: str, registry: Registry | None = None) -> str | None:
    """The catalog2vec version behind an MLflow registry alias: ``models:/<model>@<alias>``, or a bare
    alias (``champion``) of ``registry.model_name`` when a registry is configured (``registry``: a
    :class:`catalog2vec.tracking.Registry`; default ``$MLFLOW_TRACKING_URI``). ``None``: not an alias."""
    reg = registry if registry is not None else tracking.default_registry()
    if tracking.parse_model_uri(name) is None and not reg.configured:
        return None  # no registry named: a bare name is only a version name (no mlflow import)
    return tracking.resolve_alias(name, reg)


def torch_bytes(obj: Any) -> bytes:
    """``torch.save`` into memory (the bytes are then written through the storage layer)."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def save_torch(obj: Any, path: str | os.PathLike[str]) -> str:
    """``torch.save`` as one atomic write (temp file + rename locally, one PUT on object stores)."""
    return storage.write_bytes(path, torch_bytes(obj))


def load_torch(path: str | os.PathLike[str], map_location: Any = "cpu", weights_only: bool = True) -> Any:
    """``torch.load`` of a local path or URI (read through the storage layer)."""
    import torch

    return torch.load(io.BytesIO(storage.read_bytes(path)), map_location=map_location, weights_only=weights_only)


def publish(directory: str | os.PathLike[str], card: dict[str, Any], payload: dict[str, bytes]) -> str:
    """Publish a model directory (``model_dir(...)``): every payload file (name → bytes) first,
    the card last (the marker). Returns the card's path."""
    return storage.publish(
        storage.join(directory, CARD_FILE), card, {storage.join(directory, name): data for name, data in payload.items()}
    )


def ctr_model_dir(root: str | os.PathLike[str], ctr_version: str) -> str:
    """``<root>/models/ctr/<ctr_version>`` (:func:`catalog2vec.layout.ctr_model_dir`): the CTR
    models live under ``models/`` but are no vision version (:data:`RESERVED`)."""
    return layout.ctr_model_dir(root, ctr_version)


def list_ctr_versions(root: str | os.PathLike[str]) -> list[str]:
    """Published CTR model versions (those with a card under ``models/ctr/``), sorted by name."""
    directory = layout.ctr_models_dir(root)
    return sorted(
        name for name in storage.listdir(directory)
        if names.is_name(name) and storage.exists(storage.join(directory, name, CARD_FILE))
    )


def publish_ctr(root: str | os.PathLike[str], ctr_version: str, card: dict[str, Any], payload: dict[str, bytes]) -> str:
    """Publish a CTR model's payload files (name → bytes), then its card (the marker), under
    :func:`ctr_model_dir` (the card keeps its key order). Returns the card's path."""
    directory = ctr_model_dir(root, ctr_version)
    return storage.publish(storage.join(directory, CARD_FILE), json.dumps(card, indent=2, default=str),
                           {storage.join(directory, name): data for name, data in payload.items()})


def read_ctr_card(root: str | os.PathLike[str], ctr_version: str) -> dict[str, Any]:
    """The card of a published CTR model (:class:`ModelNotFoundError` when it has none)."""
    path = storage.join(ctr_model_dir(root, ctr_version), CARD_FILE)
    try:
        card = storage.read_json(path)
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"CTR model {ctr_version!r} has no card at {path}") from exc
    if not isinstance(card, dict):
        raise InvalidInput(f"{path}: a model card must be a JSON object")
    return card


def publish_latest(root: str | os.PathLike[str], model_version: str) -> str:
    """Point ``models/LATEST`` at a published version (one atomic object write). Called only by
    the promotion step (:func:`catalog2vec.evaluation.gate.promote`)."""
    if model_version not in list_versions(root):
        raise ModelNotFoundError(f"cannot publish {model_version!r} as LATEST: it has no model card")
    return storage.publish(layout.latest_file(root), model_version + "\n")


__all__ = [
    "CARD_FILE",
    "LATEST_FILE",
    "ModelCard",
    "ModelNotFoundError",
    "card_path",
    "ctr_model_dir",
    "derive_version",
    "list_ctr_versions",
    "list_versions",
    "load_torch",
    "model_dir",
    "models_root",
    "newest_trained_at",
    "newest_version",
    "publish",
    "publish_ctr",
    "publish_latest",
    "read_card",
    "read_ctr_card",
    "read_latest",
    "read_model_card",
    "resolve",
    "resolve_alias",
    "save_torch",
    "torch_bytes",
    "trained_at",
]
