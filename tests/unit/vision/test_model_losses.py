"""Model contract (build/save/load, init weights), losses, negative sampler and ranking metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from catalog2vec.vision import model_dir
from catalog2vec.vision.losses import NegativeSampler, bce_loss, multi_hot, ranking_sums, softmax_loss
from catalog2vec.vision.model import build_model, load_model_dir, save_model_dir
from catalog2vec.vision.transforms import decode_image, eval_transform, train_transform

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "data" / "images"


def real_batch(n: int = 8, size: int = 32) -> torch.Tensor:
    tf = eval_transform(size)
    return torch.stack([tf(decode_image(p.read_bytes())) for p in sorted(EXAMPLES.glob("*.jpg"))[:n]])


def test_shapes_and_probabilities() -> None:
    m = build_model("resnet18", 11, embed_dim=16).eval()
    z = m(torch.randn(3, 3, 32, 32))
    assert z.shape == (3, 16) and m.embedding_dim == 16 and m.num_words == 11
    assert m.word_logits(z).shape == (3, 11)
    assert torch.allclose(m.tag_probabilities(z).sum(1), torch.ones(3), atol=1e-5)
    mb = build_model("resnet18", 11, loss="bce").eval()
    assert mb.embedding_dim == 512
    p = mb.tag_probabilities(mb(torch.randn(2, 3, 32, 32)))
    assert ((p > 0) & (p < 1)).all() and not torch.allclose(p.sum(1), torch.ones(2))
    with pytest.raises(ValueError, match="unknown arch"):
        build_model("vgg", 3)


def test_transforms() -> None:
    img = decode_image((sorted(EXAMPLES.glob("*.jpg"))[0]).read_bytes())
    assert eval_transform(64)(img).shape == (3, 64, 64)
    assert train_transform(48)(img).shape == (3, 48, 48)
    with pytest.raises(ValueError, match="cannot decode"):
        decode_image(b"not an image")


def test_save_load_roundtrip(tmp_path: Path) -> None:
    m = build_model("resnet18", 5, embed_dim=8).eval()
    out = Path(model_dir(tmp_path, "v1"))
    assert out == tmp_path / "models" / "v1"
    save_model_dir(out, m, list("abcde"), "vocab1", {"image_size": 40}, {"metrics": {"x": 1}})
    loaded = load_model_dir(out)
    x = torch.randn(2, 3, 40, 40)
    assert torch.equal(loaded.model(x), m(x))
    assert loaded.tokens == list("abcde") and loaded.vocab_version == "vocab1" and loaded.image_size == 40
    assert loaded.card["metrics"] == {"x": 1} and not loaded.model.training
    (out / "model.pt").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.pt"):
        load_model_dir(out)
    with pytest.raises(FileNotFoundError):
        load_model_dir(tmp_path / "nope")


def test_init_weights_torchvision_state_dict(tmp_path: Path) -> None:
    ref = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(ref.state_dict(), path)
    m = build_model("resnet18", 7, init_weights=str(path))
    assert torch.equal(m.backbone.conv1.weight, ref.conv1.weight)
    assert torch.equal(m.backbone.layer4[1].bn2.running_var, ref.layer4[1].bn2.running_var)
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "r34.pth")
    with pytest.raises(ValueError):
        build_model("resnet18", 7, init_weights=str(tmp_path / "r34.pth"))
    with pytest.raises(FileNotFoundError):
        build_model("resnet18", 7, init_weights=str(tmp_path / "missing.pth"))


@pytest.mark.parametrize("kind", ["uniform", "unigram"])
def test_negative_sampler_never_samples_positive(kind: str) -> None:
    counts = np.array([1000, 500, 100, 50, 10, 5, 1, 1, 1, 1])
    s = NegativeSampler(counts, kind)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        positives = torch.randint(0, 10, (4,), generator=g)
        neg = s.sample(5, positives, g)
        assert len(neg) == min(5, 10 - len(positives.unique()))
        assert len(set(neg.tolist())) == len(neg)  # distinct
        assert not set(neg.tolist()) & set(positives.tolist())
    # all but one word excluded -> only that word; everything excluded -> nothing
    assert s.sample(3, torch.arange(9), g).tolist() == [9]
    assert s.sample(3, torch.arange(10), g).numel() == 0


def test_unigram_sampler_follows_count_power() -> None:
    s = NegativeSampler(np.array([16.0, 1.0]), "unigram", power=0.75)
    assert float(s.weights[0] / s.weights[1]) == pytest.approx(8.0)


@pytest.mark.parametrize("loss", ["softmax", "bce"])
def test_loss_goes_down_overfitting_one_real_batch(loss: str) -> None:
    torch.manual_seed(0)
    x = real_batch(8, 32)
    labels = [[0, 3], [1], [2, 4], [0], [5, 1], [3], [4, 6], [7]]
    num_words = 12
    m = build_model("resnet18", num_words, loss=loss)
    targets = multi_hot(labels, num_words)
    positive = torch.tensor([labs[0] for labs in labels])
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    sampler = NegativeSampler(np.ones(num_words), "uniform")
    g = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(12):
        z = m(x)
        if loss == "softmax":
            neg = sampler.sample(4, positive, g)
            value = softmax_loss(m, z, positive, targets, neg)
        else:
            value = bce_loss(m, z, targets)
        opt.zero_grad()
        value.backward()
        opt.step()
        losses.append(float(value))
    assert losses[-1] < 0.5 * losses[0], losses


def test_softmax_loss_masks_other_labels() -> None:
    m = build_model("resnet18", 4).eval()
    z = torch.randn(1, 512)
    targets = multi_hot([[0, 2]], 4)
    # negative 2 is another label of the item: masked, so the loss equals the loss with only negative 3
    a = softmax_loss(m, z, torch.tensor([0]), targets, torch.tensor([2, 3]))
    b = softmax_loss(m, z, torch.tensor([0]), targets, torch.tensor([3]))
    assert torch.allclose(a, b)


def test_ranking_sums() -> None:
    scores = np.array([[0.9, 0.8, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4]])
    s = ranking_sums(scores, [[0, 2], [0]], k=2)
    assert s["n"] == 2
    assert s["precision@2"] == pytest.approx(0.5 + 0.0)
    assert s["recall@2"] == pytest.approx(0.5 + 0.0)
    assert s["map"] == pytest.approx((1 / 1 + 2 / 3) / 2 + 1 / 4)
