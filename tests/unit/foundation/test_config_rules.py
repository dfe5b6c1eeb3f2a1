"""Config values are checked when the TOML is read (catalog2vec.config_rules): a typo in a name or
a value out of range fails at load with the key, the value and what is allowed; the shipped
configs pass; the names agree with the packages that use them; the JSON Schema for editors says
the same as the loader."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest

from catalog2vec import config_rules
from catalog2vec.config import Config, ConfigError, load_config
from catalog2vec.errors import InvalidInput

REPO = Path(__file__).resolve().parents[3]
SCHEMA = REPO / "conf" / "catalog2vec.schema.json"
CONFS = sorted((REPO / "conf").glob("*.toml"))


@pytest.mark.parametrize("path", CONFS, ids=lambda p: p.name)
def test_shipped_configs_pass(path: Path) -> None:
    cfg = load_config(path)
    assert config_rules.problems(cfg) == []


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ('train.loss="sofmax"', "train.loss = 'sofmax' is not allowed: choose one of \"softmax\", \"bce\""),
        ('train.arch="resnet5"', 'train.arch = \'resnet5\' is not allowed: choose one of "resnet18", "resnet34", '
                                 '"resnet50", "resnet101"'),
        ('train.head="cosin"', "train.head = 'cosin' is not allowed: choose one of \"linear\", \"cosine\""),
        ('train.augment="flip"', "train.augment = 'flip' is not allowed: choose one of \"crop\", \"product\""),
        ('retrieval.index="hnws"', "retrieval.index = 'hnws' is not allowed: choose one of \"auto\", \"flat\", "
                                   "\"ivf\", \"ivfpq\", \"hnsw\""),
        ('cluster.metric="manhattan"', "cluster.metric = 'manhattan' is not allowed"),
        ('similarity.attribute_fn="xor"', "similarity.attribute_fn = 'xor' is not allowed"),
        ('embed.device="gpu"', "embed.device = 'gpu' is not allowed: choose one of \"auto\", \"cpu\", \"cuda\""),
        ("ctr.negative_rate=0", "ctr.negative_rate = 0.0 is out of range: must be in (0, 1]"),
        ("ctr.negative_rate=1.5", "ctr.negative_rate = 1.5 is out of range: must be in (0, 1]"),
        ("train.epochs=0", "train.epochs = 0 is out of range: must be >= 1"),
        ("train.dropout=1.0", "train.dropout = 1.0 is out of range: must be in [0, 1)"),
        ("images.jpeg_quality=101", "images.jpeg_quality = 101 is out of range: must be in [1, 100]"),
        ("text.vocab_size=-5", "text.vocab_size = -5 is out of range: must be >= 1"),
        ("labels.train=0.9", "labels.train + labels.val + labels.test = 1.1 must be 1"),
        ("ctr.train_fraction=0.9", "ctr.train_fraction + ctr.validation_fraction = 1.05 must be < 1"),
    ],
)
def test_bad_value_fails_at_load_naming_key_value_and_choices(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert isinstance(err.value, InvalidInput)
    text = str(err.value)
    assert message in text
    assert "\n" not in text


def test_every_broken_rule_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ['train.loss="x"', "cluster.k=1", 'metastore.kind="glue"'])
    text = str(err.value)
    assert "train.loss = 'x'" in text and "cluster.k = 1" in text and "metastore.kind = 'glue'" in text


def test_accepted_values_load() -> None:
    cfg = load_config(None, ['embed.device="cuda:1"', "train.lr=0.0", "train.checkpoint_every=0",
                             'retrieval.index="hnsw"', 'train.loss="bce"', "ctr.negative_rate=1"])
    assert (cfg.embed.device, cfg.train.lr, cfg.retrieval.index, cfg.ctr.negative_rate) == ("cuda:1", 0.0, "hnsw", 1.0)


def test_a_job_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "jobs"))
    import build_labels

    with pytest.raises(SystemExit) as exit_:
        build_labels.main(["--lakehouse", str(tmp_path), "--set", 'train.optimizer="adamm"'])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "train.optimizer = 'adamm' is not allowed: choose one of \"sgd\", \"adam\", \"adamw\"" in err


def test_names_agree_with_the_packages_that_use_them() -> None:
    from catalog2vec.evaluation.gate import METRICS
    from catalog2vec.lakehouse import metastore
    from catalog2vec.retrieval.index import INDEX_KINDS
    from catalog2vec.similarity.pan import ATTRIBUTE_FNS
    from catalog2vec.vision.losses import SAMPLERS
    from catalog2vec.vision.model import ARCHS, HEADS
    from catalog2vec.vision.transforms import AUGMENTS

    rules = config_rules.RULES
    assert rules["train.arch"].choices == ARCHS
    assert rules["train.head"].choices == HEADS
    assert rules["train.augment"].choices == AUGMENTS
    assert rules["train.negative_sampler"].choices == SAMPLERS
    assert set(rules["retrieval.index"].choices) == {"auto", *INDEX_KINDS}
    assert rules["similarity.attribute_fn"].choices == ATTRIBUTE_FNS
    assert rules["metastore.kind"].choices == metastore.KINDS
    assert rules["promotion.metric"].choices == METRICS
    # every rule names a key the config has
    for key in rules:
        section, name = key.split(".")
        assert hasattr(getattr(Config(), section), name), key


def test_json_schema_is_committed_and_agrees_with_the_loader() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema == config_rules.json_schema(Config)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in CONFS:
        assert list(validator.iter_errors(tomllib.loads(path.read_text(encoding="utf-8")))) == [], path.name
    train = schema["properties"]["train"]["properties"]
    assert train["loss"] == {"type": "string", "enum": ["softmax", "bce"], "default": "softmax"}
    assert train["epochs"] == {"type": "integer", "minimum": 1, "default": 20}
    bad = {"train": {"loss": "sofmax", "epochz": 3}, "ctr": {"negative_rate": 0}, "embed": {"device": "cuda:0"}}
    messages = sorted(e.message for e in validator.iter_errors(bad))
    assert len(messages) == 3
    assert any("'sofmax' is not one of ['softmax', 'bce']" in m for m in messages)
    assert any("epochz" in m for m in messages)
    assert any("less than or equal to the minimum of 0" in m for m in messages)
