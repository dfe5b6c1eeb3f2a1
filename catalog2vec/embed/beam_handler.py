"""The Beam ``RunInference`` model handler of the embedding pipeline (``pipelines/embed.py``).

:class:`JpegModelHandler` takes the raw image bytes of ``silver/images`` (no per-row decode before
``RunInference``): Beam batches the rows (``BatchElements``, up to ``max_batch_size``) and each batch
goes through :meth:`catalog2vec.embed.core.InferenceModel.predict`, the function the Spark
``predict_batch_udf`` calls. So a batch is decoded in one ``decode_jpeg`` call and transformed on
the model's device (nvJPEG and on-GPU transforms on a GPU worker, libjpeg-turbo on the CPU,
:mod:`catalog2vec.vision.batch_input`), and Beam and Spark give the same embeddings and tags.

An image that cannot be decoded does not fail the batch: its result has ``ok = 0`` and empty
arrays, the row the Spark job quarantines with reason ``image_undecodable`` when it merges the
staging output.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

if TYPE_CHECKING:
    from catalog2vec.embed.core import BatchOutput, InferenceModel


def result_dicts(out: BatchOutput) -> list[dict[str, Any]]:
    """One staging dict per image of a batch: ``ok``, embedding, norm, top-N tag indices and
    probabilities (+ the full probability vector when the model computed it). An undecodable image
    (``ok = 0``) gets empty arrays and norm 0."""
    rows: list[dict[str, Any]] = []
    for i in range(len(out)):
        ok = int(out.ok[i])
        row: dict[str, Any] = {
            "ok": ok,
            "embedding": out.embedding[i].tolist() if ok else [],
            "norm": float(out.norm[i]) if ok else 0.0,
            "tag_index": out.tag_index[i].tolist() if ok else [],
            "tag_probability": out.tag_probability[i].tolist() if ok else [],
        }
        if out.probabilities is not None:
            row["probabilities"] = out.probabilities[i].tolist() if ok else []
        rows.append(row)
    return rows


class JpegModelHandler(ModelHandler[Any, PredictionResult, "InferenceModel"]):  # type: ignore[misc]
    """Image bytes in, one :class:`PredictionResult` (inference = a staging dict) per image out.

    >>> handler = KeyedModelHandler(JpegModelHandler("lakehouse/models/v1", top_n=20, max_batch_size=256))
    >>> keyed_bytes | RunInference(handler)

    ``device``: ``auto | cpu | cuda`` (:func:`catalog2vec.embed.core.select_device`); the model is
    loaded once per worker process by Beam (``load_model``)."""

    def __init__(self, model_dir: str, top_n: int, device: str = "auto", threads: int = 0,
                 full_probabilities: bool = False, min_batch_size: int = 1, max_batch_size: int = 64) -> None:
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size)
        self.model_dir = model_dir
        self.top_n = int(top_n)
        self.device = "cuda" if device == "gpu" else device
        self.threads = int(threads)
        self.full_probabilities = bool(full_probabilities)

    def load_model(self) -> InferenceModel:
        from catalog2vec.embed.core import InferenceModel

        return InferenceModel.from_dir(self.model_dir, self.top_n, self.device, self.threads,
                                       self.full_probabilities)

    def run_inference(self, batch: Sequence[Any], model: InferenceModel,
                      inference_args: dict[str, Any] | None = None) -> Iterable[PredictionResult]:
        rows = result_dicts(model.predict(list(batch)))
        return [PredictionResult(None, row, self.model_dir) for row in rows]

    def get_num_bytes(self, batch: Sequence[Any]) -> int:
        return sum(len(b) for b in batch if b is not None)

    def get_metrics_namespace(self) -> str:
        return "catalog2vec_embed"


__all__ = ["JpegModelHandler", "result_dicts"]
