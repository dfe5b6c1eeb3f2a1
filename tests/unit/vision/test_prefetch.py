"""The training loop's input side: step tensors from a collated batch, prepared one batch ahead."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from catalog2vec.ingest.images import normalise_image
from catalog2vec.vision.batch_input import BatchInput
from catalog2vec.vision.data import ImageLabelDataset, collate
from catalog2vec.vision.prefetch import prefetch, step_inputs
from tests.unit.vision.helpers import EXAMPLES


@pytest.fixture(scope="module")
def silver_jpegs() -> list[bytes]:
    """12 sample images as silver/images stores them (JPEG, short side 256)."""
    paths = sorted((EXAMPLES / "images").glob("*.jpg"))[:12]
    return [normalise_image(p.read_bytes(), short_side=256, upscale=True).data for p in paths]


def _batch(jpegs: list[bytes], raw: bool) -> dict[str, Any]:
    labels = [[i % 5, 7] for i in range(len(jpegs))]
    ds = ImageLabelDataset(jpegs, labels, 32, train=True, seed=3, raw=raw)
    return collate([ds[(1, i)] for i in range(len(jpegs))])


def test_step_inputs_of_both_branches(silver_jpegs: list[bytes]) -> None:
    cpu = torch.device("cpu")
    pil = _batch(silver_jpegs[:4], raw=False)
    x, positive, targets = step_inputs(pil, cpu, 9, None)
    assert torch.equal(x, pil["image"]) and torch.equal(positive, pil["positive"])
    assert targets.shape == (4, 9) and targets.sum(1).tolist() == [2.0] * 4
    assert targets[1, 1] == 1 and targets[1, 7] == 1 and targets[1, 0] == 0
    raw = _batch(silver_jpegs[:4], raw=True)
    xb, positive_b, targets_b = step_inputs(raw, cpu, 9, BatchInput(32, cpu), channels_last=True)
    assert xb.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(positive_b, positive) and torch.equal(targets_b, targets)
    # the batched path's crop and flip are the DataLoader's for the same sample seeds
    assert float((xb - x).abs().max()) < 0.05


def test_prefetch_order_and_laziness() -> None:
    prepared: list[int] = []

    def prepare(b: int) -> int:
        prepared.append(b)
        return b * 10

    gen = prefetch(iter(range(5)), prepare, torch.device("cpu"))
    assert prepared == []  # nothing before the first step asks
    assert next(gen) == (0, 0)
    assert prepared == [0]  # at most one batch ahead of the step that consumes it
    assert list(gen) == [(1, 10), (2, 20), (3, 30), (4, 40)]
    assert list(prefetch([], prepare, torch.device("cpu"))) == []


# the side-stream prefetch on CUDA: tests/unit/vision/test_gpu_paths.py (GPU only)
