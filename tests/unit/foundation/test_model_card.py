"""The typed model card (issue 36): one reader of ``model_card.json``, the JSON on disk unchanged, and
one rule that turns a card into a network (:func:`catalog2vec.vision.model.build_model_from_card`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog2vec import models
from catalog2vec.errors import InvalidInput

OLD_CARD = {  # a card written before head/projected/dropout existed
    "arch": "resnet18", "loss": "softmax", "embedding_dim": 512, "num_words": 7, "image_size": 64,
    "vocab_version": "v1", "model_version": "m1", "config": {"train": {"epochs": 1}}, "metrics": {"top1": 0.5},
}


def test_a_card_reads_typed_and_writes_back_every_key() -> None:
    card = models.ModelCard.from_dict({**OLD_CARD, "attribute_heads": {"fields": []}, "future_key": [1, 2]})
    assert (card.arch, card.loss, card.num_words, card.image_size, card.vocab_version) == ("resnet18", "softmax", 7,
                                                                                           64, "v1")
    assert (card.head, card.projected, card.dropout, card.embed_dim, card.model_version) == ("linear", False, 0.0,
                                                                                             0, "m1")
    assert card.to_dict() == {**OLD_CARD, "attribute_heads": {"fields": []}, "future_key": [1, 2]}
    projected = models.ModelCard.from_dict({**OLD_CARD, "projected": True, "dropout": 0.3, "head": "cosine"})
    assert (projected.embed_dim, projected.dropout, projected.head) == (512, 0.3, "cosine")


@pytest.mark.parametrize("key", models.CARD_REQUIRED)
def test_a_card_without_a_required_key_is_one_clear_error(key: str) -> None:
    with pytest.raises(InvalidInput, match=f"m1/model_card.json lacks '{key}'"):
        models.ModelCard.from_dict({k: v for k, v in OLD_CARD.items() if k != key}, "m1/model_card.json")
    with pytest.raises(InvalidInput, match="num_words"):
        models.ModelCard.from_dict({**OLD_CARD, "num_words": "seven"}, "num_words")


def test_read_model_card_reads_the_published_json_unchanged(tmp_path: Path) -> None:
    directory = models.model_dir(str(tmp_path), "m1")
    models.publish(directory, {**OLD_CARD, "extra": {"a": 1}}, {"model.pt": b"x"})
    card = models.read_model_card(str(tmp_path), "m1")
    on_disk = json.loads(Path(models.card_path(str(tmp_path), "m1")).read_text())
    assert card.to_dict() == on_disk == {**OLD_CARD, "extra": {"a": 1}}
    assert card.num_words == 7


def test_the_network_is_built_from_the_card_by_one_rule() -> None:
    torch = pytest.importorskip("torch")
    from catalog2vec.vision.model import build_model_from_card

    card = models.ModelCard.from_dict({**OLD_CARD, "projected": True, "embedding_dim": 16, "dropout": 0.25,
                                       "loss": "bce", "head": "cosine"})
    torch.manual_seed(0)
    net = build_model_from_card(card)
    assert (net.arch, net.num_words, net.embedding_dim, net.loss, net.head) == ("resnet18", 7, 16, "bce", "cosine")
    assert net.dropout.p == 0.25
