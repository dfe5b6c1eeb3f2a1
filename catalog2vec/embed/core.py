"""Pure batch inference: JPEG bytes → tensors → (embedding, L2 norm, top-N tag indices/probabilities).

One implementation shared by the Spark ``predict_batch_udf`` (:mod:`catalog2vec.embed.udf`), the Beam
``RunInference`` pipeline (``pipelines/embed.py``) and the benchmark. No Spark or Beam import here.

* images go through the batched input path (:mod:`catalog2vec.vision.batch_input`): decoded in one
  call per batch, on the GPU (nvJPEG) when the model is on CUDA, and transformed there;
* images that cannot be decoded do not fail the batch: they get a zero tensor and ``ok = 0`` (the
  job quarantines them with reason ``image_undecodable``);
* inference runs in eval mode under ``torch.inference_mode``; on CUDA the model and the batch are
  ``channels_last`` and the forward runs under bf16 autocast (the outputs are returned as float32).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from catalog2vec.errors import InvalidInput

if TYPE_CHECKING:
    from catalog2vec.vision.batch_input import InputBatch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchOutput:
    """Per-image results of one batch (row i belongs to input image i)."""

    embedding: np.ndarray  # (B, D) float32, the pooled (projected) feature z
    norm: np.ndarray  # (B,) float32, ||z||_2
    tag_index: np.ndarray  # (B, N) int32, vocabulary indices by decreasing probability
    tag_probability: np.ndarray  # (B, N) float32
    ok: np.ndarray  # (B,) int32, 1 = decoded, 0 = undecodable (zeros elsewhere)
    probabilities: np.ndarray | None = None  # (B, K) float32 when asked for

    def __len__(self) -> int:
        return int(self.ok.shape[0])


def select_device(preference: str = "auto") -> torch.device:
    """``cpu`` | ``cuda`` | ``auto``: the GPU Spark assigned to this task (resource ``gpu``), else
    ``cuda:0`` when CUDA is available, else the CPU."""
    if preference == "cpu":
        return torch.device("cpu")
    if preference not in ("auto", "cuda") and not preference.startswith("cuda:"):
        raise InvalidInput(f"embed.device must be auto | cpu | cuda, got {preference!r}")
    if not torch.cuda.is_available():
        if preference != "auto":
            raise InvalidInput(f"embed.device={preference!r} but CUDA is not available")
        return torch.device("cpu")
    if preference.startswith("cuda:"):
        return torch.device(preference)
    try:  # one GPU per task on a cluster: spark.task.resource.gpu.amount=1
        from pyspark import TaskContext

        ctx = TaskContext.get()
        if ctx is not None and "gpu" in ctx.resources():
            return torch.device(f"cuda:{ctx.resources()['gpu'].addresses[0]}")
    except ImportError:  # pragma: no cover - Beam workers without pyspark
        pass
    return torch.device("cuda:0")


def _task_cpus() -> int:
    """Inside a Spark task: ``spark.task.cpus`` (the cores Spark reserved for this task), so that
    concurrent Python workers do not oversubscribe the CPU; 0 (torch default) elsewhere."""
    try:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        return int(ctx.cpus()) if ctx is not None else 0
    except ImportError:  # pragma: no cover
        return 0


class Preprocessor:
    """Decode + eval transform (resize, center crop, normalise) for one image size, batched on
    ``device`` (:class:`catalog2vec.vision.batch_input.BatchInput`: nvJPEG + on-GPU transforms on
    CUDA, libjpeg-turbo + the same tensor transforms on the CPU, PIL for non-JPEG bytes)."""

    def __init__(self, image_size: int, device: torch.device | str = "cpu") -> None:
        from catalog2vec.vision.batch_input import BatchInput

        self.image_size = int(image_size)
        self.input = BatchInput(self.image_size, torch.device(device))

    def one(self, data: bytes | bytearray | memoryview | None) -> tuple[torch.Tensor, bool]:
        x, ok = self.batch([data])
        return x[0], bool(ok[0])

    def run(self, images: Sequence[Any]) -> InputBatch:
        """The batch on the device, the ok flags and the reason per undecodable image."""
        return self.input.eval(list(images))

    def batch(self, images: Sequence[Any]) -> tuple[torch.Tensor, np.ndarray]:
        """(B, 3, S, S) float32 tensor and the ok flags (int32); an undecodable image is a zero
        tensor with ok = 0 (logged, never raised)."""
        out = self.run(images)
        return out.x, out.ok


class InferenceModel:
    """A loaded model directory ready for batched inference on one device."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokens: list[str],
        image_size: int,
        device: torch.device,
        top_n: int,
        full_probabilities: bool = False,
        card: dict[str, Any] | None = None,
        fixed_batch: int = 0,
    ) -> None:
        if top_n < 1:
            raise InvalidInput(f"embed.top_n must be >= 1, got {top_n}")
        self.device = device
        self.model = model.to(device).eval()
        if device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.tokens = tokens
        self.image_size = int(image_size)
        self.top_n = min(int(top_n), len(tokens))
        self.full_probabilities = full_probabilities
        self.card = card or {}
        self.preprocessor = Preprocessor(self.image_size, device)
        # CPU kernels (oneDNN convolutions, the GEMM of the projection) reduce in an order that
        # depends on the batch size: the same image embedded in a batch of 7 and in a batch of 16
        # differs in the last bits. With ``fixed_batch`` every CPU forward runs on exactly that many
        # rows (a short batch padded with copies of its first row, the padding dropped), so an
        # item's embedding does not depend on how Spark split partitions or Arrow batches: a
        # cluster run equals a local run bit for bit. The padding costs at most fixed_batch - 1 rows
        # per partition tail. Measured: any row position inside a fixed-size batch gives the same
        # embedding bits; the tag probabilities' small GEMM is not position-invariant for every
        # batch size (8, 12), so they agree to float precision (1e-6), not always to the bit.
        self.fixed_batch = int(fixed_batch)

    @classmethod
    def from_dir(
        cls,
        model_dir: str,
        top_n: int,
        device: str = "auto",
        threads: int = 0,
        full_probabilities: bool = False,
        fixed_batch: int = 0,
    ) -> InferenceModel:
        from catalog2vec.vision.model import load_model_dir

        dev = select_device(device)
        if threads <= 0 and dev.type == "cpu":
            threads = _task_cpus()
        if threads > 0:
            torch.set_num_threads(threads)
        loaded = load_model_dir(model_dir, map_location="cpu")
        log.info("loaded %s (%s, %d words, %d px) on %s", model_dir, loaded.card.get("arch"),
                 len(loaded.tokens), loaded.image_size, dev)
        return cls(loaded.model, loaded.tokens, loaded.image_size, dev, top_n, full_probabilities, loaded.card,
                   fixed_batch=fixed_batch)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-processed batch → (z float32 (B, D), tag probabilities float32 (B, K))."""
        model: Any = self.model
        with torch.inference_mode():
            x = x.to(self.device, non_blocking=True)
            if self.device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    z = model(x)
                    probs = model.tag_probabilities(z)
            elif self.fixed_batch > 0 and x.shape[0] != self.fixed_batch:
                zs, ps = [], []
                for start in range(0, x.shape[0], self.fixed_batch):
                    part = x[start : start + self.fixed_batch]
                    n = part.shape[0]
                    if n < self.fixed_batch:  # pad with copies of the first row, dropped below
                        part = torch.cat([part, part[:1].expand(self.fixed_batch - n, *part.shape[1:])])
                    z_part = model(part)
                    zs.append(z_part[:n])
                    ps.append(model.tag_probabilities(z_part)[:n])
                z, probs = torch.cat(zs), torch.cat(ps)
            else:
                z = model(x)
                probs = model.tag_probabilities(z)
            return z.float(), probs.float()

    def predict_tensors(self, x: torch.Tensor, ok: np.ndarray) -> BatchOutput:
        if x.shape[0] == 0:
            d = int(getattr(self.model, "embedding_dim", 0))
            empty_f = np.zeros((0, self.top_n), np.float32)
            return BatchOutput(np.zeros((0, d), np.float32), np.zeros(0, np.float32),
                               np.zeros((0, self.top_n), np.int32), empty_f, ok)
        z, probs = self.forward(x)
        top_p, top_i = probs.topk(self.top_n, dim=1)
        return BatchOutput(
            embedding=z.cpu().numpy().astype(np.float32, copy=False),
            norm=torch.linalg.vector_norm(z, dim=1).cpu().numpy().astype(np.float32),
            tag_index=top_i.cpu().numpy().astype(np.int32),
            tag_probability=top_p.cpu().numpy().astype(np.float32),
            ok=ok,
            probabilities=probs.cpu().numpy().astype(np.float32) if self.full_probabilities else None,
        )

    def predict(self, images: Sequence[Any]) -> BatchOutput:
        """JPEG bytes (one per image) → :class:`BatchOutput`."""
        x, ok = self.preprocessor.batch(images)
        return self.predict_tensors(x, ok)


def crash_after_commits() -> int:
    """Test hook: ``CATALOG2VEC_EMBED_CRASH_AFTER=n`` makes the job exit hard after n Delta commits."""
    raw = os.environ.get("CATALOG2VEC_EMBED_CRASH_AFTER", "")
    return int(raw) if raw.strip() else 0


__all__ = ["BatchOutput", "InferenceModel", "Preprocessor", "crash_after_commits", "select_device"]
