"""Weakly supervised training of the image model, in the style of torchvision's reference
``train.py``: optimizer and StepLR schedule from config, AMP bf16 + channels_last on CUDA, progress
with images/s, validation every epoch (precision/recall@k and mAP of the tag ranking on the val
split), atomic checkpoints every ``checkpoint_every`` steps and at every epoch end, automatic
resume from the latest checkpoint. Rank 0 alone writes.

Runs single-process (``python -m catalog2vec.vision.train``), under ``torchrun`` (reads RANK /
WORLD_SIZE / LOCAL_RANK, gloo on CPU, NCCL on GPU) and under ``TorchDistributor`` (jobs/train.py).
Data come JVM-free from the lakehouse (see :mod:`catalog2vec.vision.data`).

Output: ``<lakehouse>/models/<model_version>/`` = model.pt, vocab.parquet, model_card.json,
shards.json (item ids each rank trained on in the last process run) and ``checkpoints/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from catalog2vec.config import Config, TrainSection, load_config
from catalog2vec.vision import model_dir
from catalog2vec.vision.data import (
    DataIndex,
    EpochBatchSampler,
    ImageLabelDataset,
    collate,
    latest_vocab_version,
    load_image_bytes,
    load_index,
    sample_seed,
)
from catalog2vec.vision.losses import (
    NegativeSampler,
    bce_loss,
    finish,
    frequency_baseline,
    multi_hot,
    ranking_sums,
    softmax_loss,
)
from catalog2vec.vision.model import WeakLabelNet, atomic_torch_save, build_model, save_model_dir

log = logging.getLogger("catalog2vec.train")

# train-section keys that do not change the trained weights (excluded from the model_version hash)
OPERATIONAL_KEYS = frozenset({
    "workers", "checkpoint_every", "log_every", "num_processes", "local_mode", "use_gpu", "mlflow",
    "mlflow_tracking_uri", "model_version", "max_steps", "vocab_version",
})
CKPT_RE = re.compile(r"^ckpt-(\d{8})\.pt$")
KEEP_CHECKPOINTS = 2


@dataclass
class TrainResult:
    model_version: str
    model_dir: str
    vocab_version: str
    steps: int
    epochs_completed: int
    complete: bool
    resumed_from_step: int
    metrics: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_hash(t: TrainSection) -> str:
    d = {k: v for k, v in dataclasses.asdict(t).items() if k not in OPERATIONAL_KEYS}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def resolve_model_version(t: TrainSection, vocab_version: str) -> str:
    if t.model_version:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", t.model_version):
            raise ValueError(f"model_version {t.model_version!r} may only hold letters, digits, '.', '_', '-'")
        return t.model_version
    return f"{t.arch}-{t.loss}-{vocab_version[:8]}-{config_hash(t)[:8]}"


def code_version() -> str:
    repo = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=repo, capture_output=True,
                             text=True, timeout=10, check=True)
        return f"git:{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"catalog2vec=={version('catalog2vec')}"
        except PackageNotFoundError:
            return "unknown"


# ---------------------------------------------------------------- checkpoints
def list_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := CKPT_RE.match(p.name))]
    return sorted(found)


def save_checkpoint(ckpt_dir: Path, state: dict[str, Any]) -> Path:
    path = ckpt_dir / f"ckpt-{int(state['step']):08d}.pt"
    atomic_torch_save(state, path)
    for _, old in list_checkpoints(ckpt_dir)[:-KEEP_CHECKPOINTS]:
        old.unlink(missing_ok=True)
    return path


def load_latest_checkpoint(ckpt_dir: Path) -> dict[str, Any] | None:
    for _, path in reversed(list_checkpoints(ckpt_dir)):
        try:
            return dict(torch.load(path, map_location="cpu", weights_only=False))
        except Exception as exc:
            log.warning("checkpoint %s unreadable (%s); trying the previous one", path, exc)
    return None


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------- pieces
class LossModule(nn.Module):
    """Model + loss in one module, so DistributedDataParallel sees every parameter's gradient."""

    def __init__(self, model: WeakLabelNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, positive: torch.Tensor, targets: torch.Tensor,
                negatives: torch.Tensor) -> torch.Tensor:
        z = self.model(images)
        if self.model.loss == "bce":
            return bce_loss(self.model, z, targets)
        return softmax_loss(self.model, z, positive, targets, negatives)


def make_optimizer(t: TrainSection, params: Iterator[nn.Parameter]) -> torch.optim.Optimizer:
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    raise ValueError(f"unknown optimizer {t.optimizer!r}; choose sgd | adam | adamw")


def validate_train_config(t: TrainSection) -> None:
    if t.loss not in ("softmax", "bce"):
        raise ValueError(f"train.loss must be softmax or bce, got {t.loss!r}")
    for name in ("epochs", "batch_size", "image_size", "lr_step_size", "top_k", "log_every"):
        if getattr(t, name) < 1:
            raise ValueError(f"train.{name} must be >= 1, got {getattr(t, name)}")
    if t.max_steps < 0 or t.checkpoint_every < 0 or t.workers < 0:
        raise ValueError("train.max_steps, train.checkpoint_every and train.workers must be >= 0")


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model: WeakLabelNet, lakehouse: str, ids: list[str], labels: list[list[int]], t: TrainSection,
             device: torch.device, use_amp: bool, world: int) -> dict[str, float]:
    """Tag-ranking metrics of this rank's shard, summed over ranks (all_reduce)."""
    k = t.top_k
    sums = {f"precision@{k}": 0.0, f"recall@{k}": 0.0, "map": 0.0, "n": 0.0}
    if ids:
        ds = ImageLabelDataset(load_image_bytes(lakehouse, ids), labels, t.image_size, train=False)
        loader = DataLoader(ds, batch_size=max(t.batch_size, 32), shuffle=False, collate_fn=collate,
                            num_workers=min(t.workers, 1))
        was_training = model.training
        model.eval()
        for batch in loader:
            x = batch["image"].to(device)
            if use_amp:
                x = x.to(memory_format=torch.channels_last)
            with autocast(device, use_amp):
                scores = model.word_logits(model(x)).float().cpu().numpy()
            for key, val in ranking_sums(scores, batch["labels"], k).items():
                sums[key] += val
        model.train(was_training)
    if world > 1:
        keys = sorted(sums)
        buf = torch.tensor([sums[key] for key in keys], dtype=torch.float64)
        dist.all_reduce(buf)
        sums = dict(zip(keys, buf.tolist(), strict=True))
    return finish(sums)


# ---------------------------------------------------------------- the loop
def train(cfg: Config) -> TrainResult | None:
    """Train (or resume) per ``cfg.train``; returns the result on rank 0, None on other ranks."""
    t = cfg.train
    validate_train_config(t)
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = t.use_gpu and torch.cuda.is_available()
    if t.use_gpu and not use_cuda:
        log.warning("train.use_gpu is set but CUDA is not available: training on CPU")
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    own_group = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
        own_group = True
    try:
        return _train(cfg, t, rank, world, device)
    finally:
        if own_group and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: Config, t: TrainSection, rank: int, world: int, device: torch.device) -> TrainResult | None:
    t_start = time.time()
    use_amp = t.amp and device.type == "cuda"
    if t.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    random.seed(t.seed)
    np.random.seed(t.seed)
    torch.manual_seed(t.seed)

    lakehouse = cfg.lakehouse
    vocab_version = t.vocab_version or latest_vocab_version(lakehouse)
    index: DataIndex = load_index(lakehouse, vocab_version)
    model_version = resolve_model_version(t, vocab_version)
    out_dir = Path(model_dir(lakehouse, model_version))
    ckpt_dir = out_dir / "checkpoints"
    train_split = index.splits["train"]
    steps_per_epoch = len(train_split.item_ids) // world // t.batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"{len(train_split.item_ids)} training items are too few for {world} rank(s) x batch {t.batch_size}; "
            "lower train.batch_size"
        )
    total_steps = steps_per_epoch * t.epochs
    stop_at = min(total_steps, t.max_steps) if t.max_steps else total_steps
    if rank == 0:
        log.info("model_version=%s vocab_version=%s K=%d data=%s", model_version, vocab_version,
                 index.vocab.size, index.counts)
        log.info("world=%d device=%s steps/epoch=%d total=%d stop_at=%d", world, device, steps_per_epoch,
                 total_steps, stop_at)

    shard = train_split.shard(rank, world)
    train_ds = ImageLabelDataset(load_image_bytes(lakehouse, shard.item_ids), shard.labels, t.image_size,
                                 train=True, seed=t.seed, scale_min=t.scale_min)
    sampler = EpochBatchSampler(len(shard.item_ids), t.batch_size, steps_per_epoch, t.seed, rank)
    loader = DataLoader(train_ds, batch_sampler=sampler, collate_fn=collate, num_workers=t.workers,
                        pin_memory=device.type == "cuda", persistent_workers=False)

    model = build_model(t.arch, index.vocab.size, t.embed_dim, t.dropout, t.init_weights, t.loss).to(device)
    if use_amp:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(t, model.parameters())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=t.lr_step_size, gamma=t.lr_gamma)
    sampler_neg = NegativeSampler(index.vocab.counts, t.negative_sampler)

    step, history, train_time, images_trained = 0, [], 0.0, 0
    ckpt = load_latest_checkpoint(ckpt_dir)
    resumed_from = 0
    if ckpt is not None:
        if ckpt.get("vocab_version") != vocab_version or ckpt.get("model_version") != model_version:
            raise ValueError(f"checkpoint in {ckpt_dir} belongs to another run "
                             f"({ckpt.get('model_version')}, vocab {ckpt.get('vocab_version')})")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        step, history = int(ckpt["step"]), list(ckpt.get("history", []))
        train_time, images_trained = float(ckpt.get("train_time_s", 0.0)), int(ckpt.get("images_trained", 0))
        set_rng_state(ckpt["rng"])
        resumed_from = step
        if rank == 0:
            log.info("resumed from %s/ckpt-%08d.pt (step %d)", ckpt_dir, step, step)
    loss_module = LossModule(model)
    net: nn.Module = loss_module
    if world > 1:
        net = nn.parallel.DistributedDataParallel(loss_module, device_ids=[device.index] if device.type == "cuda"
                                                  else None)

    mlflow = _start_mlflow(t, cfg, model_version) if (t.mlflow and rank == 0) else None

    def checkpoint() -> None:
        if rank != 0:
            return
        save_checkpoint(ckpt_dir, {
            "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "rng": rng_state(), "history": history,
            "config": cfg.to_dict(), "vocab_version": vocab_version, "model_version": model_version,
            "train_time_s": train_time, "images_trained": images_trained,
        })

    seen: set[str] = set()
    val_split = index.splits["val"].shard(rank, world)
    loss_ema: float | None = None
    while step < stop_at:
        epoch, start = divmod(step, steps_per_epoch)
        sampler.set_epoch(epoch, start)
        net.train()
        t_epoch, n_epoch = time.time(), 0
        for batch in loader:
            t_step = time.time()
            # every random draw of a step is a function of (seed, step, rank): exact resume
            torch.manual_seed(sample_seed(t.seed, step, 2_000_000 + rank))
            gen = torch.Generator().manual_seed(sample_seed(t.seed, step, 3_000_000))
            x = batch["image"].to(device, non_blocking=True)
            if use_amp:
                x = x.to(memory_format=torch.channels_last)
            positive = batch["positive"].to(device)
            targets = multi_hot(batch["labels"], index.vocab.size, device)
            negatives = torch.empty(0, dtype=torch.long)
            if t.loss == "softmax":
                # the same negatives on every rank (generator seeded by step), none a positive of this batch
                negatives = sampler_neg.sample(t.num_negatives, batch["positive"], gen)
            with autocast(device, use_amp):
                loss = net(x, positive, targets, negatives.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            n = int(x.shape[0])
            n_epoch += n
            images_trained += n * world
            seen.update(shard.item_ids[i] for i in batch["index"].tolist())
            lv = float(loss.detach())
            loss_ema = lv if loss_ema is None else 0.9 * loss_ema + 0.1 * lv
            train_time += time.time() - t_step
            if rank == 0 and (step % t.log_every == 0 or step == stop_at):
                ips = n_epoch * world / max(time.time() - t_epoch, 1e-9)
                log.info("epoch %d step %d/%d loss %.4f (ema %.4f) lr %.4g %.1f img/s", epoch, step, stop_at, lv,
                         loss_ema, optimizer.param_groups[0]["lr"], ips)
            if t.checkpoint_every and step % t.checkpoint_every == 0 and step % steps_per_epoch:
                checkpoint()
            if step >= stop_at:
                break
        if step % steps_per_epoch == 0:  # epoch finished: schedule, validate, checkpoint
            scheduler.step()
            metrics = evaluate(model, lakehouse, val_split.item_ids, val_split.labels, t, device, use_amp, world)
            entry = {"epoch": epoch + 1, "step": step, "train_loss_ema": loss_ema,
                     "epoch_images_per_s": n_epoch * world / max(time.time() - t_epoch, 1e-9),
                     "lr": optimizer.param_groups[0]["lr"], **{f"val_{k}": v for k, v in metrics.items()}}
            history.append(entry)
            if rank == 0:
                log.info("epoch %d done: %s", epoch + 1, json.dumps(entry))
                if mlflow is not None:
                    mlflow.log_metrics({k: float(v) for k, v in entry.items() if isinstance(v, (int, float))},
                                       step=step)
            checkpoint()
        elif step >= stop_at:
            checkpoint()

    complete = step >= total_steps
    test_split = index.splits["test"].shard(rank, world)
    test_metrics = evaluate(model, lakehouse, test_split.item_ids, test_split.labels, t, device, use_amp, world)
    seen_all: list[Any] = [None] * world
    if world > 1:
        dist.all_gather_object(seen_all, sorted(seen))
    else:
        seen_all = [sorted(seen)]
    if rank != 0:
        return None
    k, train_labels = t.top_k, index.splits["train"].labels
    baseline = {s: frequency_baseline(train_labels, index.splits[s].labels, index.vocab.size, k)
                for s in ("val", "test")}
    flat = [i for ids in seen_all for i in ids]
    wall = time.time() - t_start
    final_metrics: dict[str, Any] = {"per_epoch": history, "val": history[-1] if history else {}, "test": test_metrics}
    card_extra: dict[str, Any] = {
        "model_version": model_version,
        "run_id": cfg.run_id,
        "created_at": datetime.now(UTC).isoformat(),
        "code_version": code_version(),
        "torch_version": torch.__version__,
        "complete": complete,
        "steps": step,
        "steps_per_epoch": steps_per_epoch,
        "epochs_completed": step // steps_per_epoch,
        "resumed_from_step": resumed_from,
        "world_size": world,
        "device": str(device),
        "amp_bf16": use_amp,
        "wall_time_s": round(wall, 3),
        "train_time_s": round(train_time, 3),
        "images_trained": images_trained,
        "images_per_s": round(images_trained / max(train_time, 1e-9), 2),
        "data": {**index.counts, "ranks": [{"rank": r, "shard_items": len(index.splits["train"].shard(r, world)
                                                                          .item_ids), "seen_items": len(ids)}
                                           for r, ids in enumerate(seen_all)],
                 "ranks_disjoint": len(flat) == len(set(flat))},
        "metrics": final_metrics,
        "baseline_frequency": baseline,
    }
    config = {**cfg.to_dict()["train"], "image_size": t.image_size, "lakehouse": str(lakehouse)}
    save_model_dir(out_dir, model, index.vocab.tokens, vocab_version, config, card_extra)
    (out_dir / "shards.json").write_text(json.dumps({str(r): ids for r, ids in enumerate(seen_all)}))
    log.info("model written to %s (complete=%s, %d steps, test %s, frequency baseline %s)", out_dir, complete, step,
             json.dumps(test_metrics), json.dumps(baseline["test"]))
    if mlflow is not None:
        mlflow.log_metrics({f"test_{k}": float(v) for k, v in test_metrics.items()})
        mlflow.log_artifacts(str(out_dir), artifact_path="model", )
        mlflow.end_run()
    return TrainResult(model_version, str(out_dir), vocab_version, step, step // steps_per_epoch, complete,
                       resumed_from, final_metrics)


def _start_mlflow(t: TrainSection, cfg: Config, model_version: str) -> Any:
    try:
        import mlflow
    except ImportError as exc:
        raise ValueError("train.mlflow = true but mlflow is not installed (pip install mlflow)") from exc
    if t.mlflow_tracking_uri:
        mlflow.set_tracking_uri(t.mlflow_tracking_uri)
    mlflow.start_run(run_name=model_version)
    mlflow.log_params({k: v for k, v in dataclasses.asdict(t).items() if not isinstance(v, (dict, list))})
    return mlflow


def train_entry(config_path: str | None, overrides: list[str], lakehouse: str | None,
                run_id: str | None) -> dict[str, Any] | None:
    """Picklable entry point (TorchDistributor, torchrun): load the config in the worker and train."""
    logging.basicConfig(level=logging.INFO, format="[train] %(asctime)s %(levelname)s %(message)s", force=True)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available():
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["WORLD_SIZE"])))
    cfg = load_config(config_path, overrides, lakehouse=lakehouse, run_id=run_id)
    result = train(cfg)
    return result.to_dict() if result is not None else None


def cli_overrides(args: Any) -> list[str]:
    """``--max-steps`` etc. as ``section.key=value`` overrides (strings TOML-quoted)."""
    extra = list(args.overrides)
    if args.max_steps is not None:
        extra.append(f"train.max_steps={int(args.max_steps)}")
    for flag, key in (("vocab_version", "vocab_version"), ("model_version", "model_version"),
                      ("init_weights", "init_weights")):
        val = getattr(args, flag)
        if val:
            extra.append(f"train.{key}={json.dumps(val)}")
    return extra


def add_train_arguments(parser: Any) -> None:
    parser.add_argument("--max-steps", type=int, default=None, help="stop after N optimizer steps (0 = no cap)")
    parser.add_argument("--vocab-version", default=None, help="train on this vocab_version (default: the latest)")
    parser.add_argument("--model-version", default=None, help="output models/<id>/ (default: derived from config)")
    parser.add_argument("--init-weights", default=None, help="torchvision-format ResNet state dict to start from")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m catalog2vec.vision.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="TOML run configuration (default: conf/local.toml)")
    parser.add_argument("--lakehouse", default=None, help="lakehouse root")
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    try:
        result = train_entry(args.config, cli_overrides(args), args.lakehouse, args.run_id)
    except (ValueError, FileNotFoundError) as exc:
        print(f"[train] error: {exc}", file=sys.stderr)
        return 2
    if result is not None:
        print(json.dumps({k: result[k] for k in ("model_version", "model_dir", "steps", "complete")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
