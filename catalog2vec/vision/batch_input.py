"""Batched input path: a list of image bytes (``silver/images``: JPEG, short side 256) → a normalised
float batch ``(N, 3, S, S)`` on the device, shared by training and embedding.

* **Decode** in one call per batch with ``torchvision.io.decode_jpeg(list, device=…)``: nvJPEG on the
  GPU when the target device is CUDA, libjpeg-turbo on the CPU otherwise. Bytes that are not JPEG
  (PNG, WebP, …) or that the batched decoder refuses fall back, image by image, to PIL
  (:func:`catalog2vec.vision.transforms.decode_image`); an image nothing can decode is *reported*
  (``ok = 0``, a zero tensor, the reason in ``errors``), never raised — the embedding job
  quarantines it with reason ``image_undecodable``.
* **Transform** on the device with ``torchvision.transforms.v2.functional`` on uint8 tensors:
  images of the same shape (a catalog's images mostly share a few) are resized in one call, then
  cropped, flipped, stacked, converted to float and normalised once per batch.
* **Transfer**: a CPU-built batch bound for a GPU goes through pinned host memory with
  ``non_blocking=True``; on CUDA the batch is returned ``channels_last``.

On the CPU this path gives the tensors of the PIL reference transforms of
:mod:`catalog2vec.vision.transforms` (``eval_transform``; ``train_transform`` with the same per-sample
seed) up to one grey level in a few pixels: libjpeg-turbo decodes the same pixels and torchvision's
uint8 antialiased resize reproduces PIL's but for rounding (checked in
``tests/unit/vision/test_batch_input.py``). nvJPEG's IDCT differs from
libjpeg-turbo's by a few grey levels at most.

Train augmentation parameters are drawn on the CPU with exactly the reference's RNG calls under
``torch.manual_seed(seed)`` (one seed per sample, :func:`catalog2vec.vision.data.sample_seed`), so
the batched path and the per-image DataLoader path make the same crop and flip for a sample.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from catalog2vec.vision.transforms import AUGMENTS, IMAGENET_MEAN, IMAGENET_STD, decode_image

log = logging.getLogger(__name__)

JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True)
class InputBatch:
    """One batch: ``x`` (N, 3, S, S) float32 on the device, ``ok`` (N,) int32 (1 decoded, 0 not: a
    zero image), ``errors`` the reason per undecodable image (None where decoded)."""

    x: torch.Tensor
    ok: np.ndarray
    errors: list[str | None]


def is_jpeg(data: bytes | bytearray | memoryview) -> bool:
    return bytes(data[:3]) == JPEG_MAGIC


def resize_short_side(image_size: int) -> int:
    """The eval geometry's resize target: shorter side to ``image_size * 256 / 224``."""
    return round(image_size * 256 / 224)


def _as_bytes(data: Any) -> bytes | None:
    if data is None:
        return None
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    if isinstance(data, np.ndarray):
        return data.tobytes()
    raise TypeError(f"image bytes expected, got {type(data).__name__}")


def _pil_tensor(data: bytes) -> torch.Tensor:
    img = decode_image(data)  # raises ValueError when undecodable
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).contiguous()


def decode_batch(images: Sequence[Any], device: torch.device | str = "cpu"
                 ) -> tuple[list[torch.Tensor | None], list[str | None]]:
    """Image bytes → uint8 RGB ``(3, H, W)`` tensors on ``device`` (None + a reason where undecodable).

    JPEGs are decoded in one ``decode_jpeg`` call (on the GPU when ``device`` is CUDA); when that
    call fails (one corrupt JPEG fails the whole list) they are retried one by one; non-JPEG bytes
    and JPEGs the batched decoder refuses go through PIL."""
    from torchvision.io import ImageReadMode, decode_jpeg

    dev = torch.device(device)
    n = len(images)
    out: list[torch.Tensor | None] = [None] * n
    errors: list[str | None] = [None] * n
    raw = [_as_bytes(d) for d in images]
    jpeg_idx = [i for i, d in enumerate(raw) if d and is_jpeg(d)]
    fallback = [i for i, d in enumerate(raw) if d and not is_jpeg(d)]
    for i, d in enumerate(raw):
        if not d:
            errors[i] = "empty image bytes"
    if jpeg_idx:
        bufs = [torch.frombuffer(bytearray(raw[i] or b""), dtype=torch.uint8) for i in jpeg_idx]
        decoded: list[torch.Tensor] | None
        try:
            decoded = list(decode_jpeg(bufs, mode=ImageReadMode.RGB, device=dev))
        except Exception:  # one bad JPEG fails the batch: retry one by one below
            decoded = None
        for k, i in enumerate(jpeg_idx):
            if decoded is not None:
                out[i] = decoded[k]
                continue
            try:
                out[i] = decode_jpeg(bufs[k], mode=ImageReadMode.RGB, device=dev)
            except Exception:
                fallback.append(i)
    pinned = dev.type == "cuda"
    for i in sorted(fallback):
        try:
            t = _pil_tensor(raw[i] or b"")
        except ValueError as exc:
            errors[i] = str(exc)
            log.warning("undecodable image %d of the batch: %s", i, exc)
            continue
        out[i] = t.pin_memory().to(dev, non_blocking=True) if pinned else t
    return out, errors


def _by_shape(images: list[torch.Tensor | None]) -> dict[tuple[int, ...], list[int]]:
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, t in enumerate(images):
        if t is not None:
            groups.setdefault(tuple(t.shape), []).append(i)
    return groups


def _resize_grouped(images: list[torch.Tensor | None], short_side: int) -> list[torch.Tensor | None]:
    """Shorter side to ``short_side`` (antialiased bilinear), one resize call per distinct shape."""
    from torchvision.transforms.v2 import functional as F

    out: list[torch.Tensor | None] = [None] * len(images)
    for idx in _by_shape(images).values():
        stacked = torch.stack([images[i] for i in idx])  # type: ignore[misc]
        resized = F.resize(stacked, [short_side], antialias=True)
        for k, i in enumerate(idx):
            out[i] = resized[k]
    return out


class BatchInput:
    """The batched input path for one image size and one device.

    >>> bi = BatchInput(224, torch.device("cpu"))
    >>> batch = bi.eval([jpeg_bytes, b"not an image"])  # batch.x: (2, 3, 224, 224), batch.ok: [1, 0]

    ``decode_on_device=False`` decodes on the CPU even for a CUDA device (the batch is then built
    on the CPU and copied through pinned memory)."""

    def __init__(self, image_size: int, device: torch.device | str = "cpu", decode_on_device: bool = True,
                 channels_last: bool | None = None) -> None:
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        self.image_size = int(image_size)
        self.device = torch.device(device)
        self.work_device = self.device if decode_on_device else torch.device("cpu")
        self.channels_last = self.device.type == "cuda" if channels_last is None else channels_last
        self._mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=self.work_device).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=self.work_device).view(1, 3, 1, 1)

    # ------------------------------------------------------------------ pieces
    def _finish(self, crops: list[torch.Tensor | None], errors: list[str | None]) -> InputBatch:
        """Stack (zeros for undecodable images), float, normalise, move, channels_last."""
        s = self.image_size
        n = len(crops)
        u8 = torch.zeros((n, 3, s, s), dtype=torch.uint8, device=self.work_device)
        for i, c in enumerate(crops):
            if c is not None:
                u8[i] = c
        ok = np.array([int(c is not None) for c in crops], dtype=np.int32)
        # ToTensor + Normalize of the reference: x / 255, then (x - mean) / std
        x = u8.to(torch.float32).div_(255).sub_(self._mean).div_(self._std)
        if ok.size and not ok.all():
            x[torch.from_numpy(ok == 0).to(x.device)] = 0.0
        if x.device != self.device:
            x = x.pin_memory().to(self.device, non_blocking=True) if self.device.type == "cuda" else x.to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return InputBatch(x, ok, errors)

    def decode(self, images: Sequence[Any]) -> tuple[list[torch.Tensor | None], list[str | None]]:
        return decode_batch(images, self.work_device)

    # ------------------------------------------------------------------ eval
    def eval(self, images: Sequence[Any]) -> InputBatch:
        """The eval transform (embedding, validation): shorter side to ``S * 256 / 224``, centre crop S."""
        from torchvision.transforms.v2 import functional as F

        if len(images) == 0:
            return InputBatch(torch.zeros(0, 3, self.image_size, self.image_size, device=self.device),
                              np.zeros(0, np.int32), [])
        decoded, errors = self.decode(images)
        resized = _resize_grouped(decoded, resize_short_side(self.image_size))
        crops = [None if t is None else F.center_crop(t, [self.image_size, self.image_size]) for t in resized]
        return self._finish(crops, errors)

    # ------------------------------------------------------------------ train
    def train(self, images: Sequence[Any], seeds: Sequence[int], scale_min: float = 0.25,
              augment: str = "crop", brightness: float = 0.0, contrast: float = 0.0) -> InputBatch:
        """The train transform of :func:`catalog2vec.vision.transforms.train_transform`, sample i's
        randomness seeded by ``seeds[i]`` exactly as :class:`catalog2vec.vision.data.ImageLabelDataset`
        seeds it (so both paths draw the same crop, flip and brightness/contrast factors)."""
        from torchvision.transforms.v2 import functional as F

        if augment not in AUGMENTS:
            raise ValueError(f"unknown augment {augment!r}; choose from {AUGMENTS}")
        if len(seeds) != len(images):
            raise ValueError("images and seeds differ in length")
        s = self.image_size
        decoded, errors = self.decode(images)
        if augment == "product":
            decoded = _resize_grouped(decoded, resize_short_side(s))
        crops: list[torch.Tensor | None] = []
        for t, seed in zip(decoded, seeds, strict=True):
            if t is None:
                crops.append(None)
                continue
            top, left, h, w, flip, jitter = _draws(tuple(t.shape[-2:]), int(seed), s, scale_min, augment,
                                                   brightness, contrast)
            if augment == "product":
                c = F.crop(t, top, left, h, w)
            else:
                c = F.resized_crop(t, top, left, h, w, [s, s], antialias=True)
            c = F.horizontal_flip(c) if flip else c
            if jitter is not None:
                c = F.adjust_contrast(F.adjust_brightness(c, jitter[0]), jitter[1])
            crops.append(c)
        return self._finish(crops, errors)


def train_params(hw: tuple[int, ...], seed: int, image_size: int, scale_min: float, augment: str
                 ) -> tuple[int, int, int, int, bool]:
    """(top, left, height, width, flip) of one sample: the reference transform's own ``get_params``
    calls, in its order, on the global CPU torch RNG seeded by ``seed`` (restored afterwards; the
    reference's ``torch.manual_seed`` also seeds CUDA, which the draws do not use). For
    ``product`` ``hw`` is the size *after* the eval resize."""
    return _draws(hw, seed, image_size, scale_min, augment)[:5]  # type: ignore[return-value]


def _draws(hw: tuple[int, ...], seed: int, image_size: int, scale_min: float, augment: str,
           brightness: float = 0.0, contrast: float = 0.0
           ) -> tuple[int, int, int, int, bool, tuple[float, float] | None]:
    """:func:`train_params` plus the brightness/contrast factors drawn after the flip (None when off)."""
    from torchvision import transforms as T

    from catalog2vec.vision.transforms import jitter_factors

    shape = torch.empty((3, int(hw[0]), int(hw[1])), device="meta")
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # the CPU generator only: CUDA's RNG is left alone
        if augment == "product":
            top, left, h, w = T.RandomCrop.get_params(shape, (image_size, image_size))  # type: ignore[arg-type]
        else:
            rrc = T.RandomResizedCrop(image_size, scale=(scale_min, 1.0), antialias=True)
            top, left, h, w = T.RandomResizedCrop.get_params(shape, list(rrc.scale), list(rrc.ratio))  # type: ignore[arg-type]
        flip = bool(torch.rand(1) < 0.5)  # RandomHorizontalFlip(p=0.5)
        jitter = jitter_factors(brightness, contrast) if brightness or contrast else None
    return int(top), int(left), int(h), int(w), flip, jitter


__all__ = ["BatchInput", "InputBatch", "decode_batch", "is_jpeg", "resize_short_side", "train_params"]
