"""The training recipe's pieces: cosine head (unit embedding, learned temperature), label-prior
bias, bce positive weights, warm-up + cosine schedule, product augmentation, collapse diagnostics,
and warm starts from a torchvision-format state dict read through the storage layer (memory://)."""

from __future__ import annotations

import argparse
import dataclasses
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from catalog2vec import storage
from catalog2vec.config import TrainSection
from catalog2vec.vectors import collapse_diagnostics
from catalog2vec.vision.losses import bce_loss, bce_pos_weight, multi_hot, softmax_loss
from catalog2vec.vision.model import build_model, load_model_dir, save_model_dir
from catalog2vec.vision.train import make_optimizer, make_scheduler, param_groups
from catalog2vec.vision.transforms import decode_image, train_transform

IMAGES = Path(__file__).resolve().parents[3] / "examples" / "data" / "images"


def test_cosine_head_unit_embedding_and_bounded_logits() -> None:
    m = build_model("resnet18", 9, embed_dim=16, loss="bce", head="cosine").eval()
    z = m(torch.randn(4, 3, 32, 32))
    assert torch.allclose(z.norm(dim=1), torch.ones(4), atol=1e-5)
    logits = m.word_logits(z)
    s = float(m.scale())
    assert s == pytest.approx(10.0) and m.logit_scale.requires_grad
    assert (logits.abs() <= s + 1e-4).all()  # bias 0: |s cos| <= s
    # sampled logits agree with the full row
    ids = torch.tensor([2, 5])
    assert torch.allclose(m.sampled_logits(z, ids), logits[:, ids], atol=1e-5)
    with pytest.raises(ValueError, match="unknown head"):
        build_model("resnet18", 3, head="arc")
    assert not build_model("resnet18", 3).logit_scale.requires_grad  # linear: the scalar is inert


def test_cosine_model_roundtrip_keeps_head_and_temperature(tmp_path: Path) -> None:
    m = build_model("resnet18", 5, embed_dim=8, loss="softmax", head="cosine").eval()
    with torch.no_grad():
        m.logit_scale.fill_(math.log(23.0))
    save_model_dir(tmp_path / "v", m, list("abcde"), "vocab1", {"image_size": 32})
    loaded = load_model_dir(tmp_path / "v")
    x = torch.randn(2, 3, 32, 32)
    assert loaded.card["head"] == "cosine" and loaded.model.head == "cosine"
    assert float(loaded.model.scale()) == pytest.approx(23.0)
    assert torch.allclose(loaded.model.word_logits(loaded.model(x)), m.word_logits(m(x)), atol=1e-5)


def test_init_bias_prior_bce_and_softmax() -> None:
    prior = torch.tensor([0.5, 0.1, 0.01])
    m = build_model("resnet18", 3, loss="bce", head="cosine")
    m.init_bias(prior)
    assert torch.allclose(torch.sigmoid(m.words.bias), prior, atol=1e-6)
    s = build_model("resnet18", 3, loss="softmax")
    s.init_bias(prior)
    assert torch.allclose(torch.softmax(s.words.bias, 0), prior / prior.sum(), atol=1e-6)


def test_bce_pos_weight() -> None:
    w = bce_pos_weight(np.array([50, 10, 1, 0]), 100, power=0.5)
    assert w.tolist() == pytest.approx([1.0, 3.0, math.sqrt(99), math.sqrt(99)])
    assert bce_pos_weight(np.array([90, 1]), 100, power=1.0).tolist() == pytest.approx([1.0, 99.0])
    m = build_model("resnet18", 4, loss="bce", head="cosine")
    z = m(torch.randn(2, 3, 32, 32))
    t = multi_hot([[0], [1, 2]], 4)
    assert float(bce_loss(m, z, t, torch.ones(4))) == pytest.approx(float(bce_loss(m, z, t)), rel=1e-6)
    assert float(bce_loss(m, z, t, torch.full((4,), 5.0))) > float(bce_loss(m, z, t))
    # softmax through the cosine head still trains (finite, differentiable)
    loss = softmax_loss(m, z, torch.tensor([0, 1]), t, torch.tensor([3]))
    loss.backward()
    assert math.isfinite(float(loss)) and m.logit_scale.grad is not None


def test_warmup_cosine_schedule_and_no_decay_groups() -> None:
    t = dataclasses.replace(TrainSection(), lr=0.1, epochs=10, lr_schedule="cosine", warmup_epochs=1.0,
                            optimizer="adamw", weight_decay=0.05, no_decay_1d=True)
    m = build_model("resnet18", 3, head="cosine")
    groups = param_groups(t, m)
    assert groups[1]["weight_decay"] == 0.0 and all(p.dim() <= 1 for p in groups[1]["params"])
    assert any(p is m.logit_scale for p in groups[1]["params"])
    opt = make_optimizer(t, groups)
    sched = make_scheduler(t, opt, total_steps=100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.001) and lrs[10] == pytest.approx(0.1)  # warm-up over 10 steps
    assert lrs[10] > lrs[55] > lrs[99] and lrs[99] < 0.001  # cosine to ~0
    assert opt.param_groups[1]["weight_decay"] == 0.0 and opt.param_groups[0]["weight_decay"] == 0.05


def test_product_augmentation_keeps_the_product() -> None:
    img = decode_image(sorted(IMAGES.glob("*.jpg"))[0].read_bytes())
    tf = train_transform(64, augment="product")
    torch.manual_seed(0)
    xs = torch.stack([tf(img) for _ in range(8)])
    assert xs.shape == (8, 3, 64, 64)
    with pytest.raises(ValueError, match="unknown augment"):
        train_transform(64, augment="mixup")


def test_collapse_diagnostics() -> None:
    rng = np.random.default_rng(0)
    spread = collapse_diagnostics(rng.normal(size=(200, 32)))
    assert abs(spread["mean_pairwise_cosine"]) < 0.05 and spread["effective_rank"] > 25
    collapsed = collapse_diagnostics(np.ones((200, 32)) + 0.01 * rng.normal(size=(200, 32)))
    assert collapsed["mean_pairwise_cosine"] > 0.99 and collapsed["effective_rank"] < 3
    assert collapse_diagnostics(np.ones((1, 4))) == {}


def torchvision_bytes(state: dict[str, torch.Tensor]) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


@pytest.mark.parametrize("wrap", ["plain", "reference_checkpoint", "ddp_prefix"])
def test_warm_start_from_a_uri_in_torchvision_format(wrap: str) -> None:
    """A fabricated torchvision ResNet-18 state dict (the shape of IMAGENET1K_V1's file) staged
    on an object store (memory://), in the three layouts torchvision users have on disk."""
    torch.manual_seed(7)
    ref = torchvision.models.resnet18(weights=None)
    with torch.no_grad():
        ref.layer4[1].bn2.running_var.uniform_(0.5, 2.0)
    state = ref.state_dict()
    if wrap == "reference_checkpoint":  # torchvision references/classification/train.py
        payload: dict = {"model": state, "optimizer": {}, "epoch": 89}
    elif wrap == "ddp_prefix":
        payload = {f"module.{k}": v for k, v in state.items()}
    else:
        payload = state
    uri = f"memory://c2v-warm/{wrap}/resnet18-imagenet.pth"
    storage.write_bytes(uri, torchvision_bytes(payload))
    m = build_model("resnet18", 7, embed_dim=16, loss="bce", head="cosine", init_weights=uri)
    own = m.backbone.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items() if not k.startswith("fc."))
    assert torch.equal(m.backbone.layer4[1].bn2.running_var, ref.layer4[1].bn2.running_var)
    cold = build_model("resnet18", 7, embed_dim=16, loss="bce", head="cosine")
    assert not torch.equal(cold.backbone.conv1.weight, ref.conv1.weight)


def test_training_starts_from_torchvision_weights_on_an_object_store(tmp_path: Path) -> None:
    """``--init-weights memory://…`` through the training loop: with lr 0 the published model's
    backbone convolutions are exactly the staged torchvision weights (a cold start differs)."""
    from train import cli_overrides  # jobs/train.py (pytest puts jobs/ on the path)

    from catalog2vec.config import load_config
    from catalog2vec.vision.train import train
    from tests.unit.vision.helpers import write_sample_tables

    torch.set_num_threads(1)
    root = tmp_path / "lh"
    write_sample_tables(root, limit=24, short_side=40)
    torch.manual_seed(3)
    ref = torchvision.models.resnet18(weights=None).state_dict()
    uri = "memory://c2v-warm/train/resnet18.pth"
    storage.write_bytes(uri, torchvision_bytes(ref))

    args = argparse.Namespace(
        overrides=["train.image_size=32", "train.batch_size=8", "train.epochs=1", "train.workers=0",
                   "train.lr=0.0", "train.checkpoint_every=0", 'train.model_version="warm"'],
        max_steps=1, vocab_version=None, model_version=None, init_weights=uri)  # as --init-weights parses
    res = train(load_config(None, cli_overrides(args), lakehouse=str(root), run_id="test"))
    assert res is not None
    trained = load_model_dir(res.model_dir)
    assert trained.card["config"]["init_weights"] == uri
    own = trained.model.backbone.state_dict()
    convs = [k for k in ref if k.endswith("conv1.weight") or k.endswith("conv2.weight")]
    assert len(convs) == 17 and all(torch.equal(own[k], ref[k]) for k in convs)
