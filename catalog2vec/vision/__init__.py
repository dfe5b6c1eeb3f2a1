"""catalog2vec.vision: the weakly supervised image model, its data pipeline and training loop.

``model`` (WeakLabelNet, build_model, save/load of a model directory) and ``transforms``
(decode_image, eval/train transforms) are the contract the embedding stage imports.
"""

from __future__ import annotations

from catalog2vec.models import model_dir

__all__ = ["model_dir"]
