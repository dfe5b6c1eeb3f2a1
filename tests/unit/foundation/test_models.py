"""The one owner of model versions: listing, one 'latest' rule, validation, LATEST publication."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from catalog2vec import models, storage


def _card(root: Path, version: str, **card: object) -> Path:
    d = root / "models" / version
    d.mkdir(parents=True, exist_ok=True)
    (d / "model_card.json").write_text(json.dumps({"model_version": version, **card}))
    return d / "model_card.json"


def test_list_versions_needs_a_card_and_skips_reserved_names(tmp_path: Path) -> None:
    assert models.list_versions(tmp_path) == []
    _card(tmp_path, "b")
    _card(tmp_path, "a")
    (tmp_path / "models" / "half").mkdir()  # payload without card: not published
    (tmp_path / "models" / "half" / "model.pt").write_bytes(b"x")
    _card(tmp_path, "ctr")  # the CTR models live under models/ctr
    (tmp_path / "models" / "LATEST").write_text("a\n")
    assert models.list_versions(tmp_path) == ["a", "b"]


def test_latest_rule_file_first_then_newest_card(tmp_path: Path) -> None:
    with pytest.raises(models.ModelNotFoundError, match="no trained model"):
        models.resolve(tmp_path, "latest")
    _card(tmp_path, "old", created_at="2026-01-01T00:00:00Z")
    _card(tmp_path, "new", created_at="2026-06-01T00:00:00+00:00")
    nodate = _card(tmp_path, "nodate")
    os.utime(nodate, (time.time() - 10 ** 9, time.time() - 10 ** 9))  # mtime 1994: the oldest
    assert models.resolve(tmp_path, "latest") == models.resolve(tmp_path, None) == models.resolve(tmp_path, "") == "new"
    models.publish_latest(tmp_path, "old")
    assert (tmp_path / "models" / "LATEST").read_text() == "old\n"
    assert models.resolve(tmp_path, "latest") == "old"
    assert models.resolve(tmp_path, "new") == "new"
    with pytest.raises(models.ModelNotFoundError, match=r"unknown model_version 'x'.*available: \['new', 'nodate', 'old'\]"):
        models.resolve(tmp_path, "x")
    (tmp_path / "models" / "LATEST").write_text("gone\n")
    with pytest.raises(models.ModelNotFoundError, match="names 'gone', which has no model card"):
        models.resolve(tmp_path, "latest")
    with pytest.raises(models.ModelNotFoundError, match="no model card"):
        models.publish_latest(tmp_path, "unpublished")


def test_trained_at_and_newest(tmp_path: Path) -> None:
    assert models.newest_trained_at(tmp_path) is None
    _card(tmp_path, "v1", created_at="2026-11-20T06:00:00")
    assert models.trained_at(tmp_path, "v1").isoformat() == "2026-11-20T06:00:00+00:00"
    assert models.newest_trained_at(tmp_path) == models.trained_at(tmp_path, "v1")


def test_model_dir_rejects_path_like_versions(tmp_path: Path) -> None:
    assert models.model_dir("s3a://b/lake", "v1") == "s3a://b/lake/models/v1"
    for bad in ("", "..", "a/b"):
        with pytest.raises(ValueError, match="invalid model_version"):
            models.model_dir(tmp_path, bad)


def test_derive_version_is_the_one_naming_rule() -> None:
    assert models.derive_version("", "resnet18", "bce", "1a2b3c4d9999", "5e6f7a8b0000") == "resnet18-bce-1a2b3c4d-5e6f7a8b"
    assert models.derive_version("my-run.1", "resnet18", "bce", "v", "c") == "my-run.1"
    with pytest.raises(ValueError, match="invalid model_version"):
        models.derive_version("../x", "resnet18", "bce", "v", "c")


def test_torch_save_load_roundtrip_on_memory_fs() -> None:
    import torch

    uri = "memory://c2v-models-test/w.pt"
    models.save_torch({"w": torch.arange(3)}, uri)
    assert torch.equal(models.load_torch(uri)["w"], torch.arange(3))
    storage.remove(uri)
