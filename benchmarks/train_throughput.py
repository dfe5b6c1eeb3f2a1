"""Training throughput: the full loop (silver/images bytes -> decode -> RandomResizedCrop/flip ->
DataLoader -> forward/backward/step) against the bare model step on tensors already in memory,
same model, batch and threads, in one run. Target ratio >= 0.8 (the input pipeline must not
starve the model).

  .venv/bin/python benchmarks/train_throughput.py                       # CPU: ResNet-18, 96 px
  .venv/bin/python benchmarks/train_throughput.py --workers 0 --batched # CPU: in-process batched decode
  .venv/bin/python benchmarks/train_throughput.py --arch resnet50 --image-size 224 --batch 256 \\
      --device cuda --steps 30                                          # GPU: bf16 + channels_last

Without --lakehouse it builds the real-sample tables (examples/data) in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from catalog2vec.vision.batch_input import BatchInput
from catalog2vec.vision.data import (
    EpochBatchSampler,
    ImageLabelDataset,
    collate,
    load_image_bytes,
    load_index,
)
from catalog2vec.vision.losses import bce_loss, multi_hot
from catalog2vec.vision.model import build_model
from catalog2vec.vision.train import autocast


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lakehouse", default=None)
    p.add_argument("--vocab-version", default=None)
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batched", action="store_true",
                   help="the loader hands over JPEG bytes; BatchInput.train decodes and augments a batch at a "
                        "time in the training process (the CUDA branch of train_one_epoch)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    amp = device.type == "cuda"

    if args.lakehouse:
        root = Path(args.lakehouse)
        from catalog2vec.vision.data import latest_vocab_version

        vv = args.vocab_version or latest_vocab_version(str(root))
    else:
        from tests.unit.vision.helpers import VOCAB_VERSION, write_sample_tables

        root = Path(tempfile.mkdtemp()) / "lh"
        write_sample_tables(root, short_side=256)
        vv = VOCAB_VERSION
    index = load_index(str(root), vv)
    split = index.splits["train"]
    K = index.vocab.size
    ds = ImageLabelDataset(load_image_bytes(str(root), split.item_ids), split.labels, args.image_size, train=True,
                           raw=args.batched)
    batch_input = BatchInput(args.image_size, device) if args.batched else None

    def images(batch: dict) -> torch.Tensor:
        if batch_input is not None:
            return batch_input.train(batch["jpeg"], batch["seed"]).x
        return batch["image"].to(device, non_blocking=True)
    n_steps = args.warmup + args.steps
    per_epoch = len(ds) // args.batch

    model = build_model(args.arch, K, loss="bce").to(device)
    if amp:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(x: torch.Tensor, targets: torch.Tensor) -> None:
        if amp:
            x = x.to(memory_format=torch.channels_last)
        with autocast(device, amp):
            loss = bce_loss(model, model(x), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    # full loop, data loading included
    sampler = EpochBatchSampler(len(ds), args.batch, per_epoch, 0, 0)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=args.workers,
                        pin_memory=device.type == "cuda", persistent_workers=args.workers > 0)
    done, epoch, t0 = 0, 0, 0.0
    first: dict | None = None
    while done < n_steps:
        sampler.set_epoch(epoch)
        for batch in loader:
            if first is None:
                first = batch
            if done == args.warmup:
                sync()
                t0 = time.perf_counter()
            step(images(batch), multi_hot(batch["labels"], K, device))
            done += 1
            if done >= n_steps:
                break
        epoch += 1
    sync()
    full = args.steps * args.batch / (time.perf_counter() - t0)

    # bare model step on one batch already in memory (on the device)
    assert first is not None
    x, targets = images(first), multi_hot(first["labels"], K, device)
    for _ in range(args.warmup):
        step(x, targets)
    sync()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step(x, targets)
    sync()
    bare = args.steps * args.batch / (time.perf_counter() - t0)
    res = {"arch": args.arch, "image_size": args.image_size, "batch": args.batch, "steps": args.steps,
           "workers": args.workers, "batched": args.batched, "threads": torch.get_num_threads(), "device": str(device), "bf16": amp,
           "full_loop_images_per_s": round(full, 2), "bare_step_images_per_s": round(bare, 2),
           "ratio": round(full / bare, 3)}
    print(json.dumps(res))
    print(f"full loop {full:.1f} img/s vs bare model step {bare:.1f} img/s: ratio {full / bare:.2f} (target >= 0.8)")


if __name__ == "__main__":
    main()
