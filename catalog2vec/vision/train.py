"""Weakly supervised training of the image model, in the style of torchvision's reference
``train.py``: optimizer and StepLR schedule from config, AMP bf16 + channels_last on CUDA, progress
with images/s, validation every epoch (precision/recall@k and mAP of the tag ranking on the val
split), atomic checkpoints every ``checkpoint_every`` steps and at every epoch end, automatic
resume from the latest checkpoint. Rank 0 alone writes.

Runs single-process (:func:`run_local`: ``python jobs/train.py --no-spark``), under ``torchrun``
(reads RANK / WORLD_SIZE / LOCAL_RANK, gloo on CPU, NCCL on GPU: ``torchrun … jobs/train.py
--no-spark``) and under ``TorchDistributor`` (:func:`run_distributed`: ``spark-submit jobs/train.py``).
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
import math
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from catalog2vec import models, storage, tracking
from catalog2vec.config import Config, TrainSection, config_from_dict
from catalog2vec.errors import InvalidInput, UserError
from catalog2vec.models import model_dir
from catalog2vec.redact import redact
from catalog2vec.vectors import collapse_diagnostics
from catalog2vec.vision.attributes import FIELDS, IGNORE, AttributeTargets, load_attribute_targets
from catalog2vec.vision.batch_input import BatchInput
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
from catalog2vec.vision.gpu_resources import check_spark_gpu_conf
from catalog2vec.vision.losses import (
    NegativeSampler,
    bce_loss,
    bce_pos_weight,
    finish,
    frequency_baseline,
    ranking_sums,
    softmax_loss,
)
from catalog2vec.vision.model import (
    WeakLabelNet,
    atomic_torch_save,
    build_model,
    load_model_dir,
    save_model_dir,
    torch_load,
)
from catalog2vec.vision.prefetch import prefetch, step_inputs, to_device

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from torch.optim.lr_scheduler import LRScheduler

log = logging.getLogger("catalog2vec.train")

# train-section keys that do not change the trained weights (excluded from the model_version hash)
OPERATIONAL_KEYS = frozenset({
    "workers", "checkpoint_every", "log_every", "num_processes", "local_mode", "use_gpu", "mlflow",
    "model_version", "max_steps", "vocab_version",
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


# keys added after model versions were published: left out of the hash while at their default, so a
# config that does not use them keeps its model_version
HASH_IF_SET = {"attribute_heads": [], "attribute_weight": 0.5, "attribute_weights": {}, "attribute_min_count": 5,
               "brightness": 0.0, "contrast": 0.0}


def config_hash(t: TrainSection) -> str:
    d = {k: v for k, v in dataclasses.asdict(t).items()
         if k not in OPERATIONAL_KEYS and not (k in HASH_IF_SET and v == HASH_IF_SET[k])}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def code_version() -> str:
    repo = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=repo, capture_output=True,
                             text=True, timeout=10, check=True)
        return f"git:{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        try:
            return f"catalog2vec=={version('catalog2vec')}"
        except PackageNotFoundError:
            return "unknown"


# ---------------------------------------------------------------- checkpoints
def list_checkpoints(ckpt_dir: str) -> list[tuple[int, str]]:
    found = [(int(m.group(1)), storage.join(ckpt_dir, name)) for name in storage.listdir(ckpt_dir)
             if (m := CKPT_RE.match(name))]
    return sorted(found)


def save_checkpoint(ckpt_dir: str, state: dict[str, Any]) -> str:
    path = storage.join(ckpt_dir, f"ckpt-{int(state['step']):08d}.pt")
    atomic_torch_save(state, path)
    for _, old in list_checkpoints(ckpt_dir)[:-KEEP_CHECKPOINTS]:
        storage.remove(old)
    return path


def load_latest_checkpoint(ckpt_dir: str) -> dict[str, Any] | None:
    for _, path in reversed(list_checkpoints(ckpt_dir)):
        try:
            return dict(torch_load(path, weights_only=True))  # tensors and plain containers only
        except Exception as exc:
            log.warning("checkpoint %s unreadable (%s); trying the previous one", path, exc)
    return None


def rng_state() -> dict[str, Any]:
    """Every RNG's state as tensors, ints and tuples only, so a checkpoint loads with
    ``torch.load(weights_only=True)`` (no pickled numpy object can run code on resume)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    state = {"torch": torch.get_rng_state(),
             "numpy": (str(name), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss),
                       float(gauss)),
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------- pieces
class LossModule(nn.Module):
    """Model + loss in one module, so DistributedDataParallel sees every parameter's gradient."""

    def __init__(self, model: WeakLabelNet, pos_weight: torch.Tensor | None = None,
                 attribute_weights: list[float] | None = None) -> None:
        super().__init__()
        self.model = model
        self.pos_weight = pos_weight
        self.attribute_weights = list(attribute_weights or [])

    def forward(self, images: torch.Tensor, positive: torch.Tensor, targets: torch.Tensor,
                negatives: torch.Tensor, attributes: torch.Tensor | None = None) -> torch.Tensor:
        z = self.model(images)
        if self.model.loss == "bce":
            loss = bce_loss(self.model, z, targets, self.pos_weight)
        else:
            loss = softmax_loss(self.model, z, positive, targets, negatives)
        if attributes is not None and len(self.model.attribute_heads):
            loss = loss + attribute_loss(self.model, z, attributes, self.attribute_weights)
        return loss


def attribute_loss(model: WeakLabelNet, z: torch.Tensor, attributes: torch.Tensor,
                   weights: list[float]) -> torch.Tensor:
    """Σ_f w_f · cross-entropy of head f over the rows that have field f (``IGNORE`` rows masked; a
    batch where no row has the field adds 0, with the head still in the graph for DDP)."""
    total = z.new_zeros((), dtype=torch.float32)
    for j, (logits, w) in enumerate(zip(model.attribute_logits(z).values(), weights, strict=True)):
        target = attributes[:, j]
        ce = nn.functional.cross_entropy(logits.float(), target, ignore_index=IGNORE, reduction="sum")
        total = total + w * ce / (target != IGNORE).sum().clamp(min=1)
    return total


def attribute_weights(t: TrainSection) -> list[float]:
    """The loss weight of every attribute head, in ``train.attribute_heads`` order."""
    return [float(t.attribute_weights.get(f, t.attribute_weight)) for f in t.attribute_heads]


def param_groups(t: TrainSection, model: nn.Module) -> list[dict[str, Any]]:
    """One group, or (``no_decay_1d``) decayed weights + undecayed biases / norms / temperature."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not t.no_decay_1d:
        return [{"params": params}]
    return [{"params": [p for p in params if p.dim() > 1]},
            {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}]


def make_scheduler(t: TrainSection, optimizer: torch.optim.Optimizer, total_steps: int) -> LRScheduler:
    """``step``: StepLR stepped once per epoch; ``cosine``: linear warm-up over ``warmup_epochs``
    (from lr/100) then cosine decay to 0 at the last step, stepped once per optimizer step."""
    if t.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=t.lr_step_size, gamma=t.lr_gamma)

    warmup = round(t.warmup_epochs * total_steps / max(t.epochs, 1))

    def factor(step: int) -> float:
        if step < warmup:
            return 0.01 + 0.99 * step / warmup
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(total_steps - warmup, 1))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_optimizer(t: TrainSection, params: list[dict[str, Any]]) -> torch.optim.Optimizer:
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    raise InvalidInput(f"unknown optimizer {t.optimizer!r}; choose sgd | adam | adamw")


def validate_train_config(t: TrainSection) -> None:
    if t.loss not in ("softmax", "bce"):
        raise InvalidInput(f"train.loss must be softmax or bce, got {t.loss!r}")
    for name, allowed in (("head", ("linear", "cosine")), ("augment", ("crop", "product")),
                          ("lr_schedule", ("step", "cosine"))):
        if getattr(t, name) not in allowed:
            raise InvalidInput(f"train.{name} must be one of {allowed}, got {getattr(t, name)!r}")
    if not 0 < t.max_label_share <= 1 or t.warmup_epochs < 0 or t.bce_pos_weight_power < 0 or t.init_scale <= 0:
        raise InvalidInput("train.max_label_share must be in (0, 1]; warmup_epochs, bce_pos_weight_power >= 0; "
                           "init_scale > 0")
    for name in ("epochs", "batch_size", "image_size", "lr_step_size", "top_k", "log_every"):
        if getattr(t, name) < 1:
            raise InvalidInput(f"train.{name} must be >= 1, got {getattr(t, name)}")
    if t.max_steps < 0 or t.checkpoint_every < 0 or t.workers < 0:
        raise InvalidInput("train.max_steps, train.checkpoint_every and train.workers must be >= 0")
    validate_attribute_config(t)


def validate_attribute_config(t: TrainSection) -> None:
    """Attribute heads: distinct known fields, weights >= 0 for listed fields only; jitter in [0, 1)."""
    heads = list(t.attribute_heads)
    if any(f not in FIELDS for f in heads) or len(set(heads)) != len(heads):
        raise InvalidInput(f"train.attribute_heads must be distinct fields of {FIELDS}, got {heads}")
    stray = sorted(set(t.attribute_weights) - set(heads))
    if stray:
        raise InvalidInput(f"train.attribute_weights names {stray}, which are not in train.attribute_heads {heads}")
    if t.attribute_weight < 0 or any(w < 0 for w in t.attribute_weights.values()) or t.attribute_min_count < 1:
        raise InvalidInput("train.attribute_weight(s) must be >= 0 and train.attribute_min_count >= 1")
    for name in ("brightness", "contrast"):
        if not 0 <= getattr(t, name) < 1:
            raise InvalidInput(f"train.{name} must be in [0, 1), got {getattr(t, name)}")


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model: WeakLabelNet, root: str, ids: list[str], labels: list[list[int]], t: TrainSection,
             device: torch.device, use_amp: bool, world: int,
             embeddings: list[np.ndarray] | None = None,
             attributes: np.ndarray | None = None) -> dict[str, float]:
    """Tag-ranking metrics of this rank's shard, summed over ranks (all_reduce); the embeddings
    of the shard are appended to ``embeddings`` when given; with ``attributes`` (the shard's
    targets) each attribute head's accuracy over the items that have the field (``<field>_accuracy``)."""
    k = t.top_k
    sums = {f"precision@{k}": 0.0, f"recall@{k}": 0.0, "map": 0.0, "n": 0.0}
    fields = list(model.attribute_heads) if attributes is not None else []
    hits = {f"{f}_{c}": 0.0 for f in fields for c in ("correct", "n")}
    if ids:
        ds = ImageLabelDataset(load_image_bytes(root, ids), labels, t.image_size, train=False)
        loader = DataLoader(ds, batch_size=max(t.batch_size, 32), shuffle=False, collate_fn=collate,
                            num_workers=min(t.workers, 1))
        was_training = model.training
        model.eval()
        for batch in loader:
            x = batch["image"].to(device)
            if use_amp:
                x = x.to(memory_format=torch.channels_last)
            with autocast(device, use_amp):
                z = model(x)
                scores = model.word_logits(z).float().cpu().numpy()
            if embeddings is not None:
                embeddings.append(z.float().cpu().numpy())
            for key, val in ranking_sums(scores, batch["labels"], k).items():
                sums[key] += val
            if attributes is not None:
                _attribute_hits(model, z, attributes[batch["index"].numpy()], hits)
        model.train(was_training)
    if world > 1:
        both = {**sums, **hits}
        keys = sorted(both)
        buf = torch.tensor([both[key] for key in keys], dtype=torch.float64)
        dist.all_reduce(buf)
        reduced = dict(zip(keys, buf.tolist(), strict=True))
        sums, hits = {key: reduced[key] for key in sums}, {key: reduced[key] for key in hits}
    acc = {f"{f}_accuracy": hits[f"{f}_correct"] / max(hits[f"{f}_n"], 1.0) for f in fields}
    return {**finish(sums), **acc}


def _attribute_hits(model: WeakLabelNet, z: torch.Tensor, targets: np.ndarray, hits: dict[str, float]) -> None:
    """Add each head's correct predictions and scored rows (rows without the field skipped) to ``hits``."""
    for j, (f, logits) in enumerate(model.attribute_logits(z).items()):
        y = torch.from_numpy(targets[:, j]).to(logits.device)
        has = y != IGNORE
        hits[f"{f}_correct"] += float((logits.argmax(dim=-1)[has] == y[has]).sum())
        hits[f"{f}_n"] += float(has.sum())


# ---------------------------------------------------------------- the loop
def train(cfg: Config, track: bool = True) -> TrainResult | None:
    """Train (or resume) per ``cfg.train``; returns the result on rank 0, None on other ranks.
    ``track=False``: rank 0 does not log to MLflow (the driver does, :func:`track_from_driver`)."""
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
        return _train(cfg, t, rank, world, device, track)
    finally:
        if own_group and dist.is_initialized():
            dist.destroy_process_group()


@dataclass
class RunSetup:
    """Everything :func:`prepare_run` builds for one process: data, model, optimizer, schedule."""

    cfg: Config
    t: TrainSection
    rank: int
    world: int
    device: torch.device
    use_amp: bool
    index: DataIndex
    vocab_version: str
    model_version: str
    out_dir: str
    ckpt_dir: str
    steps_per_epoch: int
    total_steps: int
    stop_at: int
    shard_ids: list[str]
    sampler: EpochBatchSampler
    loader: DataLoader[Any]
    model: WeakLabelNet
    net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: LRScheduler
    negatives: NegativeSampler
    t_start: float
    # CUDA: the batched input path (JPEG bytes decoded by nvJPEG, augmented on the GPU); None: the
    # DataLoader workers decode and augment with PIL (the CPU reference)
    batch_input: BatchInput | None = None
    # attribute heads: class lists and targets of every split; this rank's shard targets (items, fields)
    attrs: AttributeTargets | None = None
    shard_attrs: torch.Tensor | None = None


@dataclass
class Progress:
    """The state a checkpoint carries forward (plus this process's bookkeeping)."""

    step: int = 0
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    train_time: float = 0.0
    images_trained: int = 0
    resumed_from: int = 0
    seen: set[str] = dataclasses.field(default_factory=set)
    loss_ema: float | None = None


def _seed_everything(t: TrainSection, device: torch.device) -> None:
    if t.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    random.seed(t.seed)
    np.random.seed(t.seed)
    torch.manual_seed(t.seed)


def _init_model(t: TrainSection, index: DataIndex, device: torch.device, use_amp: bool,
                attrs: AttributeTargets | None = None) -> tuple[WeakLabelNet, torch.Tensor | None]:
    """The network (logit scale, prior bias from the training split's label frequencies, attribute
    heads) and the BCE positive weights."""
    train_split = index.splits["train"]
    heads = {f: len(attrs.classes[f]) for f in attrs.fields} if attrs is not None else None
    model = build_model(t.arch, index.vocab.size, t.embed_dim, t.dropout, t.init_weights, t.loss, t.head, heads)
    train_df = np.zeros(index.vocab.size, dtype=np.int64)  # document frequency of every word
    for labs in train_split.labels:
        train_df[labs] += 1
    with torch.no_grad():
        model.logit_scale.fill_(float(np.log(t.init_scale)))
    if t.init_bias_prior:
        model.init_bias(torch.from_numpy(train_df / max(len(train_split.labels), 1)))
    model = model.to(device)
    if use_amp:
        model = model.to(memory_format=torch.channels_last)
    pos_weight = (bce_pos_weight(train_df, len(train_split.labels), t.bce_pos_weight_power).to(device)
                  if t.loss == "bce" and t.bce_pos_weight_power > 0 else None)
    return model, pos_weight


def prepare_run(cfg: Config, t: TrainSection, rank: int, world: int, device: torch.device) -> RunSetup:
    """Seeds, the data index and this rank's shard loader, the model, optimizer and schedule."""
    t_start = time.time()
    use_amp = t.amp and device.type == "cuda"
    _seed_everything(t, device)
    lakehouse = cfg.lakehouse
    vocab_version = t.vocab_version or latest_vocab_version(lakehouse)
    index: DataIndex = load_index(lakehouse, vocab_version, t.max_label_share)
    model_version = models.derive_version(t.model_version, t.arch, t.loss, vocab_version, config_hash(t))
    out_dir = model_dir(lakehouse, model_version)
    train_split = index.splits["train"]
    steps_per_epoch = len(train_split.item_ids) // world // t.batch_size
    if steps_per_epoch < 1:
        raise InvalidInput(
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
    attrs = (load_attribute_targets(lakehouse, {s: sp.item_ids for s, sp in index.splits.items()},
                                    list(t.attribute_heads), t.attribute_min_count) if t.attribute_heads else None)
    batch_input = BatchInput(t.image_size, device, channels_last=use_amp) if device.type == "cuda" else None
    train_ds = ImageLabelDataset(load_image_bytes(lakehouse, shard.item_ids), shard.labels, t.image_size,
                                 train=True, seed=t.seed, scale_min=t.scale_min, augment=t.augment,
                                 raw=batch_input is not None, brightness=t.brightness, contrast=t.contrast)
    sampler = EpochBatchSampler(len(shard.item_ids), t.batch_size, steps_per_epoch, t.seed, rank)
    loader = DataLoader(train_ds, batch_sampler=sampler, collate_fn=collate, num_workers=t.workers,
                        pin_memory=device.type == "cuda", persistent_workers=False)

    model, pos_weight = _init_model(t, index, device, use_amp, attrs)
    optimizer = make_optimizer(t, param_groups(t, model))
    scheduler = make_scheduler(t, optimizer, total_steps)
    loss_module = LossModule(model, pos_weight, attribute_weights(t))
    net: nn.Module = loss_module
    if world > 1:
        net = nn.parallel.DistributedDataParallel(loss_module, device_ids=[device.index] if device.type == "cuda"
                                                  else None)
    return RunSetup(cfg, t, rank, world, device, use_amp, index, vocab_version, model_version, out_dir,
                    storage.join(out_dir, "checkpoints"), steps_per_epoch, total_steps, stop_at, shard.item_ids,
                    sampler, loader, model, net, optimizer, scheduler,
                    NegativeSampler(index.vocab.counts, t.negative_sampler), t_start, batch_input, attrs,
                    torch.from_numpy(attrs.targets["train"][rank::world]) if attrs is not None else None)


def resume(run: RunSetup) -> Progress:
    """Progress from the latest checkpoint of this model version (weights, optimizer, schedule, RNG),
    or a fresh start."""
    ckpt = load_latest_checkpoint(run.ckpt_dir)
    if ckpt is None:
        return Progress()
    if ckpt.get("vocab_version") != run.vocab_version or ckpt.get("model_version") != run.model_version:
        raise InvalidInput(f"checkpoint in {run.ckpt_dir} belongs to another run "
                           f"({ckpt.get('model_version')}, vocab {ckpt.get('vocab_version')})")
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    step = int(ckpt["step"])
    progress = Progress(step=step, history=list(ckpt.get("history", [])),
                        train_time=float(ckpt.get("train_time_s", 0.0)),
                        images_trained=int(ckpt.get("images_trained", 0)), resumed_from=step)
    set_rng_state(ckpt["rng"])
    if run.rank == 0:
        log.info("resumed from %s/ckpt-%08d.pt (step %d)", run.ckpt_dir, step, step)
    return progress


def save_progress(run: RunSetup, p: Progress) -> None:
    """An atomic checkpoint (rank 0 alone writes)."""
    if run.rank != 0:
        return
    save_checkpoint(run.ckpt_dir, {
        "step": p.step, "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(), "rng": rng_state(), "history": p.history,
        "config": redact(run.cfg.to_dict()), "vocab_version": run.vocab_version, "model_version": run.model_version,
        "train_time_s": p.train_time, "images_trained": p.images_trained,
    })


def train_one_epoch(run: RunSetup, p: Progress, epoch: int) -> int:
    """The steps of one epoch from ``p.step`` (a resumed run starts mid-epoch) up to its end or
    ``stop_at``; checkpoints every ``checkpoint_every`` steps. Returns the images this rank saw."""
    t, index, device = run.t, run.index, run.device
    t_epoch, n_epoch = time.time(), 0
    run.net.train()
    # the loss EMA stays on the device (float64: the same arithmetic as Python floats) and is read
    # back only every log_every steps and at the end: no host sync per step
    ema: torch.Tensor | None = None if p.loss_ema is None else torch.tensor(p.loss_ema, dtype=torch.float64,
                                                                             device=device)
    def prepare(batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # JPEG bytes → augmented batch on the GPU (same seeds) when batch_input, else the loader's
        return step_inputs(batch, device, index.vocab.size, run.batch_input, t.scale_min, t.augment, run.use_amp,
                           t.brightness, t.contrast)

    # the next batch is prepared while this step computes (a side CUDA stream; vision/prefetch.py)
    for batch, (x, positive, targets) in prefetch(run.loader, prepare, device):
        t_step = time.time()
        # every random draw of a step is a function of (seed, step, rank): exact resume
        torch.manual_seed(sample_seed(t.seed, p.step, 2_000_000 + run.rank))
        gen = torch.Generator().manual_seed(sample_seed(t.seed, p.step, 3_000_000))
        negatives = torch.empty(0, dtype=torch.long)
        if t.loss == "softmax":
            # the same negatives on every rank (generator seeded by step), none a positive of this batch
            negatives = run.negatives.sample(t.num_negatives, batch["positive"], gen)
        attributes = None if run.shard_attrs is None else to_device(run.shard_attrs[batch["index"]], device)
        with autocast(device, run.use_amp):
            loss = run.net(x, positive, targets, to_device(negatives, device), attributes)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        if t.lr_schedule == "cosine":
            run.scheduler.step()
        p.step += 1
        n = int(x.shape[0])
        n_epoch += n
        p.images_trained += n * run.world
        p.seen.update(run.shard_ids[i] for i in batch["index"].tolist())
        lt = loss.detach().double()
        ema = lt if ema is None else 0.9 * ema + 0.1 * lt
        p.train_time += time.time() - t_step
        if run.rank == 0 and (p.step % t.log_every == 0 or p.step == run.stop_at):
            lv = float(lt)  # the one host sync, every log_every steps
            p.loss_ema = float(ema)
            ips = n_epoch * run.world / max(time.time() - t_epoch, 1e-9)
            log.info("epoch %d step %d/%d loss %.4f (ema %.4f) lr %.4g %.1f img/s", epoch, p.step, run.stop_at, lv,
                     p.loss_ema, run.optimizer.param_groups[0]["lr"], ips)
        if t.checkpoint_every and p.step % t.checkpoint_every == 0 and p.step % run.steps_per_epoch:
            save_progress(run, p)
        if p.step >= run.stop_at:
            break
    if ema is not None:
        p.loss_ema = float(ema)
    return n_epoch


def end_epoch(run: RunSetup, p: Progress, epoch: int, n_epoch: int, t_epoch: float,
              tracker: tracking.Run | None) -> None:
    """Epoch boundary: step schedule, validation on the val split, history entry, checkpoint."""
    t = run.t
    if t.lr_schedule == "step":
        run.scheduler.step()
    val_split = run.index.splits["val"].shard(run.rank, run.world)
    metrics = evaluate(run.model, run.cfg.lakehouse, val_split.item_ids, val_split.labels, t, run.device,
                       run.use_amp, run.world, attributes=_split_attrs(run, "val"))
    entry = {"epoch": epoch + 1, "step": p.step, "train_loss_ema": p.loss_ema,
             "epoch_images_per_s": n_epoch * run.world / max(time.time() - t_epoch, 1e-9),
             "lr": run.optimizer.param_groups[0]["lr"], **{f"val_{k}": v for k, v in metrics.items()}}
    p.history.append(entry)
    if run.rank == 0:
        log.info("epoch %d done: %s", epoch + 1, json.dumps(entry))
        if tracker is not None:  # per epoch, at its global step
            tracker.log_metrics({k: v for k, v in entry.items() if k != "step"}, step=p.step)
    save_progress(run, p)


def _split_attrs(run: RunSetup, split: str) -> np.ndarray | None:
    """This rank's shard of a split's attribute targets (None without attribute heads)."""
    return None if run.attrs is None else run.attrs.targets[split][run.rank::run.world]


def final_test(run: RunSetup, p: Progress) -> tuple[dict[str, float], list[np.ndarray], list[Any]]:
    """Test-split metrics (all ranks take part), rank 0's test embeddings, the item ids each rank saw."""
    test_split = run.index.splits["test"].shard(run.rank, run.world)
    test_z: list[np.ndarray] = []
    test_metrics = evaluate(run.model, run.cfg.lakehouse, test_split.item_ids, test_split.labels, run.t,
                            run.device, run.use_amp, run.world, test_z, _split_attrs(run, "test"))
    seen_all: list[Any] = [None] * run.world
    if run.world > 1:
        dist.all_gather_object(seen_all, sorted(p.seen))
    else:
        seen_all = [sorted(p.seen)]
    return test_metrics, test_z, seen_all


def build_card(run: RunSetup, p: Progress, test_metrics: dict[str, float], test_z: list[np.ndarray],
               seen_all: list[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model card's run fields and the final metrics."""
    t, index, world = run.t, run.index, run.world
    baseline = {s: frequency_baseline(index.splits["train"].labels, index.splits[s].labels, index.vocab.size,
                                      t.top_k) for s in ("val", "test")}
    flat = [i for ids in seen_all for i in ids]
    final_metrics: dict[str, Any] = {"per_epoch": p.history, "val": p.history[-1] if p.history else {},
                                     "test": test_metrics}
    # collapse diagnostics of rank 0's test shard (the whole test split single-process)
    collapse = collapse_diagnostics(np.concatenate(test_z)) if test_z else {}
    card_extra: dict[str, Any] = {
        "model_version": run.model_version,
        "run_id": run.cfg.run_id,
        "created_at": datetime.now(UTC).isoformat(),
        "code_version": code_version(),
        "torch_version": torch.__version__,
        "complete": p.step >= run.total_steps,
        "steps": p.step,
        "steps_per_epoch": run.steps_per_epoch,
        "epochs_completed": p.step // run.steps_per_epoch,
        "resumed_from_step": p.resumed_from,
        "world_size": world,
        "device": str(run.device),
        "amp_bf16": run.use_amp,
        "wall_time_s": round(time.time() - run.t_start, 3),
        "train_time_s": round(p.train_time, 3),
        "images_trained": p.images_trained,
        "images_per_s": round(p.images_trained / max(p.train_time, 1e-9), 2),
        "data": {**index.counts, "ranks": [{"rank": r, "shard_items": len(index.splits["train"].shard(r, world)
                                                                          .item_ids), "seen_items": len(ids)}
                                           for r, ids in enumerate(seen_all)],
                 "ranks_disjoint": len(flat) == len(set(flat))},
        "metrics": final_metrics,
        "baseline_frequency": baseline,
        "collapse": collapse,
    }
    if run.attrs is not None:  # which fields, their classes and loss weights (load_model_dir rebuilds the heads)
        weights = dict(zip(t.attribute_heads, attribute_weights(t), strict=True))
        card_extra["attribute_heads"] = run.attrs.card(weights, t.attribute_min_count)
    return card_extra, final_metrics


def _train(cfg: Config, t: TrainSection, rank: int, world: int, device: torch.device,
           track: bool = True) -> TrainResult | None:
    """prepare_run -> resume -> (train_one_epoch -> end_epoch)* -> final_test -> build_card -> publish."""
    run = prepare_run(cfg, t, rank, world, device)
    p = resume(run)
    tracker = _start_tracking(cfg, run.model_version, run.vocab_version) if (t.mlflow and track and rank == 0) else None
    while p.step < run.stop_at:
        epoch, start = divmod(p.step, run.steps_per_epoch)
        run.sampler.set_epoch(epoch, start)
        t_epoch = time.time()
        n_epoch = train_one_epoch(run, p, epoch)
        if p.step % run.steps_per_epoch == 0:  # epoch finished: schedule, validate, checkpoint
            end_epoch(run, p, epoch, n_epoch, t_epoch, tracker)
        elif p.step >= run.stop_at:
            save_progress(run, p)

    test_metrics, test_z, seen_all = final_test(run, p)
    if rank != 0:
        return None
    card_extra, final_metrics = build_card(run, p, test_metrics, test_z, seen_all)
    complete = bool(card_extra["complete"])
    config = redact({**cfg.to_dict()["train"], "image_size": t.image_size, "lakehouse": str(cfg.lakehouse)})
    storage.write_json(storage.join(run.out_dir, "shards.json"), {str(r): ids for r, ids in enumerate(seen_all)},
                       indent=None)
    save_model_dir(run.out_dir, run.model, run.index.vocab.tokens, run.vocab_version, config,
                   card_extra)  # the card: published
    log.info("model written to %s (complete=%s, %d steps, test %s, frequency baseline %s)", run.out_dir, complete,
             p.step, json.dumps(test_metrics), json.dumps(card_extra["baseline_frequency"]["test"]))
    if tracker is not None:
        _finish_tracking(tracker, run.model, run.out_dir, run.model_version, test_metrics, t.image_size,
                         cfg.embed.top_n)
    # a candidate only: models/LATEST, the champion alias and the *_latest views move in jobs/promote.py
    return TrainResult(run.model_version, str(run.out_dir), run.vocab_version, p.step, p.step // run.steps_per_epoch,
                       complete, p.resumed_from, final_metrics)


def _start_tracking(cfg: Config, model_version: str, vocab_version: str) -> tracking.Run:
    """MLflow run named after the model version; params = the train section (+ vocab_version)."""
    return tracking.start_run(cfg, "image", model_version,
                              redact({**cfg.to_dict()["train"], "vocab_version": vocab_version, "run_id": cfg.run_id}))


def _finish_tracking(tracker: tracking.Run, model: WeakLabelNet, out_dir: str, model_version: str,
                     test_metrics: dict[str, Any], image_size: int, top_n: int) -> None:
    """Test metrics, the model card, the vocabulary, the JPEG-bytes pyfunc (``jpeg``) and the torch
    model (signature, registered as the candidate, tagged with the pyfunc's URI)."""
    tracker.log_metrics(test_metrics, prefix="test_")
    tracker.log_dict(storage.read_json(storage.join(out_dir, "model_card.json")), "model_card.json")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("vocab.parquet", "shards.json"):
            storage.get_file(storage.join(out_dir, name), os.path.join(tmp, name))
        tracker.log_artifacts(tmp, "catalog2vec")
        data = os.path.join(tmp, "model")
        os.makedirs(data)
        for name in ("model.pt", "vocab.parquet", models.CARD_FILE):
            storage.get_file(storage.join(out_dir, name), os.path.join(data, name))
        example = torch.full((3, 16, 16), 128, dtype=torch.uint8)
        from torchvision.io import encode_jpeg

        jpeg_uri = tracker.log_jpeg_model(data, top_n, bytes(encode_jpeg(example).numpy().tobytes()))
    tracker.log_pytorch_model(model, image_size, model_version, {tracking.JPEG_TAG: jpeg_uri})
    tracker.end()


def track_from_driver(cfg: Config, result: Mapping[str, Any]) -> None:
    """MLflow tracking after TorchDistributor returned (the ranks never import mlflow: the executors'
    runtime archive has none): the same run layout as rank 0's in-process tracking, params, the
    per-epoch metrics at their steps, then :func:`_finish_tracking` on the published model directory."""
    tracker = _start_tracking(cfg, str(result["model_version"]), str(result["vocab_version"]))
    try:
        metrics = result.get("metrics") or {}
        for entry in metrics.get("per_epoch", []):
            tracker.log_metrics({k: v for k, v in entry.items() if k != "step"}, step=int(entry["step"]))
        loaded = load_model_dir(str(result["model_dir"]))
        _finish_tracking(tracker, loaded.model, str(result["model_dir"]), str(result["model_version"]),
                         dict(metrics.get("test", {})), loaded.image_size, cfg.embed.top_n)
    except BaseException:
        tracker.end("FAILED")
        raise


def train_entry(config: dict[str, Any], s3: dict[str, Any] | None = None,
                track: bool = True) -> dict[str, Any] | None:
    """Picklable entry point (TorchDistributor, torchrun). The worker gets the driver's *resolved*
    configuration by content (``Config.to_dict()``), never a driver-side path, and the driver's S3
    endpoint/credentials (``S3Settings`` fields) for the storage layer.

    A :class:`UserError` comes back as ``{"user_error": {...}}`` rather than an exception, which
    TorchDistributor would turn into an opaque ``RuntimeError``; :func:`run_distributed` re-raises it.
    ``track=False`` (TorchDistributor): no MLflow in the ranks, the driver logs the run afterwards."""
    die_with_launcher()
    logging.basicConfig(level=logging.INFO, format="[train] %(asctime)s %(levelname)s %(message)s", force=True)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available():
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["WORLD_SIZE"])))
    if s3 is not None:
        storage.configure(storage.S3Settings(**s3))
    try:
        result = train(config_from_dict(config), track)
    except UserError as exc:
        return {"user_error": {"type": type(exc).__name__, "message": str(exc)}}
    return result.to_dict() if result is not None else None


def run_local(cfg: Config) -> dict[str, Any] | None:
    """Train in this process, without Spark (alone, or as one rank under ``torchrun``):
    :func:`train_entry` with ``cfg`` and this process's S3 settings. Returns rank 0's result dict,
    ``{"user_error": {...}}`` for a :class:`UserError`, or ``None`` on the other ranks."""
    return train_entry(cfg.to_dict(), dataclasses.asdict(storage.s3_settings()))


def run_distributed(spark: SparkSession, cfg: Config) -> dict[str, Any]:
    """Launch :func:`train_entry` with ``TorchDistributor`` per ``cfg.train`` (gloo on CPU, NCCL on
    GPU executors). Ships the resolved config (lakehouse made absolute) and the session's S3
    settings by content; local workers die with this process; returns rank 0's result."""
    from pyspark.ml.torch.distributor import TorchDistributor

    t = cfg.train
    if t.use_gpu and not t.local_mode:  # fail fast: TorchDistributor needs whole GPUs per process
        check_spark_gpu_conf(spark.sparkContext.getConf().getAll(), "train", t.num_processes)
    if t.mlflow:  # the driver logs the run after the distributor returns: it needs mlflow, the ranks do not
        tracking.check_available()
    settings = storage.configure_from_spark(spark)
    shipped = dataclasses.replace(cfg, lakehouse=storage.normalize(cfg.lakehouse)).to_dict()
    os.environ[LAUNCHER_PID_ENV] = str(os.getpid())  # local_mode workers die with this process
    distributor = TorchDistributor(num_processes=t.num_processes, local_mode=t.local_mode, use_gpu=t.use_gpu)
    result = distributor.run(train_entry, shipped, dataclasses.asdict(settings), False)  # the driver tracks
    if result is None:
        raise RuntimeError("training returned no result from rank 0")
    if "user_error" in result:
        raise InvalidInput(result["user_error"]["message"])
    if t.mlflow:
        track_from_driver(cfg, result)
    return dict(result)


LAUNCHER_PID_ENV = "CATALOG2VEC_LAUNCHER_PID"


def die_with_launcher(poll_s: float = 0.5) -> None:
    """Make this training process die with the job that launched it.

    TorchDistributor's torchrun starts workers in a session of their own, so a ``kill -9`` of the
    job's process group used to leave them training (and publishing a model) for a run the
    scheduler saw fail. On Linux ``PR_SET_PDEATHSIG`` sends SIGKILL when the parent (the torchrun
    agent) dies; a daemon thread also watches the launcher pid (``CATALOG2VEC_LAUNCHER_PID``, set
    by jobs/train.py) and the parent pid, and hard-exits as soon as either is gone."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    launcher = int(os.environ.get(LAUNCHER_PID_ENV, "0") or 0)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def watch() -> None:
        while True:
            if os.getppid() != parent or (launcher and not alive(launcher)):
                os._exit(137)
            time.sleep(poll_s)

    if os.getppid() != parent or (launcher and not alive(launcher)):
        os._exit(137)
    threading.Thread(target=watch, name="die-with-launcher", daemon=True).start()
