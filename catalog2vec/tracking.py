"""MLflow tracking and model registry (optional: ``pip install 'catalog2vec[mlflow]'``).

The only module that imports ``mlflow``. Training (``train.mlflow = true``) and CTR training
(``ctr.mlflow = true``) log through a :class:`Run`: parameters, per-epoch metrics, the model card,
the model with a signature (``mlflow.pytorch`` / ``mlflow.lightgbm``); each logged model is registered
under ``[mlflow] model_name`` / ``ctr_model_name`` and the registered version is tagged with the
catalog2vec version (:data:`VERSION_TAG`). An image model is a *candidate*: training moves the alias
``[mlflow] candidate_alias`` (``challenger``) to it; only the promotion step (``jobs/promote.py``,
:func:`move_alias`) moves ``[mlflow] alias`` (``champion``), once the candidate passed the gate. A CTR
booster is not gated: its registration moves ``champion`` directly. :func:`resolve_alias` maps an alias back to that catalog2vec version: the model owner
(:func:`catalog2vec.models.resolve`) calls it for names that are not published versions, so
``jobs/embed.py --model-version champion`` embeds with the champion's weights from the lakehouse.

The lakehouse stays the source of truth (``models/<version>/``); MLflow is the record of runs and
the registry of which version is the champion.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from catalog2vec.errors import InvalidInput
from catalog2vec.redact import redact

if TYPE_CHECKING:
    import lightgbm as lgb
    import numpy as np
    from torch import nn

    from catalog2vec.config import Config

log = logging.getLogger(__name__)

VERSION_TAG = "catalog2vec.model_version"
KIND_TAG = "catalog2vec.kind"
MAX_PARAM_CHARS = 6000  # MLflow's limit for one parameter value
JPEG_TAG = "catalog2vec.jpeg_model_uri"  # on the registered version: the pyfunc that takes JPEG bytes
JPEG_LOADER = "catalog2vec.embed.pyfunc"  # its loader_module (needs the catalog2vec wheel where it loads)
JPEG_SETTINGS_FILE = "pyfunc.json"


class TrackingError(InvalidInput):
    """MLflow is asked for but unavailable or misconfigured, or an alias names nothing usable."""


@dataclass(frozen=True)
class Registry:
    """Where registered models live and which alias marks the champion."""

    tracking_uri: str = ""
    registry_uri: str = ""
    model_name: str = "catalog2vec"
    alias: str = "champion"
    candidate_alias: str = "challenger"

    @property
    def configured(self) -> bool:
        """A registry was named (config or ``$MLFLOW_TRACKING_URI``): aliases may be looked up."""
        return bool(self.tracking_uri or self.registry_uri or os.environ.get("MLFLOW_TRACKING_URI"))


def registry(cfg: Config, kind: str = "image") -> Registry:
    """The registry of the image model (``kind="image"``) or of the CTR model (``"ctr"``)."""
    m = cfg.mlflow
    name = m.ctr_model_name if kind == "ctr" else m.model_name
    return Registry(m.tracking_uri, m.registry_uri, name, m.alias, m.candidate_alias)


def default_registry() -> Registry:
    """For callers without a config (the CLI, the Beam pipeline): ``$MLFLOW_TRACKING_URI`` and the
    default model name."""
    return Registry(os.environ.get("MLFLOW_TRACKING_URI", ""))


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError as exc:
        raise TrackingError(
            "MLflow is enabled (train.mlflow / ctr.mlflow, or an alias lookup) but mlflow is not installed: "
            "pip install 'catalog2vec[mlflow]'"
        ) from exc
    return mlflow


def check_available() -> None:
    """Raise :class:`TrackingError` now (before hours of training) when mlflow cannot be imported here."""
    _mlflow()


def _client(reg: Registry) -> Any:
    mlflow = _mlflow()
    return mlflow.MlflowClient(tracking_uri=reg.tracking_uri or None, registry_uri=reg.registry_uri or None)


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config → ``{"a.b": "value"}``; lists/dicts as JSON, cut to MLflow's value limit."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_params(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            out[name] = text[:MAX_PARAM_CHARS]
    return out


def numeric_metrics(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite int/float entries of ``values`` (bools and None dropped), keys sanitised for MLflow
    (``@`` is not allowed in a metric name: ``recall@5`` → ``recall_at_5``)."""
    out: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
            continue
        out[f"{prefix}{key}".replace("@", "_at_")] = float(value)
    return out


class Run:
    """One MLflow run (``mlflow.start_run``) with the calls the training jobs need."""

    def __init__(self, reg: Registry, experiment: str, run_name: str, tags: Mapping[str, str] | None = None,
                 artifact_location: str = "") -> None:
        self.mlflow = _mlflow()
        self.registry = reg
        if reg.tracking_uri:
            self.mlflow.set_tracking_uri(reg.tracking_uri)
        if reg.registry_uri:
            self.mlflow.set_registry_uri(reg.registry_uri)
        if artifact_location and self.mlflow.get_experiment_by_name(experiment) is None:
            self.mlflow.create_experiment(experiment, artifact_location=artifact_location)
        self.mlflow.set_experiment(experiment)
        self.run = self.mlflow.start_run(run_name=run_name, tags=dict(tags or {}))
        self.run_id: str = self.run.info.run_id
        log.info("mlflow run %s (%s) at %s", self.run_id, run_name, self.mlflow.get_tracking_uri())

    def log_params(self, params: Mapping[str, Any]) -> None:
        flat = flatten_params(params)
        items = list(flat.items())
        for start in range(0, len(items), 100):  # MLflow's batch limit
            self.mlflow.log_params(dict(items[start : start + 100]))

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None, prefix: str = "") -> None:
        values = numeric_metrics(metrics, prefix)
        if values:
            self.mlflow.log_metrics(values, step=step)

    def log_dict(self, obj: Any, name: str) -> None:
        self.mlflow.log_dict(obj, name)

    def log_artifacts(self, local_dir: str, artifact_path: str) -> None:
        self.mlflow.log_artifacts(local_dir, artifact_path=artifact_path)

    def register(self, model_uri: str, version: int | str | None, catalog2vec_version: str, kind: str,
                 alias: str | None = None, tags: Mapping[str, str] | None = None) -> int:
        """Tag the registered version with the catalog2vec version and move ``alias`` (default: the
        registry's champion alias; ``""``: none) to it."""
        client = _client(self.registry)
        if version is None:  # the store did not register during log_model
            version = self.mlflow.register_model(model_uri, self.registry.model_name).version
        v = str(version)
        client.set_model_version_tag(self.registry.model_name, v, VERSION_TAG, catalog2vec_version)
        client.set_model_version_tag(self.registry.model_name, v, KIND_TAG, kind)
        for key, value in (tags or {}).items():
            client.set_model_version_tag(self.registry.model_name, v, key, value)
        alias = self.registry.alias if alias is None else alias
        if alias:
            client.set_registered_model_alias(self.registry.model_name, alias, v)
        log.info("registered %s version %s (%s) alias %r", self.registry.model_name, v, catalog2vec_version, alias)
        return int(v)

    def log_pytorch_model(self, model: nn.Module, image_size: int, catalog2vec_version: str,
                          tags: Mapping[str, str] | None = None) -> int:
        """``mlflow.pytorch.log_model`` of the image model (input: (B, 3, S, S) float32 normalised
        images; output: the (B, D) embedding z) with its signature; registered as a candidate (the
        ``candidate_alias``, ``challenger``; never ``champion``). Returns the version.

        Serialised with pickle: loading it needs ``catalog2vec`` importable (its wheel)."""
        import numpy as np
        import torch
        from mlflow.models import infer_signature

        cpu = copy.deepcopy(model).to("cpu").eval()
        example = np.zeros((2, 3, image_size, image_size), dtype=np.float32)
        with torch.inference_mode():
            out = cpu(torch.from_numpy(example)).numpy()
        info = self.mlflow.pytorch.log_model(
            cpu, name="model", signature=infer_signature(example, out), serialization_format="pickle",
            registered_model_name=self.registry.model_name,
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "torchvision"],
        )
        return self.register(info.model_uri, info.registered_model_version, catalog2vec_version, "image",
                             self.registry.candidate_alias, tags)

    def log_jpeg_model(self, model_dir: str, top_n: int, example: bytes) -> str:
        """The image model as a pyfunc over JPEG bytes (:mod:`catalog2vec.embed.pyfunc`, by name):
        ``model_dir`` is a local copy of the published model directory; input a DataFrame with an
        ``image`` bytes column, output ok, embedding, tags, tag_probabilities per image. Logged as
        ``jpeg`` in this run with a signature and ``example`` (one JPEG) as input example; not
        registered (the registered version carries its URI in :data:`JPEG_TAG`). Returns its URI."""
        import pandas as pd
        import torch
        from mlflow.models import ModelSignature
        from mlflow.types.schema import Array, ColSpec, Schema

        with open(os.path.join(model_dir, JPEG_SETTINGS_FILE), "w", encoding="utf-8") as fh:
            json.dump({"top_n": int(top_n)}, fh)
        signature = ModelSignature(
            inputs=Schema([ColSpec("binary", "image")]),
            outputs=Schema([ColSpec("long", "ok"), ColSpec(Array("float"), "embedding"),
                            ColSpec(Array("string"), "tags"), ColSpec(Array("float"), "tag_probabilities")]))
        info = self.mlflow.pyfunc.log_model(
            name="jpeg", loader_module=JPEG_LOADER, data_path=model_dir, signature=signature,
            input_example=pd.DataFrame({"image": [example]}),
            pip_requirements=["catalog2vec", f"torch=={torch.__version__.split('+')[0]}", "torchvision", "pandas",
                              "pyarrow"],
        )
        return str(info.model_uri)

    def log_lightgbm_model(self, booster: lgb.Booster, example: np.ndarray, feature_names: list[str],
                           catalog2vec_version: str) -> int:
        """``mlflow.lightgbm.log_model`` of the CTR booster with a signature from ``example``
        (rows of the encoded feature matrix); registered. Returns the version."""
        import lightgbm
        import pandas as pd
        from mlflow.models import infer_signature

        frame = pd.DataFrame(example, columns=feature_names)
        info = self.mlflow.lightgbm.log_model(
            booster, name="trees", signature=infer_signature(frame, booster.predict(frame)),
            registered_model_name=self.registry.model_name,
            pip_requirements=[f"lightgbm=={lightgbm.__version__}"],
        )
        return self.register(info.model_uri, info.registered_model_version, catalog2vec_version, "ctr")

    def end(self, status: str = "FINISHED") -> None:
        self.mlflow.end_run(status=status)


def start_run(cfg: Config, kind: str, run_name: str, params: Mapping[str, Any]) -> Run:
    """Start a run in ``[mlflow] experiment`` and log ``params`` (flattened)."""
    run = Run(registry(cfg, kind), cfg.mlflow.experiment, run_name,
              {KIND_TAG: kind, "catalog2vec.run_id": cfg.run_id, VERSION_TAG: run_name}, cfg.mlflow.artifact_location)
    run.log_params(redact(dict(params)))  # a URI with user-info or a token never reaches the tracking server
    return run


def registered_version(reg: Registry, catalog2vec_version: str) -> str | None:
    """The registry's version number of ``reg.model_name`` tagged with ``catalog2vec_version``
    (:data:`VERSION_TAG`); ``None`` when that model was not registered (trained with mlflow off)."""
    client = _client(reg)
    mlflow = _mlflow()
    try:
        found = client.search_model_versions(f"name='{reg.model_name}'")
    except mlflow.exceptions.MlflowException:
        return None  # no such registered model yet
    tagged = [mv for mv in found if (mv.tags or {}).get(VERSION_TAG) == catalog2vec_version]
    return str(max(int(mv.version) for mv in tagged)) if tagged else None


def move_alias(reg: Registry, catalog2vec_version: str, alias: str | None = None) -> str | None:
    """Point ``alias`` (default: the champion alias ``reg.alias``) at the registered version of
    ``catalog2vec_version``; returns that version number, or ``None`` (nothing moved) when the model
    was never registered. The promotion step's registry half (``jobs/promote.py``)."""
    alias = reg.alias if alias is None else alias
    version = registered_version(reg, catalog2vec_version)
    if version is None or not alias:
        log.warning("%s is not registered in %s: alias %r not moved", catalog2vec_version, reg.model_name, alias)
        return None
    _client(reg).set_registered_model_alias(reg.model_name, alias, version)
    log.info("alias %s@%s -> registered version %s (%s)", reg.model_name, alias, version, catalog2vec_version)
    return version


def parse_model_uri(name: str) -> tuple[str, str] | None:
    """``models:/<registered model>@<alias>`` → (model, alias); anything else → None."""
    if not name.startswith("models:/") or "@" not in name:
        return None
    model, _, alias = name[len("models:/"):].partition("@")
    return (model, alias) if model and alias else None


def resolve_alias(name: str, reg: Registry | None = None) -> str | None:
    """The catalog2vec model version behind an MLflow alias, or ``None`` when ``name`` is not one.

    ``name`` is ``models:/<model>@<alias>`` or a bare alias (``champion``) of ``reg.model_name``;
    a bare name is only looked up when a registry is configured. The version comes from the
    :data:`VERSION_TAG` tag of the registered version."""
    reg = reg or default_registry()
    parsed = parse_model_uri(name)
    if parsed is None:
        if not reg.configured:
            return None
        parsed = (reg.model_name, name)
    model, alias = parsed
    mlflow = _mlflow()
    client = _client(reg)
    try:
        mv = client.get_model_version_by_alias(model, alias)
    except mlflow.exceptions.MlflowException as exc:
        if parse_model_uri(name) is not None:
            raise TrackingError(f"{name}: no alias {alias!r} on registered model {model!r}: {exc}") from exc
        return None  # a bare name that is no alias either: the caller reports an unknown version
    version = (mv.tags or {}).get(VERSION_TAG)
    if not version:
        raise TrackingError(
            f"registered model {model!r} version {mv.version} (alias {alias!r}) has no {VERSION_TAG!r} tag: "
            "it was not registered by catalog2vec"
        )
    log.info("alias %s@%s -> registered version %s -> catalog2vec model %s", model, alias, mv.version, version)
    return str(version)


__all__ = [
    "JPEG_LOADER",
    "JPEG_SETTINGS_FILE",
    "JPEG_TAG",
    "KIND_TAG",
    "VERSION_TAG",
    "Registry",
    "Run",
    "TrackingError",
    "check_available",
    "default_registry",
    "flatten_params",
    "move_alias",
    "numeric_metrics",
    "parse_model_uri",
    "registered_version",
    "registry",
    "resolve_alias",
    "start_run",
]
