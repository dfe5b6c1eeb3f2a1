"""The Beam RunInference handler decodes per batch (the batched input path) and gives the per-row
path's results (the whole pipeline against the Spark job: tests/integration/test_embed_beam.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from catalog2vec.embed.beam_handler import JpegModelHandler
from catalog2vec.embed.core import Preprocessor
from tests.unit.embed.helpers import EXAMPLES, IMAGE_SIZE, sample_ids, save_tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("lh")
    return str(save_tiny_model(root, "m-beam"))


def _inputs() -> list[tuple[str, Any]]:
    ids = sample_ids()[:11]
    rows: list[tuple[str, Any]] = [(i, (EXAMPLES / "images" / f"{i}.jpg").read_bytes()) for i in ids]
    return [*rows, ("bad", b"not an image"), ("empty", b""), ("none", None)]


def test_handler_equals_per_row_path(model_dir: str) -> None:
    """Batched decode inside the handler == the former path (decode one row at a time, stack, forward)."""
    handler = JpegModelHandler(model_dir, top_n=5, device="cpu", full_probabilities=True, max_batch_size=16)
    assert handler.batch_elements_kwargs() == {"min_batch_size": 1, "max_batch_size": 16}
    model = handler.load_model()
    inputs = _inputs()
    results = list(handler.run_inference([b for _, b in inputs], model))
    assert [r.inference["ok"] for r in results] == [1] * 11 + [0, 0, 0]
    assert results[11].inference == {"ok": 0, "embedding": [], "norm": 0.0, "tag_index": [],
                                     "tag_probability": [], "probabilities": []}
    assert handler.get_num_bytes([b for _, b in inputs]) == sum(len(b or b"") for _, b in inputs)

    pre = Preprocessor(IMAGE_SIZE)  # the per-row path the pipeline used before
    per_row = torch.stack([pre.one(b)[0] for _, b in inputs[:11]])
    ref = model.predict_tensors(per_row, np.ones(11, np.int32))
    emb = np.array([r.inference["embedding"] for r in results[:11]], np.float32)
    np.testing.assert_allclose(emb, ref.embedding, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose([r.inference["norm"] for r in results[:11]], ref.norm, rtol=1e-5)
    assert [r.inference["tag_index"] for r in results[:11]] == ref.tag_index.tolist()
    assert np.abs(emb[0] - emb[1]).max() > 1e-3  # per-image results, not one broadcast row
