"""The one name policy (catalog2vec.names), the storage join that cannot leave its root, the SQL
escapers, secret redaction, and the job flags that take names: a hostile name is one line and exit 2
at the command line, and nothing is written anywhere."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

from catalog2vec import names, storage
from catalog2vec.config import ConfigError, load_config
from catalog2vec.errors import InvalidInput
from catalog2vec.redact import redact, redact_text

HOSTILE = ["..", ".", "../../x", "a/b", "/etc", "x\\' OR true --", "x' OR '1'='1", "", " v1", "v1\n", "a\x1bb",
           "-rf", "v" * 129, "models:/m@a/../../x", "ü"]
GOOD = ["latest", "champion", "v1a2b3c4d5e6f7a8b", "resnet18-bce-v1234567-89abcdef", "20261204T120000Z-1a2b3c4d",
        "catalog2vec-scheduled__2026-11-23T0000000000", "synthetic-daily", "a.b_c-d", "v" * 128]


@pytest.mark.parametrize("name", GOOD)
def test_good_names_pass(name: str) -> None:
    assert names.validate_name(name, "run_id") == name


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_with_the_field_named(name: str) -> None:
    with pytest.raises(InvalidInput, match=r"invalid feature_version .*: a name is"):
        names.validate_name(name, "feature_version")


def test_model_refs_admit_mlflow_uris_only_in_their_own_shape() -> None:
    assert names.validate_model_ref("models:/catalog2vec@champion") == "models:/catalog2vec@champion"
    assert names.validate_model_ref("models:/catalog2vec/12") == "models:/catalog2vec/12"
    for bad in ("models:/../x", "models:/m@a b", "runs:/abc/model", "s3://b/models/x", "../x"):
        with pytest.raises(InvalidInput):
            names.validate_model_ref(bad)


@pytest.mark.parametrize("part", ["..", "a/../b", "../x", ".", "./x", "/etc", "s3://other/x", "a\\..\\b", "x\0y"])
@pytest.mark.parametrize("base", ["/tmp/lake", "s3://bucket/lake", "memory://lake"])
def test_storage_join_never_leaves_its_base(base: str, part: str) -> None:
    with pytest.raises(storage.StorageError, match="would leave"):
        storage.join(base, "_runs", part, "job.json")


def test_storage_join_keeps_relative_names() -> None:
    assert storage.join("s3://b/lake", "models", "v1/model_card.json") == "s3://b/lake/models/v1/model_card.json"
    assert storage.join("/tmp/lake", "a..b", "c.json") == "/tmp/lake/a..b/c.json"  # '..' inside a name is fine


def test_escapers_follow_each_engine() -> None:
    assert names.spark_literal("x\\' OR true --") == "'x\\\\\\' OR true --'"
    assert names.spark_literal("it's") == "'it\\'s'"
    assert names.duckdb_literal("it's \\n") == "'it''s \\n'"


def test_duckdb_literal_round_trips() -> None:
    import duckdb

    for value in ["x\\' OR true --", "it's", "a\\b", "'; DROP TABLE t; --"]:
        assert duckdb.sql(f"SELECT {names.duckdb_literal(value)} AS v").fetchall() == [(value,)]


def test_config_refuses_a_hostile_run_id_and_versions(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid run_id"):
        load_config(None, [], lakehouse=str(tmp_path), run_id="../../x")
    with pytest.raises(ConfigError, match=r"invalid train\.model_version"):
        load_config(None, ["train.model_version=../../x"], lakehouse=str(tmp_path), run_id="r1")
    with pytest.raises(ConfigError, match=r"invalid train\.vocab_version"):
        load_config(None, ["train.vocab_version=v1/../../x"], lakehouse=str(tmp_path), run_id="r1")


# every job flag that takes a name, with the job module that declares it
NAME_FLAGS = [
    ("build_vocab", ["--run-id", "../../x"]),
    ("train", ["--run-id", "../../x"]),
    ("train", ["--vocab-version", "../v1"]),
    ("train", ["--model-version", "../../m"]),
    ("embed", ["--model-version", "../../m"]),
    ("neighbors", ["--model-version", "..%2F..%2Fm/../x"]),
    ("build_ctr_features", ["--feature-version", "../../f"]),
    ("build_ctr_features", ["--model-version", "../m"]),
    ("train_ctr", ["--feature-version", "x\\' OR true --"]),
    ("train_ctr", ["--feature-version", "f1", "--version", "../../ctr"]),
    ("register_tables", ["--model-version", "../m"]),
]


@pytest.mark.parametrize(("job", "argv"), NAME_FLAGS, ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_job_flags_refuse_hostile_names_with_one_line_and_exit_2(
    job: str, argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(job)
    lake = tmp_path / "lake"
    with pytest.raises(SystemExit) as exc:
        module.main(["--lakehouse", str(lake), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"spark-submit jobs/{job}.py: error: argument ") and "a name is" in err[-1], err
    assert os.listdir(tmp_path) == []  # nothing written, inside or outside the lakehouse
    assert not (tmp_path.parent / "x").exists() and not (tmp_path.parent.parent / "x").exists()


@pytest.mark.parametrize("job", ["build_vocab", "train", "embed", "neighbors", "cluster", "evaluate",
                                 "build_ctr_features", "train_ctr", "register_tables", "train_similarity",
                                 "ingest_catalog", "maintain_tables"])
def test_every_default_passes_its_own_name_check(job: str) -> None:
    """argparse converts string defaults with ``type=``: a default that is not a name would fail
    every run that does not pass the flag (register_tables' ``--model-version ""`` did)."""
    module = importlib.import_module(job)
    argv = {"train_ctr": ["--feature-version", "f1"], "ingest_catalog": ["--input", "x.csv", "--format", "csv"]}.get(job, [])
    module.get_args_parser().parse_args(argv)


def test_s3_settings_repr_hides_the_secret() -> None:
    s = storage.S3Settings(endpoint="http://127.0.0.1:9000", access_key="AKIAEXAMPLE", secret_key="TOPSECRET-1",
                           session_token="TOPSECRET-2", region="us-east-1")
    assert "TOPSECRET" not in repr(s) and "TOPSECRET" not in str(s)
    assert s.fsspec_options()["secret"] == "TOPSECRET-1"  # still usable


def test_redaction_of_configs_urls_and_messages() -> None:
    cfg = {"mlflow": {"tracking_uri": "https://alice:TOPSECRET@mlflow.example:5000/"},
           "s3": {"secret_key": "TOPSECRET", "access_key": "AKIA", "session_token": "TOPSECRET"},
           "text": {"min_token_len": 2}, "webhook": "https://hooks.example/x?token=TOPSECRET&channel=ops"}
    out = redact(cfg)
    assert "TOPSECRET" not in repr(out)
    assert out["text"]["min_token_len"] == 2 and out["s3"]["access_key"] == "***"
    assert out["mlflow"]["tracking_uri"] == "https://***@mlflow.example:5000/"
    assert redact_text("s3a://AKIA:SECRET@bucket/x failed") == "s3a://***@bucket/x failed"


def test_run_record_of_a_run_with_credentials_holds_no_secret(tmp_path: Path) -> None:
    import json

    from _common import run_job

    cfg = load_config(None, ["mlflow.tracking_uri=https://alice:TOPSECRET@mlflow.example/"],
                      lakehouse=str(tmp_path / "lh"), run_id="r1")

    def job() -> dict[str, str]:
        raise InvalidInput(f"cannot reach {cfg.mlflow.tracking_uri}")

    assert run_job("demo", job, cfg) == 2
    text = (tmp_path / "lh" / "_runs" / "r1" / "demo.json").read_text()
    assert "TOPSECRET" not in text and json.loads(text)["status"] == "failed"
