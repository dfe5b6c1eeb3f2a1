"""The Spark ``predict_batch_udf`` around :class:`catalog2vec.embed.core.InferenceModel`.

The model is loaded once per Python worker (``make_predict_fn`` runs on the executor and
``pyspark.ml.model_cache`` keeps the predict function), then called on batches of ``batch_size``
JPEG byte strings, decoded and transformed a batch at a time (on the task's GPU when it has one:
:mod:`catalog2vec.vision.batch_input`). The UDF returns a struct: ``embedding array<float>, norm float,
tag_index array<int>, tag_probability array<float>, ok int`` (+ ``probabilities array<float>``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from catalog2vec import storage
from catalog2vec.errors import InvalidInput

if TYPE_CHECKING:
    from pyspark.sql import Column
    from pyspark.sql.types import StructType


def result_type(full_probabilities: bool = False) -> StructType:
    from pyspark.sql import types as T

    fields = [
        T.StructField("embedding", T.ArrayType(T.FloatType()), True),
        T.StructField("norm", T.FloatType(), True),
        T.StructField("tag_index", T.ArrayType(T.IntegerType()), True),
        T.StructField("tag_probability", T.ArrayType(T.FloatType()), True),
        T.StructField("ok", T.IntegerType(), True),
    ]
    if full_probabilities:
        fields.append(T.StructField("probabilities", T.ArrayType(T.FloatType()), True))
    return T.StructType(fields)


def make_predict_fn_factory(
    model_dir: str,
    top_n: int,
    device: str = "auto",
    threads: int = 0,
    full_probabilities: bool = False,
    fixed_batch: int = 0,
) -> Callable[[], Callable[[np.ndarray], dict[str, np.ndarray]]]:
    """``make_predict_fn`` for ``predict_batch_udf``: loads the model (on the executor) and returns
    ``predict(images: ndarray[object bytes]) -> dict of column arrays``."""
    s3 = storage.s3_settings()  # the driver's endpoint/credentials, shipped inside the closure

    def make_predict_fn() -> Callable[[np.ndarray], dict[str, np.ndarray]]:
        from catalog2vec.embed.core import InferenceModel

        storage.configure(s3)
        t0 = time.time()
        model = InferenceModel.from_dir(model_dir, top_n, device, threads, full_probabilities, fixed_batch)
        # one line per load in the executor's stderr: predict_batch_udf caches the predict function
        # per Python worker, so a worker that logs this twice reloaded the model
        print(f"[catalog2vec.embed] model loaded pid={os.getpid()} in {time.time() - t0:.2f}s: {model_dir}",
              file=sys.stderr, flush=True)

        def predict(images: np.ndarray) -> dict[str, np.ndarray]:
            out = model.predict(list(images))
            cols = {
                "embedding": out.embedding,
                "norm": out.norm,
                "tag_index": out.tag_index,
                "tag_probability": out.tag_probability,
                "ok": out.ok,
            }
            if full_probabilities and out.probabilities is not None:
                cols["probabilities"] = out.probabilities
            return cols

        return predict

    return make_predict_fn


def check_gpu_settings(device: str) -> None:
    """Fail fast on the driver when the session asks for GPU executors with settings Spark cannot
    schedule (:func:`catalog2vec.vision.gpu_resources.check_spark_gpu_conf`, purpose ``embed``);
    a session without GPU resource settings (local, CPU clusters) is not checked."""
    from pyspark.sql import SparkSession

    from catalog2vec.vision.gpu_resources import EXECUTOR_GPU, TASK_GPU, check_spark_gpu_conf

    spark = SparkSession.getActiveSession()
    if device == "cpu" or spark is None:
        return
    conf = dict(spark.sparkContext.getConf().getAll())
    if EXECUTOR_GPU in conf or TASK_GPU in conf:
        check_spark_gpu_conf(conf, "embed")


def embedding_udf(
    model_dir: str,
    top_n: int,
    batch_size: int,
    device: str = "auto",
    threads: int = 0,
    full_probabilities: bool = False,
) -> Callable[..., Column]:
    """``predict_batch_udf`` over a binary (JPEG bytes) column; marked non-deterministic so the
    optimizer never evaluates it twice for the struct's fields."""
    from pyspark.ml.functions import predict_batch_udf

    if batch_size < 1:
        raise InvalidInput(f"batch size must be >= 1, got {batch_size}")
    check_gpu_settings(device)
    udf = predict_batch_udf(
        # every CPU forward on exactly batch_size rows: embeddings independent of the partitioning
        make_predict_fn_factory(model_dir, top_n, device, threads, full_probabilities, fixed_batch=batch_size),
        return_type=result_type(full_probabilities),
        batch_size=batch_size,
    )
    return udf.asNondeterministic()


__all__ = ["check_gpu_settings", "embedding_udf", "make_predict_fn_factory", "result_type"]
