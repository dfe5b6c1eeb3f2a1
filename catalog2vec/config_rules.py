"""Allowed values and ranges of the run configuration, checked when a config is loaded.

:mod:`catalog2vec.config` checks types and unknown keys; this table adds what a type cannot say:
the names a key accepts (``train.loss`` is ``softmax`` or ``bce``) and the range of a number (a
fraction in (0, 1], a positive size). ``load_config`` runs :func:`problems` on every config it
reads, so a typo fails at load with the key, the value and the choices — not at the seventh task
of a DAG run. :func:`json_schema` renders the same table (with the types and defaults of the
dataclasses) as a JSON Schema for editors: ``conf/catalog2vec.schema.json``.

The names mirror the constants of the packages that use them (``vision.model.ARCHS``,
``retrieval.index.INDEX_KINDS``, …); ``tests/unit/foundation/test_config_rules.py`` fails when
the two drift. This module imports nothing of the project (config imports it).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    """What one ``section.key`` accepts beyond its type."""

    choices: tuple[str, ...] = ()
    pattern: str = ""  # a full-match regex, instead of (or besides) choices
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False

    def problem(self, key: str, value: Any) -> str | None:
        if isinstance(value, str):
            ok = value in self.choices or bool(self.pattern and re.fullmatch(self.pattern, value))
            if (self.choices or self.pattern) and not ok:
                allowed = ", ".join(f'"{c}"' for c in self.choices)
                if self.pattern:
                    allowed = f"{allowed} (or matching {self.pattern})" if allowed else f"a value matching {self.pattern}"
                return f"{key} = {value!r} is not allowed: choose one of {allowed}"
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        low_bad = self.minimum is not None and (
            value <= self.minimum if self.exclusive_minimum else value < self.minimum)
        high_bad = self.maximum is not None and (
            value >= self.maximum if self.exclusive_maximum else value > self.maximum)
        if low_bad or high_bad or (isinstance(value, float) and not math.isfinite(value)):
            return f"{key} = {value!r} is out of range: must be {self.describe_range()}"
        return None

    def describe_range(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            lo = "(" if self.exclusive_minimum else "["
            hi = ")" if self.exclusive_maximum else "]"
            return f"in {lo}{_num(self.minimum)}, {_num(self.maximum)}{hi}"
        if self.minimum is not None:
            return f"{'>' if self.exclusive_minimum else '>='} {_num(self.minimum)}"
        if self.maximum is not None:
            return f"{'<' if self.exclusive_maximum else '<='} {_num(self.maximum)}"
        return "finite"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def one_of(*choices: str) -> Rule:
    return Rule(choices=choices)


def at_least(n: float) -> Rule:
    return Rule(minimum=n)


POSITIVE = Rule(minimum=0, exclusive_minimum=True)  # > 0
FRACTION = Rule(minimum=0, maximum=1, exclusive_minimum=True)  # (0, 1]
OPEN_FRACTION = Rule(minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True)  # (0, 1)
SHARE = Rule(minimum=0, maximum=1)  # [0, 1]

# section.key -> rule. Names: the sets the code accepts (see the module docstring).
RULES: dict[str, Rule] = {
    # ingest
    "ingest.max_field_chars": at_least(1),
    "ingest.max_record_chars": at_least(1),
    "ingest.max_json_depth": at_least(1),
    "ingest.max_file_bytes": at_least(1),
    "ingest.max_id_chars": at_least(1),
    # text
    "text.max_chars": at_least(1),
    "text.min_token_len": at_least(1),
    "text.vocab_size": at_least(1),
    "text.min_count": at_least(1),
    "text.top_k_log": at_least(0),
    # labels (the three ratios also sum to 1: see CROSS_CHECKS)
    "labels.train": SHARE,
    "labels.val": SHARE,
    "labels.test": SHARE,
    # images
    "images.short_side": at_least(1),
    "images.max_pixels": at_least(1),
    "images.jpeg_quality": Rule(minimum=1, maximum=100),
    "images.max_bytes": at_least(1),
    # train
    "train.arch": one_of("resnet18", "resnet34", "resnet50", "resnet101"),
    "train.loss": one_of("softmax", "bce"),
    "train.negative_sampler": one_of("uniform", "unigram"),
    "train.optimizer": one_of("sgd", "adam", "adamw"),
    "train.head": one_of("linear", "cosine"),
    "train.augment": one_of("crop", "product"),
    "train.lr_schedule": one_of("step", "cosine"),
    "train.num_negatives": at_least(1),
    "train.embed_dim": at_least(0),
    "train.dropout": Rule(minimum=0, maximum=1, exclusive_maximum=True),
    "train.image_size": at_least(16),
    "train.epochs": at_least(1),
    "train.batch_size": at_least(1),
    "train.max_steps": at_least(0),
    "train.lr": at_least(0),
    "train.momentum": Rule(minimum=0, maximum=1, exclusive_maximum=True),
    "train.weight_decay": at_least(0),
    "train.lr_step_size": at_least(1),
    "train.lr_gamma": FRACTION,
    "train.workers": at_least(0),
    "train.checkpoint_every": at_least(0),
    "train.num_processes": at_least(1),
    "train.scale_min": FRACTION,
    "train.init_scale": POSITIVE,
    "train.warmup_epochs": at_least(0),
    "train.bce_pos_weight_power": at_least(0),
    "train.max_label_share": FRACTION,
    "train.top_k": at_least(1),
    "train.log_every": at_least(1),
    # embed
    "embed.batch_size": at_least(1),
    "embed.top_n": at_least(1),
    "embed.commit_rows": at_least(1),
    "embed.device": Rule(choices=("auto", "cpu", "cuda"), pattern=r"cuda:\d+"),
    "embed.torch_threads": at_least(0),
    # retrieval
    "retrieval.index": one_of("auto", "flat", "ivf", "ivfpq", "hnsw"),
    "retrieval.k": at_least(1),
    "retrieval.nlist": at_least(0),
    "retrieval.nprobe": at_least(0),
    "retrieval.hnsw_m": at_least(2),
    "retrieval.ef_search": at_least(1),
    "retrieval.exact_max_items": at_least(0),
    "retrieval.train_sample": at_least(1),
    "retrieval.target_recall": FRACTION,
    "retrieval.recall_queries": at_least(1),
    "retrieval.index_memory_mb": at_least(0),
    "retrieval.pq_m": at_least(0),
    "retrieval.pq_refine": one_of("", "flat", "fp16", "sq8", "none"),
    # cluster
    "cluster.k": at_least(2),
    "cluster.prototypes": at_least(1),
    "cluster.metric": one_of("cosine", "euclidean"),
    "cluster.max_iter": at_least(1),
    # similarity (PAN)
    "similarity.conditions": at_least(1),
    "similarity.attribute_fn": one_of("xnor", "or", "and"),
    "similarity.lam": at_least(0),
    "similarity.epochs": at_least(1),
    "similarity.lr": POSITIVE,
    "similarity.batch_size": at_least(1),
    "similarity.neg_per_pos": at_least(1),
    "similarity.max_pos_pairs": at_least(1),
    "similarity.cond_dim": at_least(1),
    "similarity.weight_decay": at_least(0),
    "similarity.max_train_items": at_least(1),
    "similarity.max_heldout_items": at_least(1),
    # evaluation
    "evaluation.max_test_items": at_least(1),
    "evaluation.max_train_items": at_least(1),
    # promotion (evaluation.gate.METRICS)
    "promotion.metric": one_of("tag_recall@3", "tag_recall@5", "tag_recall@10", "retrieval_precision@10"),
    # ctr
    "ctr.num_trees": at_least(1),
    "ctr.num_leaves": at_least(2),
    "ctr.learning_rate": POSITIVE,
    "ctr.min_data_in_leaf": at_least(1),
    "ctr.negative_rate": FRACTION,
    "ctr.early_stopping_rounds": at_least(0),
    "ctr.lr_reg": at_least(0),
    "ctr.lr_elastic_net": SHARE,
    "ctr.lr_max_iter": at_least(1),
    "ctr.lr_negative_rate": FRACTION,
    "ctr.pca_components": at_least(0),
    "ctr.pca_sample": at_least(1),
    "ctr.tree_sample": at_least(1),
    "ctr.top_tags": at_least(0),
    "ctr.max_tag_features": at_least(0),
    "ctr.max_categories": at_least(1),
    "ctr.min_category_count": at_least(1),
    "ctr.train_fraction": OPEN_FRACTION,
    "ctr.validation_fraction": OPEN_FRACTION,
    # metastore
    "metastore.kind": one_of("embedded", "session"),
}


def _labels_sum(cfg: Any) -> str | None:
    lab = cfg.labels
    total = lab.train + lab.val + lab.test
    if abs(total - 1.0) > 1e-6:
        return f"labels.train + labels.val + labels.test = {total:g} must be 1 (got {lab.train}, {lab.val}, {lab.test})"
    return None


def _ctr_windows(cfg: Any) -> str | None:
    c = cfg.ctr
    if c.train_fraction + c.validation_fraction >= 1:
        return (f"ctr.train_fraction + ctr.validation_fraction = {c.train_fraction + c.validation_fraction:g} "
                "must be < 1 (the rest is the test window)")
    return None


CROSS_CHECKS = (_labels_sum, _ctr_windows)


_MISSING = object()


def _value(cfg: Any, key: str) -> Any:
    section, name = key.split(".", 1)
    return getattr(getattr(cfg, section, None), name, _MISSING)


def problems(cfg: Any) -> list[str]:
    """Every rule the loaded config breaks, one sentence each naming the key, the value and what
    is allowed (empty = valid). ``cfg`` is a :class:`catalog2vec.config.Config`. (A rule whose key
    the config does not have is skipped; a test keeps the table and the dataclasses in step.)"""
    found = [p for key, rule in RULES.items()
             if (v := _value(cfg, key)) is not _MISSING and (p := rule.problem(key, v))]
    return found + [p for check in CROSS_CHECKS if (p := check(cfg))]


# ---------------------------------------------------------------- JSON Schema for editors
def _type_schema(tp: Any) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is str:
        return {"type": "string"}
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return {"type": "array", "items": _type_schema(item)} if item is not Any else {"type": "array"}
    if origin is dict:
        args = typing.get_args(tp)
        return {"type": "object", "additionalProperties": _type_schema(args[1])} if args else {"type": "object"}
    if origin in (typing.Union, types.UnionType):
        options = [_type_schema(a) for a in typing.get_args(tp) if a is not type(None)]
        return options[0] if len(options) == 1 else {"anyOf": options}
    return {}


def _rule_schema(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rule.choices and not rule.pattern:
        out["enum"] = list(rule.choices)
    elif rule.pattern:
        alternatives = "|".join(re.escape(c) for c in rule.choices)
        out["pattern"] = f"^(?:{alternatives}|{rule.pattern})$" if alternatives else f"^(?:{rule.pattern})$"
    if rule.minimum is not None:
        out["exclusiveMinimum" if rule.exclusive_minimum else "minimum"] = rule.minimum
    if rule.maximum is not None:
        out["exclusiveMaximum" if rule.exclusive_maximum else "maximum"] = rule.maximum
    return out


def _section_schema(cls: Any, prefix: str) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            props[f.name] = _section_schema(tp, f"{f.name}.")
            continue
        schema = _type_schema(tp)
        rule = RULES.get(prefix + f.name)
        if rule:
            schema.update(_rule_schema(rule))
        if f.default is not dataclasses.MISSING:
            schema["default"] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            schema["default"] = f.default_factory()
        props[f.name] = schema
    return {"type": "object", "properties": props, "additionalProperties": False}


def json_schema(config_cls: Any) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of the TOML run configuration: every section and key with
    its type, default, allowed names and range; unknown keys are errors, as at load time."""
    schema = _section_schema(config_cls, "")
    schema["properties"]["extends"] = {
        "type": "string",
        "description": "a base config (relative file name or URI) whose values this file overrides",
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "catalog2vec run configuration (conf/*.toml)",
        "description": "Generated by scripts/gen_job_reference.py from catalog2vec.config and "
                       "catalog2vec.config_rules; do not edit by hand.",
        **schema,
    }
