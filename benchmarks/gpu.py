"""GPU (and CPU) input-path benchmark (issue 32): how close do embedding and training from JPEG bytes
come to the bare model on the same device?

Three measurements in one run, on JPEGs built on the spot at the catalog's size (short side 256,
portrait 256x341 and square, a product-like shape on a light background, JPEG quality 90) or on
the ``image`` column of a ``silver/images`` table (``--lakehouse``):

1. **decode**: :func:`catalog2vec.vision.batch_input.decode_batch` alone (nvJPEG on CUDA,
   libjpeg-turbo on the CPU), images/s.
2. **embed**: the bare forward (:meth:`InferenceModel.forward` on a batch already on the device:
   model + tag head, bf16 + channels_last on CUDA) vs the embedding core from JPEG bytes to
   embeddings + top tags (:meth:`InferenceModel.predict`: decode, transform, forward, top-N,
   results back on the host) — the path the Spark UDF runs per batch. Ratio = core / bare.
3. **train**: the bare optimizer step (``LossModule`` forward + backward + step on a batch already on
   the device, one host sync at the end) vs the training loop
   (:func:`catalog2vec.vision.train.train_one_epoch` over a DataLoader of the JPEG bytes: PIL
   workers on the CPU, the batched GPU path on CUDA; negatives, targets, loss EMA, progress).

Each pair is measured twice, interleaved (bare, core, bare, core), and the best of each kept, so a
machine shared with other work biases both sides alike. Prints a JSON record (``--out`` writes it).

examples:
  python benchmarks/gpu.py --device cpu --quick            # CI-size check on a laptop
  python benchmarks/gpu.py --device cuda                   # ResNet-50, 224 px, batch 256 / 512, bf16
  python benchmarks/gpu.py --device cuda --lakehouse .gpu_lh --limit 20000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def synthetic_jpegs(n: int, seed: int = 0) -> list[bytes]:
    """Catalog-like JPEGs: light studio background, one centred product (a garment-like body with a
    texture, or a shoe-like blob), portrait 256x341 or square 256x256, JPEG quality 90."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        w, h = (256, 341) if i % 4 else (256, 256)
        bg = tuple(int(v) for v in rng.integers(225, 256, 3))
        img = Image.new("RGB", (w, h), bg)
        d = ImageDraw.Draw(img)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        cx, cy = w // 2 + int(rng.integers(-12, 13)), h // 2 + int(rng.integers(-12, 13))
        bw, bh = int(w * rng.uniform(0.35, 0.6)), int(h * rng.uniform(0.45, 0.8))
        if i % 3:
            d.rounded_rectangle((cx - bw // 2, cy - bh // 2, cx + bw // 2, cy + bh // 2), radius=18, fill=colour)
            d.polygon([(cx - bw // 2, cy - bh // 2), (cx - bw, cy), (cx - bw // 2, cy)], fill=colour)  # a sleeve
            d.polygon([(cx + bw // 2, cy - bh // 2), (cx + bw, cy), (cx + bw // 2, cy)], fill=colour)
        else:
            d.ellipse((cx - bw, cy - bh // 4, cx + bw, cy + bh // 4), fill=colour)
        arr = np.asarray(img, dtype=np.int16)
        stripes = (np.sin(np.arange(w)[None, :] / rng.uniform(2, 9)) * rng.uniform(0, 25)).astype(np.int16)
        mask = (np.abs(arr - np.array(bg, dtype=np.int16)).sum(axis=2) > 30)[..., None]
        arr = np.clip(arr + mask * stripes[..., None] + rng.normal(0, 3, arr.shape).astype(np.int16), 0, 255)
        img = Image.fromarray(arr.astype(np.uint8)).filter(ImageFilter.SMOOTH)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def silver_jpegs(lakehouse: str, limit: int) -> list[bytes]:
    from catalog2vec.lakehouse import open_delta
    from catalog2vec.schemas import silver

    ds = open_delta(lakehouse, silver.IMAGES).to_pyarrow_dataset()
    return [bytes(b) for b in ds.head(limit, columns=["image"]).column("image").to_pylist()]


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Any, device: Any, n_items: int, repeats: int) -> float:
    """Images/s of ``repeats`` calls of ``fn`` (after one warm-up call), one sync at the end."""
    fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return n_items * repeats / (time.perf_counter() - t0)


def _pair(bare: Any, core: Any, device: Any, n_items: int, repeats: int) -> tuple[float, float]:
    rates: dict[str, list[float]] = {"bare": [], "core": []}
    for _ in range(2):
        rates["bare"].append(_timed(bare, device, n_items, repeats))
        rates["core"].append(_timed(core, device, n_items, repeats))
    return max(rates["bare"]), max(rates["core"])


def make_inference_model(arch: str, vocab: int, image_size: int, device: Any, top_n: int) -> Any:
    from catalog2vec.embed.core import InferenceModel
    from catalog2vec.vision.model import build_model

    model = build_model(arch, vocab, 0, 0.0, "", "softmax", "linear")
    return InferenceModel(model, [f"w{i}" for i in range(vocab)], image_size, device, top_n)


def bench_decode(jpegs: list[bytes], device: Any, repeats: int) -> float:
    from catalog2vec.vision.batch_input import decode_batch

    return _timed(lambda: decode_batch(jpegs, device), device, len(jpegs), repeats)


def bench_embed(jpegs: list[bytes], im: Any, repeats: int) -> dict[str, float]:
    x = im.preprocessor.batch(jpegs)[0].to(im.device)
    bare, core = _pair(lambda: im.forward(x), lambda: im.predict(jpegs), im.device, len(jpegs), repeats)
    return {"bare_forward_img_s": bare, "embed_core_img_s": core, "ratio": core / bare}


def bench_train(jpegs: list[bytes], args: argparse.Namespace, device: Any) -> dict[str, float]:
    """The bare step and :func:`train_one_epoch` on the same network, batch, loss and device."""
    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    from catalog2vec.config import Config, TrainSection
    from catalog2vec.vision import train as tr
    from catalog2vec.vision.batch_input import BatchInput
    from catalog2vec.vision.data import (
        DataIndex,
        EpochBatchSampler,
        ImageLabelDataset,
        SplitIndex,
        Vocab,
        collate,
    )
    from catalog2vec.vision.losses import NegativeSampler, multi_hot

    b, k = args.batch, args.vocab
    rng = np.random.default_rng(0)
    n_items = max(len(jpegs), b * (args.train_steps + 1))
    images = [jpegs[i % len(jpegs)] for i in range(n_items)]
    labels = [sorted({int(w) for w in rng.integers(0, k, int(rng.integers(1, 6)))}) for _ in range(n_items)]
    t = TrainSection(arch=args.arch, loss="softmax", num_negatives=min(1000, k // 2), image_size=args.image_size,
                     batch_size=b, workers=args.workers, checkpoint_every=0, log_every=10, use_gpu=device.type == "cuda",
                     amp=True, lr=0.01)
    use_amp = t.amp and device.type == "cuda"
    torch.manual_seed(0)
    counts = np.maximum(1, rng.zipf(1.5, k)).astype(np.int64)
    index = DataIndex(Vocab("bench", [f"w{i}" for i in range(k)], counts),
                      {"train": SplitIndex([str(i) for i in range(n_items)], labels)})
    model, _ = tr._init_model(t, index, device, use_amp)
    net = tr.LossModule(model)
    optimizer = tr.make_optimizer(t, tr.param_groups(t, model))
    scheduler = tr.make_scheduler(t, optimizer, 10**6)
    negatives = NegativeSampler(counts, t.negative_sampler)

    # bare: one batch already on the device, the same loss, one sync at the end
    x0 = BatchInput(t.image_size, device, channels_last=use_amp).eval(images[:b]).x
    pos = torch.tensor([labs[0] for labs in labels[:b]], device=device)
    tgt = multi_hot(labels[:b], k, device)
    neg = negatives.sample(t.num_negatives, pos.cpu(), torch.Generator().manual_seed(0)).to(device)

    def bare() -> None:
        for _ in range(args.train_steps):
            with tr.autocast(device, use_amp):
                loss = net(x0, pos, tgt, neg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    batch_input = BatchInput(t.image_size, device, channels_last=use_amp) if device.type == "cuda" else None
    ds = ImageLabelDataset(images, labels, t.image_size, train=True, seed=0, augment=t.augment,
                           raw=batch_input is not None)
    sampler = EpochBatchSampler(n_items, b, args.train_steps, 0, 0)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=t.workers,
                        pin_memory=device.type == "cuda", persistent_workers=t.workers > 0)
    with tempfile.TemporaryDirectory() as tmp:
        run = tr.RunSetup(Config(lakehouse=tmp), t, 0, 1, device, use_amp, index, "bench", "bench", tmp, tmp,
                          args.train_steps, 10**6, 10**6, index.splits["train"].item_ids, sampler, loader, model,
                          net, optimizer, scheduler, negatives, time.time(), batch_input)
        progress = tr.Progress()

        def loop() -> None:
            sampler.set_epoch(progress.step // args.train_steps)
            tr.train_one_epoch(run, progress, 0)

        n = b * args.train_steps
        bare_rate, loop_rate = _pair(bare, loop, device, n, 1)
    return {"bare_step_img_s": bare_rate, "train_loop_img_s": loop_rate, "ratio": loop_rate / bare_rate}


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--quick", action="store_true", help="small sizes: a CI-scale smoke run")
    p.add_argument("--arch", default="", help="default: resnet50 on CUDA, resnet18 on the CPU")
    p.add_argument("--image-size", type=int, default=0, help="default: 224 on CUDA, 96 on the CPU")
    p.add_argument("--batch", type=int, default=0, help="training batch (default 256 on CUDA, 32 on the CPU)")
    p.add_argument("--embed-batches", default="", help="comma list (default 256,512 on CUDA, 64 on the CPU)")
    p.add_argument("--train-steps", type=int, default=0, help="steps per timed repeat (default 20 CUDA, 3 CPU)")
    p.add_argument("--vocab", type=int, default=5000, help="K, the tag vocabulary")
    p.add_argument("--workers", type=int, default=-1, help="training DataLoader workers (default 8 CUDA, 1 CPU)")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
    p.add_argument("--lakehouse", default="", help="use silver/images of this lakehouse instead of synthetic JPEGs")
    p.add_argument("--limit", type=int, default=2048, help="images read from --lakehouse")
    p.add_argument("--skip", default="", help="comma list of decode,embed,train to leave out")
    p.add_argument("--out", default="", help="write the JSON record here")
    p.add_argument("--budget-s", type=float, default=300.0,
                   help="wall-clock budget: a measurement that would start after it is skipped and named in "
                        "the record's 'skipped' (the issue's device budget is 6 minutes; model build and JPEG "
                        "synthesis count)")
    return p


def main(argv: list[str] | None = None) -> int:
    import torch

    args = get_args_parser().parse_args(argv)
    t_start = time.perf_counter()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda but CUDA is not available", file=sys.stderr)
        return 2
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    gpu = device.type == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    args.arch = args.arch or ("resnet50" if gpu else "resnet18")
    args.image_size = args.image_size or (224 if gpu else 96)
    args.batch = args.batch or (256 if gpu else 32)
    args.train_steps = args.train_steps or (20 if gpu else 3)
    args.workers = args.workers if args.workers >= 0 else (8 if gpu else 1)
    embed_batches = [int(v) for v in (args.embed_batches or ("256,512" if gpu else "64")).split(",")]
    repeats = 5 if gpu else 2
    if args.quick:
        args.train_steps = min(args.train_steps, 5 if gpu else 2)
        embed_batches = embed_batches[:1]
        repeats = 2 if gpu else 1
    if gpu:
        torch.backends.cudnn.benchmark = True
    skip = set(filter(None, args.skip.split(",")))
    n_images = max([*embed_batches, args.batch])
    source = f"silver/images of {args.lakehouse}" if args.lakehouse else "synthetic JPEGs (short side 256, q90)"
    jpegs = silver_jpegs(args.lakehouse, args.limit) if args.lakehouse else synthetic_jpegs(min(n_images, 512))
    pool = [jpegs[i % len(jpegs)] for i in range(n_images)]

    record: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "host": platform.node(),
        "device": torch.cuda.get_device_name(device) if gpu else f"cpu ({os.cpu_count()} cores)",
        "load_avg_1m": round(os.getloadavg()[0], 2), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "source": source, "mean_jpeg_bytes": round(sum(map(len, jpegs)) / len(jpegs)),
        "config": {k: v for k, v in vars(args).items() if k not in ("out",)},
    }
    record["skipped"] = []

    def due(name: str) -> bool:
        """Run ``name`` unless --skip names it or the budget is spent (then record it as skipped)."""
        if name in skip:
            return False
        if time.perf_counter() - t_start > args.budget_s:
            record["skipped"].append(f"{name} (budget {args.budget_s:.0f} s spent)")
            print(f"{name}: skipped, the {args.budget_s:.0f} s budget is spent", flush=True)
            return False
        return True

    if due("decode"):
        record["decode_img_s"] = bench_decode(pool[: embed_batches[0]], device, repeats)
        print(f"decode: {record['decode_img_s']:.1f} img/s", flush=True)
    if due("embed"):
        im = make_inference_model(args.arch, args.vocab, args.image_size, device, top_n=20)
        record["embed"] = {}
        for b in embed_batches:
            if b != embed_batches[0] and not due(f"embed batch {b}"):
                continue
            r = bench_embed(pool[:b], im, repeats)
            record["embed"][str(b)] = r
            print(f"embed batch {b}: bare forward {r['bare_forward_img_s']:.1f} img/s, core from JPEG bytes "
                  f"{r['embed_core_img_s']:.1f} img/s, ratio {r['ratio']:.3f}", flush=True)
        del im
    if due("train"):
        r = bench_train(pool, args, device)
        record["train"] = r
        print(f"train batch {args.batch}: bare step {r['bare_step_img_s']:.1f} img/s, loop "
              f"{r['train_loop_img_s']:.1f} img/s, ratio {r['ratio']:.3f}", flush=True)
    record["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    record["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    text = json.dumps(record, indent=2, default=str)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
