"""catalog2vec.tracking helpers that need no tracking server, and alias resolution staying off
(no mlflow import) when no registry is configured."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from catalog2vec import models, tracking
from catalog2vec.config import load_config


def test_flatten_params_and_numeric_metrics() -> None:
    flat = tracking.flatten_params({"a": 1, "b": {"c": [1, 2], "d": "x"}, "long": "y" * 7000})
    assert flat == {"a": "1", "b.c": "[1, 2]", "b.d": "x", "long": "y" * tracking.MAX_PARAM_CHARS}
    got = tracking.numeric_metrics({"recall@5": 0.5, "n": 3, "ok": True, "none": None, "nan": float("nan"), "s": "x"},
                                   prefix="test_")
    assert got == {"test_recall_at_5": 0.5, "test_n": 3.0}


def test_parse_model_uri_and_registry_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    assert tracking.parse_model_uri("models:/catalog2vec@champion") == ("catalog2vec", "champion")
    assert tracking.parse_model_uri("models:/catalog2vec/3") is None and tracking.parse_model_uri("champion") is None
    cfg = load_config(None, ['mlflow.tracking_uri="sqlite:///x.db"', 'mlflow.alias="best"'])
    assert tracking.registry(cfg) == tracking.Registry("sqlite:///x.db", "", "catalog2vec", "best")
    assert tracking.registry(cfg, "ctr").model_name == "catalog2vec-ctr"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert not tracking.Registry().configured and tracking.registry(cfg).configured
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///y.db")
    assert tracking.Registry().configured and tracking.default_registry().tracking_uri == "sqlite:///y.db"


def test_unknown_name_without_registry_never_imports_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # any import of mlflow would now fail
    (tmp_path / "models" / "v1").mkdir(parents=True)
    (tmp_path / "models" / "v1" / "model_card.json").write_text("{}")
    assert models.resolve(tmp_path, "v1") == "v1"
    with pytest.raises(models.ModelNotFoundError, match="unknown model_version 'champion'"):
        models.resolve(tmp_path, "champion")
    with pytest.raises(tracking.TrackingError, match=r"pip install 'catalog2vec\[mlflow\]'"):
        models.resolve(tmp_path, "models:/catalog2vec@champion")
