from pathlib import Path

import pytest

from catalog2vec.config import DEFAULT_CONFIG, Config, ConfigError, load_config

REPO = Path(__file__).resolve().parents[3]


def test_local_and_cluster_configs_load_typed():
    local = load_config(REPO / "conf" / "local.toml")
    cluster = load_config(REPO / "conf" / "cluster.toml")
    assert isinstance(local, Config)
    assert local.train.arch == "resnet18" and cluster.train.arch == "resnet50"
    assert cluster.train.use_gpu is True and local.train.use_gpu is False
    assert cluster.lakehouse.startswith("s3://")
    assert isinstance(local.train.lr, float)


def test_default_is_local_toml():
    assert load_config().source_path == str(DEFAULT_CONFIG)


def test_overrides_and_common_flags():
    cfg = load_config(None, ["train.epochs=2", "train.loss=bce", "text.vocab_size=500"], lakehouse="/x", run_id="r1")
    assert (cfg.train.epochs, cfg.train.loss, cfg.text.vocab_size) == (2, "bce", 500)
    assert cfg.lakehouse == "/x" and cfg.run_id == "r1"


def test_run_id_generated_when_absent():
    a, b = load_config(), load_config()
    assert a.run_id and b.run_id and a.run_id != b.run_id


def test_unknown_key_fails_loudly(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nepochz = 3\n")
    with pytest.raises(ConfigError, match="epochz"):
        load_config(bad)


def test_wrong_type_fails(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[train]\nepochs = "three"\n')
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        load_config(bad)


def test_missing_file_and_bad_override():
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent.toml")
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        load_config(None, ["nonsense"])
