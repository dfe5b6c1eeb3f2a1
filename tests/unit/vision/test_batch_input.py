"""The batched tensor input path equals the PIL reference transforms on CPU-decodable images
(the bundled sample, as silver/images stores it: re-encoded at a short side of 256)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from catalog2vec.ingest.images import normalise_image
from catalog2vec.vision.batch_input import BatchInput, decode_batch, is_jpeg, train_params
from catalog2vec.vision.data import ImageLabelDataset, collate, sample_seed
from catalog2vec.vision.transforms import IMAGENET_STD, decode_image, eval_transform, train_transform
from tests.unit.vision.helpers import EXAMPLES

# one grey level of the most sensitive channel: libjpeg-turbo and PIL agree pixel for pixel, the
# antialiased uint8 resizes of torchvision and PIL round a few pixels one level apart
ONE_LEVEL = 1 / 255 / min(IMAGENET_STD) + 1e-6


@pytest.fixture(scope="module")
def silver_jpegs() -> list[bytes]:
    """12 sample images as silver/images holds them (short side 256, upscaled so the eval resize
    shrinks), 2 at their original 96 px (the resize enlarges), 1 PNG (the PIL fallback)."""
    paths = sorted((EXAMPLES / "images").glob("*.jpg"))[:15]
    out = [normalise_image(p.read_bytes(), short_side=256, upscale=True).data for p in paths[:12]]
    out += [p.read_bytes() for p in paths[12:14]]
    buf = io.BytesIO()
    Image.open(paths[14]).convert("RGB").resize((256, 300)).save(buf, "PNG")
    out.append(buf.getvalue())
    return out


def _assert_close(got: torch.Tensor, ref: torch.Tensor) -> None:
    diff = (got - ref).abs()
    assert got.shape == ref.shape and got.dtype == torch.float32
    assert float(diff.max()) <= ONE_LEVEL, float(diff.max())
    assert float(diff.mean()) < 1e-3, float(diff.mean())


def test_silver_fixture_is_what_the_lakehouse_holds(silver_jpegs: list[bytes]) -> None:
    sizes = [Image.open(io.BytesIO(d)).size for d in silver_jpegs[:12]]
    assert all(min(s) == 256 for s in sizes) and len(set(sizes)) >= 1
    assert [is_jpeg(d) for d in silver_jpegs] == [True] * 14 + [False]


@pytest.mark.parametrize("size", [224, 64])
def test_eval_batch_equals_pil_reference(silver_jpegs: list[bytes], size: int) -> None:
    ref = torch.stack([eval_transform(size)(decode_image(d)) for d in silver_jpegs])
    got = BatchInput(size).eval(silver_jpegs)
    _assert_close(got.x, ref)
    assert got.ok.tolist() == [1] * len(silver_jpegs) and got.errors == [None] * len(silver_jpegs)
    assert not got.x.is_contiguous(memory_format=torch.channels_last) or size == 1  # CPU: NCHW


@pytest.mark.parametrize("augment", ["crop", "product"])
def test_train_batch_equals_seeded_pil_reference(silver_jpegs: list[bytes], augment: str) -> None:
    """Seeded per sample as ImageLabelDataset seeds it: the same crop and flip on both paths."""
    size = 96
    seeds = [sample_seed(7, 3, i) for i in range(len(silver_jpegs))]
    tf = train_transform(size, 0.25, augment)
    refs = []
    for d, s in zip(silver_jpegs, seeds, strict=True):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s)
            refs.append(tf(decode_image(d)))
    got = BatchInput(size).train(silver_jpegs, seeds, 0.25, augment)
    _assert_close(got.x, torch.stack(refs))
    # the draws are the reference's: a different seed gives a different crop
    assert train_params((256, 341), seeds[0], size, 0.25, augment) != train_params((256, 341), seeds[1], size, 0.25,
                                                                                    augment)
    # the global RNG is left untouched
    torch.manual_seed(1)
    a = torch.rand(3)
    torch.manual_seed(1)
    BatchInput(size).train(silver_jpegs[:2], seeds[:2], 0.25, augment)
    assert torch.equal(torch.rand(3), a)


def test_dataset_raw_mode_feeds_the_batched_path(silver_jpegs: list[bytes]) -> None:
    """ImageLabelDataset(raw=True) + collate → BatchInput.train equals the per-image DataLoader path."""
    labels = [[i % 5, 7] for i in range(len(silver_jpegs))]
    keys = [(2, i) for i in range(len(silver_jpegs))]
    per_image = collate([ImageLabelDataset(silver_jpegs, labels, 64, train=True, seed=3)[k] for k in keys])
    raw = collate([ImageLabelDataset(silver_jpegs, labels, 64, train=True, seed=3, raw=True)[k] for k in keys])
    assert raw["positive"].tolist() == per_image["positive"].tolist()
    assert raw["index"].tolist() == per_image["index"].tolist() and raw["labels"] == per_image["labels"]
    x = BatchInput(64).train(raw["jpeg"], raw["seed"], 0.25, "crop").x
    _assert_close(x, per_image["image"])


def test_bad_images_are_reported_not_raised(silver_jpegs: list[bytes]) -> None:
    corrupt = silver_jpegs[0][:200]  # a JPEG header with its data cut off: the batched decode fails
    batch = [silver_jpegs[0], b"not an image", corrupt, b"", None, silver_jpegs[1]]
    got = BatchInput(64).eval(batch)
    assert got.ok.tolist() == [1, 0, 0, 0, 0, 1]
    assert [e is None for e in got.errors] == [True, False, False, False, False, True]
    assert "empty" in str(got.errors[3])
    assert torch.count_nonzero(got.x[1:5]) == 0
    ref = torch.stack([eval_transform(64)(decode_image(d)) for d in (silver_jpegs[0], silver_jpegs[1])])
    _assert_close(got.x[[0, 5]], ref)  # the good images of a batch with a corrupt JPEG are unaffected
    images, errors = decode_batch([corrupt])
    assert images == [None] and errors[0]


def test_empty_batch_and_argument_checks() -> None:
    got = BatchInput(32).eval([])
    assert tuple(got.x.shape) == (0, 3, 32, 32) and got.ok.shape == (0,)
    with pytest.raises(ValueError, match="augment"):
        BatchInput(32).train([b""], [0], augment="jitter")
    with pytest.raises(ValueError, match="seeds"):
        BatchInput(32).train([b""], [])
    with pytest.raises(ValueError, match="image_size"):
        BatchInput(0)


def test_channels_last_and_cpu_decode_for_another_device(silver_jpegs: list[bytes]) -> None:
    got = BatchInput(64, "cpu", decode_on_device=False, channels_last=True).eval(silver_jpegs[:3])
    assert got.x.is_contiguous(memory_format=torch.channels_last)
    ref = BatchInput(64).eval(silver_jpegs[:3]).x
    assert torch.equal(got.x, ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (nvJPEG decode on the GPU)")
def test_gpu_path_close_to_cpu_path(silver_jpegs: list[bytes]) -> None:  # pragma: no cover - GPU only
    gpu = BatchInput(224, "cuda").eval(silver_jpegs)
    cpu = BatchInput(224).eval(silver_jpegs)
    assert gpu.x.device.type == "cuda" and gpu.x.is_contiguous(memory_format=torch.channels_last)
    diff = (gpu.x.float().cpu() - cpu.x).abs()
    assert float(diff.mean()) < 0.02 and np.array_equal(gpu.ok, cpu.ok)
