"""The image model as an MLflow ``pyfunc``: a DataFrame of JPEG bytes in, embeddings and top tags out.

Logged by training (:meth:`catalog2vec.tracking.Run.log_jpeg_model`) with ``loader_module`` =
this module and ``data_path`` = a copy of the published model directory (``model.pt``,
``vocab.parquet``, ``model_card.json``) plus ``pyfunc.json`` (``top_n``, :data:`catalog2vec.tracking.JPEG_SETTINGS_FILE`). MLflow calls
:func:`_load_pyfunc` on that directory; no ``mlflow`` import is needed here, only the wheel.

``predict`` runs the embed job's core, :class:`catalog2vec.embed.core.InferenceModel` (same decode,
resize, center crop and normalisation, same forward): an image gives the embedding the embed job
writes for it to gold/item_embeddings and the same top tags.

>>> import mlflow, pandas as pd
>>> model = mlflow.pyfunc.load_model(uri)  # the run's "jpeg" model (see docs/mlflow.md)
>>> model.predict(pd.DataFrame({"image": [open("a.jpg", "rb").read()]}))
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from catalog2vec.embed.core import InferenceModel
from catalog2vec.errors import InvalidInput
from catalog2vec.tracking import JPEG_SETTINGS_FILE

if TYPE_CHECKING:
    import pandas as pd

OUTPUT_COLUMNS = ("ok", "embedding", "tags", "tag_probabilities")


class JpegEmbedder:
    """``predict(DataFrame["image": bytes]) -> DataFrame[ok, embedding, tags, tag_probabilities]``;
    an undecodable image gives ``ok = 0`` and empty lists (never an exception)."""

    def __init__(self, model_dir: str, top_n: int, device: str = "auto") -> None:
        self.model = InferenceModel.from_dir(model_dir, top_n, device=device)

    def predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        import pandas as pd

        if "image" not in model_input.columns:
            raise InvalidInput(f"the input needs an 'image' column of JPEG bytes, got {list(model_input.columns)}")
        images = [bytes(b) if b is not None else None for b in model_input["image"]]
        out = self.model.predict(images)
        tokens = self.model.tokens
        rows = []
        for i in range(len(out)):
            ok = int(out.ok[i])
            rows.append({
                "ok": ok,
                "embedding": out.embedding[i].tolist() if ok else [],
                "tags": [tokens[j] for j in out.tag_index[i].tolist()] if ok else [],
                "tag_probabilities": out.tag_probability[i].tolist() if ok else [],
            })
        return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))


def _load_pyfunc(data_path: str) -> JpegEmbedder:
    """MLflow's ``loader_module`` hook: ``data_path`` is the logged copy of the model directory."""
    with open(os.path.join(data_path, JPEG_SETTINGS_FILE), encoding="utf-8") as fh:
        settings = json.load(fh)
    return JpegEmbedder(data_path, int(settings["top_n"]), device=os.environ.get("CATALOG2VEC_PYFUNC_DEVICE", "auto"))


__all__ = ["OUTPUT_COLUMNS", "JpegEmbedder"]
