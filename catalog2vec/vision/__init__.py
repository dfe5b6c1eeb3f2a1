"""catalog2vec.vision: the weakly supervised image model, its data pipeline and training loop.

``model`` (WeakLabelNet, build_model, save/load of a model directory) and ``transforms``
(decode_image, eval/train transforms) are the contract the embedding stage imports.
"""

from __future__ import annotations

import os


def model_dir(lakehouse: str | os.PathLike[str], model_version: str) -> str:
    """``<lakehouse>/models/<model_version>`` (absolute for local paths)."""
    root = str(lakehouse)
    if "://" in root:
        return f"{root.rstrip('/')}/models/{model_version}"
    return os.path.join(os.path.abspath(root), "models", model_version)


__all__ = ["model_dir"]
