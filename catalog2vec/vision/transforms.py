"""Image decoding and the train / eval transforms (torchvision), shared by training and embedding."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def decode_image(jpeg_bytes: bytes) -> Image.Image:
    """Decode image bytes to an RGB ``PIL.Image`` (raises ``ValueError`` if undecodable)."""
    try:
        img = Image.open(io.BytesIO(jpeg_bytes))
        img.load()
    except Exception as exc:
        raise ValueError(f"cannot decode image ({len(jpeg_bytes)} bytes): {exc}") from exc
    return img if img.mode == "RGB" else img.convert("RGB")


def eval_transform(image_size: int) -> Callable[[Image.Image], torch.Tensor]:
    """Resize the shorter side to ``image_size * 256 / 224``, center crop, tensor, ImageNet normalise."""
    from torchvision import transforms as T

    return T.Compose(
        [
            T.Resize(round(image_size * 256 / 224), antialias=True),
            T.CenterCrop(image_size),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


AUGMENTS = ("crop", "product")


def jitter_factors(brightness: float, contrast: float) -> tuple[float, float]:
    """The brightness and contrast factors of one sample, uniform in ``[1 - x, 1 + x]``, drawn (in
    that order, both whenever either is on) from the global torch RNG right after the flip draw —
    the CPU transform and :func:`catalog2vec.vision.batch_input.train_params` draw the same."""
    import torch

    u = torch.rand(2)
    return 1.0 + brightness * (2.0 * float(u[0]) - 1.0), 1.0 + contrast * (2.0 * float(u[1]) - 1.0)


class BrightnessContrast:
    """Brightness then contrast jitter of a PIL image (torchvision's ``adjust_brightness`` /
    ``adjust_contrast``): no hue, no saturation — colour words are labels, so the colour stays."""

    def __init__(self, brightness: float, contrast: float) -> None:
        if not (0 <= brightness < 1 and 0 <= contrast < 1):
            raise ValueError(f"brightness and contrast must be in [0, 1), got {brightness}, {contrast}")
        self.brightness, self.contrast = brightness, contrast

    def __call__(self, img: Image.Image) -> Image.Image:
        from torchvision.transforms import functional as F

        b, c = jitter_factors(self.brightness, self.contrast)
        return F.adjust_contrast(F.adjust_brightness(img, b), c)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"BrightnessContrast(brightness={self.brightness}, contrast={self.contrast})"


def train_transform(image_size: int, scale_min: float = 0.25, augment: str = "crop", brightness: float = 0.0,
                    contrast: float = 0.0) -> Callable[[Image.Image], torch.Tensor]:
    """Training augmentation.

    * ``crop``: RandomResizedCrop(scale_min..1) + horizontal flip (torchvision reference style);
      at scale 0.25 it often cuts the product away from a centred catalog photo.
    * ``product``: the eval geometry (shorter side to ``image_size * 256 / 224``) with a random
      ``image_size`` crop instead of the centre one (a shift of at most 1/16 of the side, never
      more of the product cut than the eval crop cuts) + horizontal flip. No colour jitter: colour
      is a label.

    ``brightness`` / ``contrast`` > 0 add :class:`BrightnessContrast` after the flip (either
    geometry); hue and saturation are never jittered.
    """
    from torchvision import transforms as T

    if augment not in AUGMENTS:
        raise ValueError(f"unknown augment {augment!r}; choose from {AUGMENTS}")
    if augment == "product":
        geometry = [T.Resize(round(image_size * 256 / 224), antialias=True), T.RandomCrop(image_size)]
    else:
        geometry = [T.RandomResizedCrop(image_size, scale=(scale_min, 1.0), antialias=True)]
    jitter = [BrightnessContrast(brightness, contrast)] if brightness or contrast else []
    return T.Compose(
        [
            *geometry,
            T.RandomHorizontalFlip(),
            *jitter,
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


__all__ = ["AUGMENTS", "IMAGENET_MEAN", "IMAGENET_STD", "BrightnessContrast", "decode_image", "eval_transform", "jitter_factors", "train_transform"]
