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


# the CUDA path against this CPU path: tests/unit/vision/test_gpu_paths.py (GPU only)


def _loop_run(jpegs: list[bytes], batched: bool) -> tuple[float, torch.Tensor]:
    """Two steps of the real train_one_epoch, with the DataLoader (PIL) branch or the batched branch
    that CUDA runs (raw bytes + BatchInput.train), here forced onto the CPU."""
    import tempfile

    from torch.utils.data import DataLoader

    from catalog2vec.config import Config, TrainSection
    from catalog2vec.vision import train as tr
    from catalog2vec.vision.data import DataIndex, EpochBatchSampler, SplitIndex, Vocab
    from catalog2vec.vision.losses import NegativeSampler

    k, n = 12, len(jpegs)
    labels = [[i % k, (i * 5 + 1) % k] for i in range(n)]
    t = TrainSection(arch="resnet18", loss="softmax", num_negatives=4, image_size=32, batch_size=4, workers=0,
                     checkpoint_every=0, lr=0.01)
    index = DataIndex(Vocab("v", [f"w{i}" for i in range(k)], np.arange(1, k + 1, dtype=np.int64)),
                      {"train": SplitIndex([str(i) for i in range(n)], labels)})
    torch.manual_seed(0)
    cpu = torch.device("cpu")
    model, _ = tr._init_model(t, index, cpu, False)
    init = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()
    net = tr.LossModule(model)
    optimizer = tr.make_optimizer(t, tr.param_groups(t, model))
    ds = ImageLabelDataset(jpegs, labels, t.image_size, train=True, seed=0, raw=batched)
    sampler = EpochBatchSampler(n, t.batch_size, 2, 0, 0)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=0)
    with tempfile.TemporaryDirectory() as tmp:
        run = tr.RunSetup(Config(lakehouse=tmp), t, 0, 1, cpu, False, index, "v", "m", tmp, tmp, 2, 2, 2,
                          index.splits["train"].item_ids, sampler, loader, model, net, optimizer,
                          tr.make_scheduler(t, optimizer, 2), NegativeSampler(index.vocab.counts, "unigram"), 0.0,
                          BatchInput(t.image_size, cpu) if batched else None)
        p = tr.Progress()
        assert tr.train_one_epoch(run, p, 0) == 8 and p.step == 2
    assert p.loss_ema is not None
    return p.loss_ema, torch.nn.utils.parameters_to_vector(model.parameters()).detach() - init


def test_training_loop_batched_branch_equals_dataloader_branch(silver_jpegs: list[bytes]) -> None:
    jpegs = silver_jpegs[:8]
    loss_pil, update_pil = _loop_run(jpegs, batched=False)
    loss_batched, update_batched = _loop_run(jpegs, batched=True)
    assert np.isfinite(loss_pil) and loss_batched == pytest.approx(loss_pil, rel=1e-3)
    # the two updates point the same way; they are not equal to 1e-2: one-grey-level differences in
    # 0.2 % of the input values move a random-init ResNet-18 (BatchNorm over 4 images) measurably
    assert float(update_pil.norm()) > 0
    cos = float(torch.nn.functional.cosine_similarity(update_batched, update_pil, dim=0))
    rel = float((update_batched - update_pil).norm() / update_pil.norm())
    print(f"update cosine {cos:.4f}, relative difference {rel:.2e}")
    assert cos > 0.8
