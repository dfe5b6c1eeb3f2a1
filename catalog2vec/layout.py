"""The lakehouse layout: the one place that knows where each table and artifact lives under the root.

Tables are Delta directories at ``<root>/<layer>/<table>`` (declared in ``schemas/``, opened by
:func:`catalog2vec.lakehouse.table_path`, which joins through :func:`table_dir`). Every other
artifact lives beside them under the same root, one function per kind::

    <root>/models/<model_version>/          vision model: weights, vocab, model_card.json  model_dir
    <root>/models/LATEST                    the champion's name (one line)                 latest_file
    <root>/models/ctr/<ctr_version>/        CTR boosters, LR models, model_card.json       ctr_model_dir
    <root>/models/ctr/features/<v>.json     a CTR feature set's description                ctr_features_file
    <root>/indexes/<model_version>/         kNN index                                      index_dir
    <root>/reports/<model_version>/         evaluation report, promotion.json              report_dir
    <root>/reports/ctr/<ctr_version>/       CTR report                                     ctr_report_dir
    <root>/similarity/<model_version>/      PAN similarity head                            similarity_dir
    <root>/vocab/<vocab_version>/, CURRENT  plain Parquet copy of the vocabulary           vocab_dir
    <root>/_runs/<run_id>/<job>.json        each job's run record                          run_record
    <root>/_metastore/                      the embedded (Derby) metastore                 metastore_dir

Who publishes and resolves what stays with its owner (:mod:`catalog2vec.models` for model
versions and ``LATEST``, CTR models included); this module only says where. Every version or run
id that becomes a path segment is validated here (:func:`catalog2vec.names.validate_name`): one
validator for every name a path is built from. ``tests/unit/foundation/test_layout.py`` keeps
artifact joins out of every other module.

>>> from catalog2vec import layout
>>> layout.model_dir("/lake", "resnet18-bce-1a2b3c4d-5e6f7a8b")
'/lake/models/resnet18-bce-1a2b3c4d-5e6f7a8b'
"""

from __future__ import annotations

import os

from catalog2vec import names, storage

Root = str | os.PathLike[str]

MODELS = "models"
LATEST_FILE = "LATEST"
CTR = "ctr"  # models/ctr and reports/ctr: the CTR models' namespace beside the vision versions
CTR_FEATURES = "features"
INDEXES = "indexes"
REPORTS = "reports"
SIMILARITY = "similarity"
VOCAB = "vocab"
VOCAB_CURRENT_FILE = "CURRENT"
RUNS = "_runs"
METASTORE = "_metastore"
# names directly under models/ that are no vision model version
MODELS_RESERVED = frozenset({LATEST_FILE, CTR})


def _segment(name: str, what: str) -> str:
    """One path segment from a version or run id: a validated name (never ``..``, never a ``/``;
    else :class:`catalog2vec.errors.InvalidInput`, a ``ValueError``)."""
    return names.validate_name(name, what)


def table_dir(root: Root, relpath: str) -> str:
    """``<root>/<layer>/<table>`` (``relpath`` = ``layer/table``, as :attr:`TableSpec.relpath`)."""
    return storage.join(root, relpath)


def models_dir(root: Root) -> str:
    return storage.join(root, MODELS)


def model_dir(root: Root, model_version: str) -> str:
    """``<root>/models/<model_version>`` (absolute for local paths, a URI otherwise)."""
    return storage.join(models_dir(root), _segment(model_version, "model_version"))


def latest_file(root: Root) -> str:
    """``<root>/models/LATEST``: the one-line pointer at the champion."""
    return storage.join(models_dir(root), LATEST_FILE)


def ctr_models_dir(root: Root) -> str:
    return storage.join(models_dir(root), CTR)


def ctr_model_dir(root: Root, ctr_version: str) -> str:
    """``<root>/models/ctr/<ctr_version>``."""
    return storage.join(ctr_models_dir(root), _segment(ctr_version, "ctr_version"))


def ctr_features_file(root: Root, feature_version: str) -> str:
    """``<root>/models/ctr/features/<feature_version>.json``."""
    return storage.join(ctr_models_dir(root), CTR_FEATURES, _segment(feature_version, "feature_version") + ".json")


def index_dir(root: Root, model_version: str) -> str:
    """``<root>/indexes/<model_version>``."""
    return storage.join(root, INDEXES, _segment(model_version, "model_version"))


def report_dir(root: Root, model_version: str) -> str:
    """``<root>/reports/<model_version>`` (the evaluation report and the promotion decision)."""
    return storage.join(root, REPORTS, _segment(model_version, "model_version"))


def ctr_report_dir(root: Root, ctr_version: str) -> str:
    """``<root>/reports/ctr/<ctr_version>``."""
    return storage.join(root, REPORTS, CTR, _segment(ctr_version, "ctr_version"))


def similarity_dir(root: Root, model_version: str) -> str:
    """``<root>/similarity/<model_version>``."""
    return storage.join(root, SIMILARITY, _segment(model_version, "model_version"))


def vocab_dir(root: Root, vocab_version: str) -> str:
    """``<root>/vocab/<vocab_version>``."""
    return storage.join(root, VOCAB, _segment(vocab_version, "vocab_version"))


def vocab_current_file(root: Root) -> str:
    """``<root>/vocab/CURRENT``: the one-line pointer at the vocab_version build_labels uses."""
    return storage.join(root, VOCAB, VOCAB_CURRENT_FILE)


def runs_dir(root: Root) -> str:
    return storage.join(root, RUNS)


def run_record(root: Root, run_id: str, job: str) -> str:
    """``<root>/_runs/<run_id>/<job>.json``."""
    return storage.join(runs_dir(root), _segment(run_id, "run_id"), _segment(job, "job") + ".json")


def metastore_dir(root: Root) -> str:
    """``<root>/_metastore``: the embedded metastore's default directory."""
    return storage.join(root, METASTORE)


__all__ = [
    "LATEST_FILE",
    "MODELS_RESERVED",
    "ctr_features_file",
    "ctr_model_dir",
    "ctr_models_dir",
    "ctr_report_dir",
    "index_dir",
    "latest_file",
    "metastore_dir",
    "model_dir",
    "models_dir",
    "report_dir",
    "run_record",
    "runs_dir",
    "similarity_dir",
    "table_dir",
    "vocab_current_file",
    "vocab_dir",
]
