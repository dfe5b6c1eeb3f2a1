"""Pure batch inference and model resolution (no Spark)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from catalog2vec import models
from catalog2vec.embed.core import InferenceModel, Preprocessor, select_device
from catalog2vec.embed.job import EmbedError, open_model
from tests.unit.embed.helpers import EXAMPLES, IMAGE_SIZE, sample_ids, save_tiny_model


@pytest.fixture(scope="module")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lh")
    save_tiny_model(root, "m-a")
    return root


def _jpegs(n: int) -> list[bytes]:
    return [(EXAMPLES / "images" / f"{i}.jpg").read_bytes() for i in sample_ids()[:n]]


def test_preprocess_shapes_and_bad_bytes() -> None:
    pre = Preprocessor(IMAGE_SIZE)
    x, ok = pre.batch([*_jpegs(2), b"not a jpeg", b"", None])
    assert tuple(x.shape) == (5, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert ok.tolist() == [1, 1, 0, 0, 0]
    assert torch.count_nonzero(x[2:]) == 0
    # ImageNet-normalised pixels: roughly zero-centred, not in [0, 1]
    assert x[:2].min() < 0 < x[:2].max()


def test_predict_outputs_are_consistent(model_root: Path) -> None:
    m = InferenceModel.from_dir(str(model_root / "models" / "m-a"), top_n=7, device="cpu", full_probabilities=True)
    out = m.predict([*_jpegs(9), b"garbage"])
    assert len(out) == 10 and out.ok.tolist() == [1] * 9 + [0]
    assert out.embedding.shape == (10, 32) and out.embedding.dtype == np.float32
    np.testing.assert_allclose(out.norm, np.linalg.norm(out.embedding, axis=1), rtol=1e-5)
    assert out.probabilities is not None and out.probabilities.shape == (10, len(m.tokens))
    np.testing.assert_allclose(out.probabilities.sum(axis=1), 1.0, rtol=1e-4)  # softmax model
    # top-N = the N largest probabilities, in decreasing order
    expected = np.argsort(-out.probabilities, axis=1, kind="stable")[:, :7]
    np.testing.assert_allclose(np.take_along_axis(out.probabilities, expected, 1), out.tag_probability, rtol=1e-6)
    assert (np.diff(out.tag_probability, axis=1) <= 0).all()
    # batch composition does not change an image's result
    single = m.predict(_jpegs(1))
    np.testing.assert_allclose(single.embedding[0], out.embedding[0], rtol=1e-4, atol=1e-5)
    # different images, different embeddings
    assert np.abs(out.embedding[0] - out.embedding[1]).max() > 1e-3


def test_empty_batch(model_root: Path) -> None:
    m = InferenceModel.from_dir(str(model_root / "models" / "m-a"), top_n=3, device="cpu")
    out = m.predict([])
    assert len(out) == 0 and out.tag_index.shape == (0, 3)


def test_select_device() -> None:
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match=r"embed\.device"):
        select_device("tpu")


def test_resolve_model_version(tmp_path: Path) -> None:  # the embed job resolves through the model owner
    resolve_model_version = models.resolve
    with pytest.raises(models.ModelNotFoundError, match="no trained model"):
        resolve_model_version(tmp_path, "latest")
    save_tiny_model(tmp_path, "m-old")
    time.sleep(0.01)
    save_tiny_model(tmp_path, "m-new")
    old_card = tmp_path / "models" / "m-old" / "model_card.json"
    os.utime(old_card, (time.time() - 100, time.time() - 100))
    assert resolve_model_version(tmp_path, "latest") == "m-new"
    (tmp_path / "models" / "LATEST").write_text("m-old\n")
    assert resolve_model_version(tmp_path, "latest") == "m-old"
    assert resolve_model_version(tmp_path, "m-new") == "m-new"
    with pytest.raises(models.ModelNotFoundError, match=r"unknown model_version 'm-x'.*available: \['m-new', 'm-old'\]"):
        resolve_model_version(tmp_path, "m-x")


def test_open_model_rejects_inconsistent_vocab(tmp_path: Path) -> None:
    path = save_tiny_model(tmp_path, "m-bad")
    tokens = pq.read_table(path / "vocab.parquet").column("token").to_pylist()
    pq.write_table(pa.table({"token": [*tokens, "extra"], "index": pa.array(range(len(tokens) + 1), pa.int32())}),
                   path / "vocab.parquet")
    with pytest.raises(EmbedError, match="cannot be used"):
        open_model(tmp_path, "m-bad")
    (path / "model.pt").unlink()
    with pytest.raises(EmbedError, match=r"missing model\.pt"):
        open_model(tmp_path, "m-bad")


def test_fixed_batch_makes_cpu_embeddings_independent_of_the_batching() -> None:
    """CPU kernels reduce in a batch-size-dependent order: the same images split 7/9/8 and as one
    batch of 24 differ in the last bits; with ``fixed_batch`` every forward runs on exactly that many
    rows (short batches padded), so any split gives the same embedding bits (what makes a cluster
    run equal a local run)."""
    from catalog2vec.embed.core import InferenceModel
    from catalog2vec.vision.model import build_model

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        net = build_model("resnet18", 50, embed_dim=16, loss="bce", head="cosine").eval()
        x = torch.randn(24, 3, 32, 32)

        def run(model: InferenceModel, sizes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            zs, ps, at = [], [], 0
            for n in sizes:
                z, p = model.forward(x[at : at + n])
                zs.append(z)
                ps.append(p)
                at += n
            return torch.cat(zs), torch.cat(ps)

        fixed = InferenceModel(net, [str(i) for i in range(50)], 32, torch.device("cpu"), 5, fixed_batch=8)
        whole = run(fixed, [24])
        for sizes in ([7, 9, 8], [1, 23], [5, 5, 5, 5, 4], [24]):
            z, p = run(fixed, sizes)
            assert torch.equal(z, whole[0]), sizes
            # the word GEMM (B x D) @ (D x K) is not row-position invariant for every B here
            # (8 and 12 are not): tag probabilities agree to float precision, not to the bit
            np.testing.assert_allclose(p.numpy(), whole[1].numpy(), rtol=0, atol=1e-6)
        plain = InferenceModel(net, [str(i) for i in range(50)], 32, torch.device("cpu"), 5)
        z1, _ = run(plain, [7, 9, 8])
        np.testing.assert_allclose(z1.numpy(), whole[0].numpy(), atol=1e-5)  # close, not bit-identical
    finally:
        torch.set_num_threads(threads)
