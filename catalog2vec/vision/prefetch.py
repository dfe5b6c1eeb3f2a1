"""The training loop's input side: one step's tensors on the device, prepared one batch ahead.

:func:`step_inputs` turns a collated batch (:func:`catalog2vec.vision.data.collate`) into the step's
``(x, positive, targets)`` on the device: the JPEG bytes decoded and augmented by the batched input
path (:class:`catalog2vec.vision.batch_input.BatchInput`) when the loop has one (CUDA), else the
DataLoader's augmented tensors; host tensors go through pinned memory with ``non_blocking`` copies.
Nothing here reads a value back to the host, and nothing draws from the global RNG (the train
augmentation forks it per sample), so preparing batch k+1 before step k+1 seeds its RNG changes no
result: exact resume holds.

:func:`prefetch` yields those inputs one batch ahead:

* **CUDA**: batch k+1 is prepared on a side stream while step k computes on the current stream. The
  generator resumes as soon as the loop has *queued* step k (no host sync), takes the next batch
  from the DataLoader, and queues its decode, augmentation and copies on the side stream, so nvJPEG
  and the transforms run beside the step's kernels. Before the next step the current stream waits
  for the side stream, and the tensors are marked as used by it (``record_stream``), so the caching
  allocator never hands their memory to the side stream while the step still reads it.
* **CPU**: the batch is prepared in line, with no lookahead of its own; the DataLoader's workers
  (``prefetch_factor``) already produce batches ahead. A second thread preparing batches would
  compete with the step's intra-op threads for the same cores. That was not measured, but a loader
  worker on those cores already costs the step time on 2 cores (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import torch

from catalog2vec.vision.batch_input import BatchInput
from catalog2vec.vision.losses import multi_hot

B = TypeVar("B")
T = TypeVar("T")


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor to the device without a host sync: pinned, copied ``non_blocking`` on CUDA."""
    if device.type != "cuda":
        return x.to(device)
    return x.pin_memory().to(device, non_blocking=True)


def step_inputs(batch: dict[str, Any], device: torch.device, vocab_size: int, batch_input: BatchInput | None,
                scale_min: float = 0.25, augment: str = "crop", channels_last: bool = False,
                brightness: float = 0.0, contrast: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x, positive, targets)`` of one step on ``device``: images ``(B, 3, S, S)``, the sampled
    positive word per image ``(B,)`` and the multi-hot targets ``(B, K)``.

    >>> x, positive, targets = step_inputs(batch, torch.device("cuda"), K, BatchInput(224, "cuda"))"""
    if batch_input is not None:  # JPEG bytes → augmented batch on the device, the samples' own seeds
        x = batch_input.train(batch["jpeg"], batch["seed"], scale_min, augment, brightness, contrast).x
    else:
        x = to_device(batch["image"], device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    positive = to_device(batch["positive"], device)
    targets = to_device(multi_hot(batch["labels"], vocab_size), device)
    return x, positive, targets


def _record(value: Any, stream: torch.cuda.Stream) -> None:
    if isinstance(value, torch.Tensor):
        value.record_stream(stream)
    elif isinstance(value, tuple | list):
        for v in value:
            _record(v, stream)


def prefetch(batches: Iterable[B], prepare: Callable[[B], T], device: torch.device) -> Iterator[tuple[B, T]]:
    """``(batch, prepare(batch))`` for every batch, the next one prepared while the caller's step on
    the current one runs (on CUDA, on a side stream; see the module docstring).

    >>> for batch, (x, positive, targets) in prefetch(loader, prepare, device):
    ...     loss = net(x, positive, targets, negatives)"""
    it = iter(batches)
    if device.type != "cuda":
        for b in it:
            yield b, prepare(b)
        return
    side = torch.cuda.Stream(device)
    main = torch.cuda.current_stream(device)

    for b in it:
        # queued while the step the caller just queued still runs: no wait for ``main`` here
        with torch.cuda.stream(side):
            ready = prepare(b)
        main.wait_stream(side)
        _record(ready, main)
        yield b, ready


__all__ = ["prefetch", "step_inputs", "to_device"]
