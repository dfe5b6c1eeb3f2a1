"""The CUDA branches of the input path against the CPU reference (issue 32). CI has no GPU and skips
them; the device check (``benchmarks/gpu_device.sh``) runs this file on a GPU machine.

This file imports no lakehouse code (no ``deltalake``): the device machine's Python has torch,
torchvision, pillow, numpy and pytest, and a ``deltalake`` wheel is too large to carry there."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from catalog2vec.ingest.images import normalise_image
from catalog2vec.vision.batch_input import BatchInput
from catalog2vec.vision.data import ImageLabelDataset, collate
from catalog2vec.vision.prefetch import prefetch, step_inputs
from tests.sample import core_sample_dir

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (nvJPEG, a side stream)")]

# nvJPEG's IDCT is not libjpeg-turbo's: a few grey levels apart on some pixels, so the batches are
# compared by their mean difference (0.02 after normalisation is about one grey level on average)
MEAN_TOL = 0.02


@pytest.fixture(scope="module")
def silver_jpegs() -> list[bytes]:
    """12 sample images as silver/images stores them (JPEG, short side 256)."""
    paths = sorted((core_sample_dir() / "images").glob("*.jpg"))[:12]
    return [normalise_image(p.read_bytes(), short_side=256, upscale=True).data for p in paths]


def _batch(jpegs: list[bytes], raw: bool) -> dict[str, Any]:
    labels = [[i % 5, 7] for i in range(len(jpegs))]
    ds = ImageLabelDataset(jpegs, labels, 32, train=True, seed=3, raw=raw)
    return collate([ds[(1, i)] for i in range(len(jpegs))])


def test_gpu_eval_path_close_to_cpu_path(silver_jpegs: list[bytes]) -> None:  # pragma: no cover - GPU only
    gpu = BatchInput(224, "cuda").eval([*silver_jpegs, b"not an image"])
    cpu = BatchInput(224).eval([*silver_jpegs, b"not an image"])
    assert gpu.x.device.type == "cuda" and gpu.x.is_contiguous(memory_format=torch.channels_last)
    assert np.array_equal(gpu.ok, cpu.ok) and gpu.ok.tolist() == [1] * 12 + [0]
    diff = (gpu.x.float().cpu() - cpu.x).abs()
    assert float(diff.mean()) < MEAN_TOL, float(diff.mean())


def test_gpu_train_path_makes_the_cpu_crops(silver_jpegs: list[bytes]) -> None:  # pragma: no cover - GPU only
    """The crop and flip are drawn on the CPU from the sample's seed: the same on both devices."""
    seeds = list(range(100, 112))
    for augment in ("crop", "product"):
        gpu = BatchInput(96, "cuda").train(silver_jpegs, seeds, 0.25, augment)
        cpu = BatchInput(96).train(silver_jpegs, seeds, 0.25, augment)
        diff = (gpu.x.float().cpu() - cpu.x).abs()
        assert float(diff.mean()) < MEAN_TOL, (augment, float(diff.mean()))


def test_prefetch_on_a_side_stream_gives_the_sequential_tensors(silver_jpegs: list[bytes]) -> None:  # pragma: no cover
    dev = torch.device("cuda")
    bi = BatchInput(64, dev)
    batches = [_batch(silver_jpegs[i:i + 4], raw=True) for i in range(0, 12, 4)]

    def prepare(b: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return step_inputs(b, dev, 9, bi, channels_last=True)

    seq = [prepare(b)[0].float().cpu() for b in batches]
    got = []
    for _, (x, _, _) in prefetch(batches, prepare, dev):
        got.append((x * 2).sum(dim=(1, 2, 3)))  # a step's use of x on the main stream
    for g, s in zip(got, seq, strict=True):
        torch.testing.assert_close(g.cpu(), (s * 2).sum(dim=(1, 2, 3)))
