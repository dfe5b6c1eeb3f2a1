"""Embedding images on the fly with a trained model (query by image file) and the picture grid."""

from __future__ import annotations

import io
import logging
import os
import textwrap
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from catalog2vec import models, storage
from catalog2vec.errors import MissingInput
from catalog2vec.plots import png_bytes, pyplot

if TYPE_CHECKING:
    from PIL import Image
    from torch import nn

log = logging.getLogger(__name__)


def embed_images(
    model: nn.Module, image_size: int, images: Sequence[bytes | Image.Image], batch_size: int = 64,
    device: str = "cpu",
) -> np.ndarray:
    """Embed images (JPEG bytes or ``PIL.Image``) with ``model.forward``: (n, D) float32.

    Uses the training engineer's ``eval_transform`` so queries match the stored embeddings.
    """
    import torch

    from catalog2vec.vision.transforms import decode_image, eval_transform

    tf = eval_transform(image_size)
    model.eval()
    out: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            pil = [
                decode_image(bytes(x)) if isinstance(x, bytes | bytearray) else x.convert("RGB")
                for x in chunk
            ]
            batch = torch.stack([tf(p) for p in pil]).to(device)
            out.append(model(batch).float().cpu().numpy())
            log.debug("embedded %d/%d images", min(start + batch_size, len(images)), len(images))
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(out).astype(np.float32)


def embed_image_file(
    root: str | os.PathLike[str], model_version: str, path: str | os.PathLike[str]
) -> np.ndarray:
    """Embed one image file with ``<lakehouse>/models/<model_version>`` -> (D,) float32."""
    from catalog2vec.vision.model import load_model_dir

    if not storage.isfile(path):
        raise MissingInput(f"query image not found: {path}")
    loaded = load_model_dir(models.model_dir(root, model_version))
    return embed_images(loaded.model, loaded.image_size, [storage.read_bytes(path)])[0]


def save_grid(
    rows: Sequence[Sequence[tuple[bytes | None, str]]],
    path: str | os.PathLike[str],
    thumb: float = 1.9,
    title: str = "",
) -> str:
    """Save a PNG grid: one row per list of (image bytes or None, caption) cells.

    Captions are wrapped; a missing image shows as a grey cell. Returns the written path.
    """
    from PIL import Image

    plt = pyplot()

    if not rows:
        raise ValueError("nothing to draw")
    ncols = max(len(r) for r in rows)
    fig, axes = plt.subplots(
        len(rows), ncols, figsize=(thumb * ncols, thumb * 1.35 * len(rows)), squeeze=False
    )
    for r, row in enumerate(rows):
        for c in range(ncols):
            ax = axes[r][c]
            ax.axis("off")
            if c >= len(row):
                continue
            data, caption = row[c]
            img: Any
            try:
                img = Image.open(io.BytesIO(data)).convert("RGB") if data else None
            except Exception:
                img = None
            ax.imshow(img if img is not None else np.full((8, 8, 3), 200, dtype=np.uint8))
            ax.set_title("\n".join(textwrap.wrap(caption, 22)[:3]), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return storage.write_bytes(path, png_bytes(fig, dpi=80))


def grid_png_bytes(rows: Sequence[Sequence[tuple[bytes | None, str]]], title: str = "") -> bytes:
    """Same as :func:`save_grid` but returns PNG bytes (for HTML reports)."""
    uri = f"memory://c2v-grid/{uuid.uuid4().hex}.png"
    save_grid(rows, uri, title=title)
    try:
        return storage.read_bytes(uri)
    finally:
        storage.remove(uri)
