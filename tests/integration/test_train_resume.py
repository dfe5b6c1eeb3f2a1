"""Training end to end without Spark (delta-rs reads): resume exactness, model card contents and
'better than chance on unseen images' on the real sample (labels = articleType/baseColour words)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from catalog2vec.config import load_config
from catalog2vec.vision.train import list_checkpoints, train
from tests.unit.vision.helpers import VOCAB_VERSION, write_sample_tables

TINY = ["train.arch=\"resnet18\"", "train.image_size=32", "train.batch_size=8", "train.epochs=2",
        "train.workers=0", "train.deterministic=true", "train.num_negatives=10", "train.checkpoint_every=2",
        "train.lr=0.01", "train.seed=7"]


def cfg(root: Path, *extra: str):  # type: ignore[no-untyped-def]
    return load_config(None, [*TINY, *extra], lakehouse=str(root), run_id="test")


def test_resume_gives_exactly_the_uninterrupted_weights(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    root = tmp_path / "lh"
    info = write_sample_tables(root, limit=48, short_side=40)
    assert info["splits"]["train"] >= 32
    full = train(cfg(root, 'train.model_version="full"'))
    assert full is not None and full.complete and full.resumed_from_step == 0
    spe = json.loads(Path(full.model_dir, "model_card.json").read_text())["steps_per_epoch"]
    assert full.steps == 2 * spe

    # "killed" after step 3 (mid first epoch), then resumed by simply running again
    part = train(cfg(root, 'train.model_version="resumed"', "train.max_steps=3"))
    assert part is not None and part.steps == 3 and not part.complete
    ckpts = list_checkpoints(Path(part.model_dir) / "checkpoints")
    assert ckpts[-1][0] == 3
    resumed = train(cfg(root, 'train.model_version="resumed"'))
    assert resumed is not None and resumed.resumed_from_step == 3 and resumed.complete

    a = torch.load(Path(full.model_dir) / "model.pt", weights_only=True)
    b = torch.load(Path(resumed.model_dir) / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
    for e, f in zip(full.metrics["per_epoch"], resumed.metrics["per_epoch"], strict=True):
        assert (e["val_map"], e["val_recall@5"], e["step"]) == (f["val_map"], f["val_recall@5"], f["step"])

    card = json.loads(Path(resumed.model_dir, "model_card.json").read_text())
    assert card["vocab_version"] == VOCAB_VERSION and card["num_words"] == len(info["tokens"])
    assert card["resumed_from_step"] == 3 and card["complete"] is True
    assert [e["epoch"] for e in card["metrics"]["per_epoch"]] == [1, 2]
    assert {"val_precision@5", "val_recall@5", "val_map"} <= card["metrics"]["per_epoch"][0].keys()
    assert card["images_per_s"] > 0 and card["wall_time_s"] > 0 and card["code_version"]
    assert card["data"]["train_items"] == info["splits"]["train"]
    assert card["config"]["image_size"] == 32

    # a completed run re-run: resumes at the end, trains nothing, same weights (idempotent)
    again = train(cfg(root, 'train.model_version="resumed"'))
    assert again is not None and again.steps == resumed.steps
    c = torch.load(Path(again.model_dir) / "model.pt", weights_only=True)
    assert all(torch.equal(b[k], c[k]) for k in b)


def test_derived_model_version_and_errors(tmp_path: Path) -> None:
    root = tmp_path / "lh"
    with pytest.raises(FileNotFoundError, match="silver/vocab"):
        train(cfg(root))
    write_sample_tables(root, limit=12, short_side=40)
    with pytest.raises(ValueError, match="too few"):
        train(cfg(root, "train.batch_size=64"))
    with pytest.raises(ValueError, match="not found"):
        train(cfg(root, 'train.vocab_version="nope"'))


@pytest.mark.slow
def test_better_than_chance_on_unseen_images(tmp_path: Path) -> None:
    """Short CPU run on the 307 training images; recall@5 of the item's colour/category words on the
    test split (never trained on) must beat predicting the training word frequencies by a margin."""
    root = tmp_path / "lh"
    write_sample_tables(root, short_side=40)
    res = train(load_config(None, [
        "train.arch=\"resnet18\"", "train.loss=\"bce\"", "train.optimizer=\"adam\"", "train.lr=0.001",
        "train.image_size=32", "train.batch_size=32", "train.epochs=5", "train.workers=0",
        "train.checkpoint_every=0", "train.weight_decay=0.0",
    ], lakehouse=str(root), run_id="test"))
    assert res is not None
    card = json.loads(Path(res.model_dir, "model_card.json").read_text())
    test, base = card["metrics"]["test"], card["baseline_frequency"]["test"]
    assert test["n"] >= 30
    assert test["recall@5"] >= base["recall@5"] + 0.06, (test, base)
    assert test["map"] >= base["map"] + 0.06, (test, base)
