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


def test_config_from_a_uri_and_shipped_by_content(tmp_path):
    from catalog2vec import storage
    from catalog2vec.config import config_from_dict

    src = (REPO / "conf" / "cluster.toml").read_bytes()
    storage.write_bytes("memory://c2v-conf/cluster.toml", src)
    cfg = load_config("memory://c2v-conf/cluster.toml", ["train.epochs=3"], run_id="r9")
    assert cfg.train.arch == "resnet50" and cfg.train.epochs == 3
    assert cfg.source_path == "memory://c2v-conf/cluster.toml"
    assert config_from_dict(cfg.to_dict()) == cfg  # what TorchDistributor workers receive


def test_named_missing_config_is_an_error_even_for_uris():
    with pytest.raises(ConfigError, match=r"config file not found: memory://c2v-conf/nope\.toml"):
        load_config("memory://c2v-conf/nope.toml")


def test_packaged_default_and_warning_fallback(monkeypatch, capsys, tmp_path):
    import catalog2vec.config as config_mod

    assert DEFAULT_CONFIG.is_file() and "catalog2vec" in str(DEFAULT_CONFIG.parent.parent)
    assert DEFAULT_CONFIG.read_bytes() == (REPO / "conf" / "local.toml").read_bytes()  # one file, shipped
    monkeypatch.setattr(config_mod, "DEFAULT_CONFIG", tmp_path / "absent.toml")
    cfg = config_mod.load_config()
    assert cfg.source_path == "<built-in defaults>" and cfg.train.arch == "resnet50"
    assert "using built-in defaults" in capsys.readouterr().err


def test_standalone_extends_local(tmp_path):
    local = load_config(REPO / "conf" / "local.toml")
    sa = load_config(REPO / "conf" / "standalone.toml")
    assert (sa.train.num_processes, sa.train.local_mode) == (2, False)
    assert (sa.train.arch, sa.train.image_size, sa.retrieval, sa.ctr) == (
        local.train.arch, local.train.image_size, local.retrieval, local.ctr)
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('extends = "b.toml"\n')
    b.write_text('extends = "a.toml"\n')
    with pytest.raises(ConfigError, match="circular extends"):
        load_config(a)
    (tmp_path / "c.toml").write_text('extends = "missing.toml"\n')
    with pytest.raises(ConfigError, match=r"extends 'missing\.toml'"):
        load_config(tmp_path / "c.toml")
