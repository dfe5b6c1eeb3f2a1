"""Attribute heads (issue 31): class lists from the training split (rare values -> ``other``,
missing values masked), the heads on the embedding, the masked loss, the card that rebuilds them,
training + exact resume with them on the real sample, and brightness/contrast-only jitter."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from catalog2vec.config import TrainSection, load_config
from catalog2vec.errors import InvalidInput
from catalog2vec.vision.attributes import IGNORE, OTHER, build_targets, class_list, encode, normalize_value
from catalog2vec.vision.batch_input import BatchInput
from catalog2vec.vision.data import sample_seed
from catalog2vec.vision.model import build_model, load_model_dir, save_model_dir
from catalog2vec.vision.train import attribute_loss, list_checkpoints, train, validate_train_config
from catalog2vec.vision.transforms import decode_image, train_transform
from tests.unit.vision.helpers import EXAMPLES, write_catalog_items, write_sample_tables


def test_classes_from_the_train_split_rare_to_other_missing_masked() -> None:
    values = {"color": {"a": "Black", "b": " black ", "c": "Blue", "d": "blue", "e": "Teal", "f": None,
                        "g": "Mauve", "h": "", "v1": "Blue", "v2": "Neon", "v3": None}}
    split_ids = {"train": ["a", "b", "c", "d", "e", "f", "g", "h"], "val": ["v1", "v2", "v3"], "test": []}
    t = build_targets(values, split_ids, ["color"], min_count=2)
    # black 2, blue 2 (ties by name), teal/mauve once -> other; None and "" are missing
    assert t.classes == {"color": ["black", "blue", OTHER]}
    assert t.targets["train"][:, 0].tolist() == [0, 0, 1, 1, 2, IGNORE, 2, IGNORE]
    assert t.targets["val"][:, 0].tolist() == [1, 2, IGNORE]  # a value never seen in training -> other
    assert t.targets["test"].shape == (0, 1)
    card = t.card({"color": 0.5}, 2)
    assert card == {"fields": ["color"], "classes": {"color": ["black", "blue", OTHER]}, "weights": {"color": 0.5},
                    "min_count": 2, "train_items_with_field": {"color": 6}}
    # no rare value: no "other" class, and an unseen value is masked
    assert class_list(["x", "x", "y", "y"], 2) == ["x", "y"]
    assert encode(["z", None, "y"], ["x", "y"]).tolist() == [IGNORE, IGNORE, 1]
    assert [normalize_value(v) for v in ("  Navy   Blue", "NaN", None, 3)] == ["navy blue", None, None, "3"]
    with pytest.raises(InvalidInput, match="needs 2"):
        build_targets({"gender": {"a": "Men"}}, {"train": ["a"]}, ["gender"], min_count=1)
    with pytest.raises(InvalidInput, match="distinct fields"):
        build_targets({}, {"train": []}, ["brand"], min_count=1)


def test_config_validation() -> None:
    validate_train_config(TrainSection(attribute_heads=["color", "category"], attribute_weights={"color": 1.0},
                                       brightness=0.2, contrast=0.2))
    for bad in (TrainSection(attribute_heads=["color", "color"]), TrainSection(attribute_heads=["brand"]),
                TrainSection(attribute_heads=["color"], attribute_weights={"gender": 1.0}),
                TrainSection(attribute_heads=["color"], attribute_weight=-1.0),
                TrainSection(brightness=1.0), TrainSection(contrast=-0.1)):
        with pytest.raises(InvalidInput):
            validate_train_config(bad)


def test_heads_read_the_embedding_and_roundtrip_through_the_card(tmp_path: Path) -> None:
    m = build_model("resnet18", 6, embed_dim=8, loss="bce", head="cosine", attributes={"color": 3, "gender": 2})
    m.eval()
    x = torch.randn(4, 3, 32, 32)
    z = m(x)
    logits = m.attribute_logits(z)
    assert {f: tuple(v.shape) for f, v in logits.items()} == {"color": (4, 3), "gender": (4, 2)}
    assert all((v.abs() <= 10.0 + 1e-4).all() for v in logits.values())  # cosine: |s cos| <= s (s = 10, b = 0)
    # the gradient of the colour loss reaches the backbone through z: the embedding carries colour
    target = torch.tensor([[0, 1], [1, IGNORE], [2, 0], [IGNORE, IGNORE]])
    loss = attribute_loss(m, m(x), target, [0.5, 1.0])
    loss.backward()
    assert m.backbone.conv1.weight.grad is not None and float(m.backbone.conv1.weight.grad.abs().sum()) > 0
    # a batch where no row has the field adds exactly 0 (no NaN from an empty mean)
    none = attribute_loss(m, m(x), torch.full((4, 2), IGNORE), [0.5, 1.0])
    assert float(none.detach()) == 0.0
    # the masked mean: equal to cross-entropy over the rows that have the field
    with torch.no_grad():
        z = m(x)
        got = float(attribute_loss(m, z, target, [1.0, 0.0]))
        want = float(torch.nn.functional.cross_entropy(m.attribute_logits(z)["color"][:3], target[:3, 0]))
    assert got == pytest.approx(want, rel=1e-5)

    spec = {"attribute_heads": {"fields": ["color", "gender"], "classes": {"color": ["black", "blue", OTHER],
                                                                           "gender": ["men", "women"]}}}
    save_model_dir(tmp_path / "v", m, list("abcdef"), "vocab1", {"image_size": 32}, spec)
    loaded = load_model_dir(tmp_path / "v")
    assert list(loaded.model.attribute_heads) == ["color", "gender"]
    with torch.no_grad():
        a, b = loaded.model.attribute_logits(loaded.model(x)), m.attribute_logits(m(x))
    assert all(torch.allclose(a[f], b[f], atol=1e-5) for f in a)
    with pytest.raises(ValueError, match="attribute_heads"):  # a card that could not rebuild the model
        save_model_dir(tmp_path / "w", m, list("abcdef"), "vocab1", {"image_size": 32})


TINY = ['train.arch="resnet18"', "train.image_size=32", "train.batch_size=8", "train.epochs=1",
        "train.workers=0", "train.deterministic=true", 'train.loss="bce"', 'train.head="cosine"',
        "train.embed_dim=16", "train.checkpoint_every=1", "train.lr=0.01", "train.seed=5",
        'train.attribute_heads=["color", "category", "gender"]', "train.attribute_weights={color=1.0}",
        "train.attribute_min_count=2", "train.brightness=0.2", "train.contrast=0.2"]


def test_training_with_heads_resumes_exactly_and_records_them(tmp_path: Path) -> None:
    """The sample's bronze fields as targets (every 7th colour missing): a run killed after step 1
    and resumed ends with the uninterrupted run's weights, heads included; the card says which
    fields, their classes and weights; validation reports each head's accuracy."""
    torch.set_num_threads(1)
    root = tmp_path / "lh"
    write_sample_tables(root, limit=48, short_side=40)
    write_catalog_items(root, limit=48)

    def cfg(*extra: str):  # type: ignore[no-untyped-def]
        return load_config(None, [*TINY, *extra], lakehouse=str(root), run_id="test")

    full = train(cfg('train.model_version="full"', "train.max_steps=2"))
    part = train(cfg('train.model_version="resumed"', "train.max_steps=1"))
    assert part is not None and list_checkpoints(str(Path(part.model_dir) / "checkpoints"))[-1][0] == 1
    resumed = train(cfg('train.model_version="resumed"', "train.max_steps=2"))
    assert full is not None and resumed is not None and resumed.resumed_from_step == 1 and resumed.steps == 2
    a = torch.load(Path(full.model_dir) / "model.pt", weights_only=True)
    b = torch.load(Path(resumed.model_dir) / "model.pt", weights_only=True)
    assert any(k.startswith("attribute_heads.color.") for k in a)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    card = json.loads(Path(full.model_dir, "model_card.json").read_text())
    spec = card["attribute_heads"]
    assert spec["fields"] == ["color", "category", "gender"]
    assert spec["weights"] == {"color": 1.0, "category": 0.5, "gender": 0.5} and spec["min_count"] == 2
    assert spec["classes"]["gender"] == ["men", "women"] and "black" in spec["classes"]["color"]
    assert spec["train_items_with_field"]["color"] < spec["train_items_with_field"]["gender"] == card["data"][
        "train_items"]
    assert card["config"]["brightness"] == 0.2
    test = card["metrics"]["test"]
    assert all(0.0 <= test[f"{f}_accuracy"] <= 1.0 for f in spec["fields"])
    loaded = load_model_dir(full.model_dir)
    assert {f: len(c) for f, c in spec["classes"].items()} == {
        f: int(h.classes.weight.shape[0]) for f, h in loaded.model.attribute_heads.items()}  # type: ignore[union-attr]


def test_brightness_contrast_jitter_keeps_hue_and_matches_the_batched_path() -> None:
    path = sorted((EXAMPLES / "images").glob("*.jpg"))[0]
    img = decode_image(path.read_bytes())
    seeds = [sample_seed(1, 0, i) for i in range(6)]

    def ref(tf, s):  # type: ignore[no-untyped-def]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s)
            return tf(img)

    plain = train_transform(64, augment="product")
    jit = train_transform(64, augment="product", brightness=0.4, contrast=0.4)
    off = train_transform(64, augment="product", brightness=0.0, contrast=0.0)
    assert all(torch.equal(ref(off, s), ref(plain, s)) for s in seeds)  # 0 = the shipped transform
    outs = [ref(jit, s) for s in seeds]
    assert all(torch.equal(o, ref(jit, s)) for o, s in zip(outs, seeds, strict=True))  # seeded: exact resume
    assert any(not torch.equal(o, ref(plain, s)) for o, s in zip(outs, seeds, strict=True))
    # same crop and flip as without jitter, and no hue change: the per-pixel chroma direction of the
    # unclipped, coloured pixels stays (brightness scales RGB, contrast blends with a grey)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    for o, s in zip(outs, seeds, strict=True):
        a, b = (ref(plain, s) * std + mean), (o * std + mean)
        ca, cb = a - a.mean(0, keepdim=True), b - b.mean(0, keepdim=True)
        ok = (ca.norm(dim=0) > 0.08) & (cb.norm(dim=0) > 0.08) & (b.amax(0) < 0.98) & (b.amin(0) > 0.02)
        cos = torch.nn.functional.cosine_similarity(ca, cb, dim=0)[ok]
        assert ok.sum() > 50 and float(cos.median()) > 0.98
    # the batched (GPU) input path draws the same factors: equal to the PIL path within a few levels
    jpegs = [path.read_bytes()] * len(seeds)
    got = BatchInput(64).train(jpegs, seeds, 0.25, "product", 0.4, 0.4).x
    diff = (got - torch.stack(outs)).abs()
    assert float(diff.mean()) < 0.02 and float(np.median(diff.numpy())) < 0.02
