"""Typed run configuration, loaded from TOML (``conf/local.toml`` is the embedded default).

Every section is a frozen dataclass; unknown keys fail loudly (a typo in a config file must not
be silently ignored). Jobs accept ``--config FILE`` plus overrides: ``--lakehouse``, ``--run-id``
and generic ``--set section.key=value`` (value parsed as TOML, e.g. ``--set train.epochs=2``).
"""

from __future__ import annotations

import dataclasses
import sys
import tomllib
import types
import typing
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from catalog2vec import config_rules, names, storage
from catalog2vec.errors import InvalidInput

# The embedded default ships inside the package (a link to conf/local.toml in the source tree).
DEFAULT_CONFIG = Path(__file__).resolve().parent / "resources" / "conf" / "local.toml"


class ConfigError(InvalidInput):
    """A configuration file or override is invalid."""


@dataclass(frozen=True)
class SparkSection:
    master: str = "local[*]"  # used only when not launched by spark-submit
    conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestSection:
    max_field_chars: int = 65536  # a canonical text field longer than this is quarantined
    # a raw record (JSON line, CSV record, Parquet row) or its extra map longer than this is
    # quarantined as record_too_large; also the CSV field-size limit
    max_record_chars: int = 1_048_576
    max_json_depth: int = 64  # a JSON line nested deeper than this is malformed_record
    max_file_bytes: int = 2 << 30  # an input file over this many bytes fails the job (one line, exit 2)
    default_source: str = "crawl"
    max_id_chars: int = 256  # id policy: longer item_ids are quarantined as invalid_id
    # local directories an image_uri given in the data may point into, besides the input's directory
    image_roots: list[str] = field(default_factory=list)
    # URI schemes an image_uri may use (s3 also admits s3a/s3n); unset = the lakehouse's own
    # object-store scheme when the lakehouse is on one (s3, gs, abfs), else none. file/local never.
    image_schemes: list[str] | None = None
    # when given, a URI image_uri must also lie under one of these (e.g. "s3://bucket/images")
    image_prefixes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.image_schemes is not None and (
            not isinstance(self.image_schemes, list) or not all(isinstance(s, str) for s in self.image_schemes)
        ):
            raise ConfigError(f"ingest.image_schemes: expected a list of scheme names, got {self.image_schemes!r}")
        for name in ("max_record_chars", "max_json_depth", "max_file_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ingest.{name}: must be at least 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class TextSection:
    # canonical field -> weight (an integer weight repeats the field's tokens when counting)
    fields: dict[str, int] = field(
        default_factory=lambda: {"title": 1, "description": 1, "category": 1, "color": 1}
    )
    max_chars: int = 20000
    min_token_len: int = 2
    stopwords_language: str = "english"
    # extra word-list files (one word per line, '#' comments) added to the packaged lists
    extra_stopwords: list[str] = field(default_factory=list)
    extra_nonvisual: list[str] = field(default_factory=list)
    extra_marketing: list[str] = field(default_factory=list)
    extra_shops: list[str] = field(default_factory=list)
    # replace the packaged lists entirely (empty = use packaged; stop words: a one-word-per-line file)
    replace_stopwords: str = ""
    replace_nonvisual: str = ""
    replace_marketing: str = ""
    replace_shops: str = ""
    vocab_size: int = 30000
    min_count: int = 2
    top_k_log: int = 30  # how many top words build_vocab prints


@dataclass(frozen=True)
class LabelsSection:
    train: float = 0.8
    val: float = 0.1
    test: float = 0.1
    salt: str = "catalog2vec"


@dataclass(frozen=True)
class ImagesSection:
    short_side: int = 256
    max_pixels: int = 40_000_000
    jpeg_quality: int = 90
    image_root: str = ""  # relative image_uri values resolve against this (default: as stored)
    upscale: bool = False  # False: images smaller than short_side are kept at their size (not enlarged)
    max_bytes: int = 64 << 20  # a source image file over this size is quarantined (image_too_large)


@dataclass(frozen=True)
class TrainSection:
    arch: str = "resnet50"
    loss: str = "softmax"  # softmax (sampled, negative sampling) | bce (multi-label sigmoid)
    num_negatives: int = 100
    negative_sampler: str = "unigram"  # uniform | unigram (count^0.75)
    embed_dim: int = 0  # 0 = no projection (z is the pooled 2048-d feature)
    dropout: float = 0.0
    image_size: int = 224
    epochs: int = 20
    batch_size: int = 20
    max_steps: int = 0  # 0 = no cap
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_step_size: int = 10
    lr_gamma: float = 0.1
    workers: int = 2
    checkpoint_every: int = 100
    seed: int = 0
    deterministic: bool = False
    init_weights: str = ""
    num_processes: int = 1
    local_mode: bool = True
    use_gpu: bool = False
    mlflow: bool = False  # log params, per-epoch metrics, card and model to MLflow; register ([mlflow])
    vocab_version: str = ""  # "" = the latest in silver/vocab
    model_version: str = ""  # "" = derived: {arch}-{loss}-{vocab_version[:8]}-{config hash[:8]}
    scale_min: float = 0.25  # RandomResizedCrop scale lower bound (augment = "crop")
    # the recipe (README "Images → weakly supervised ResNet"; chosen by measurement, BENCHMARKS.md)
    head: str = "linear"  # linear (z·Wᵀ+b) | cosine (unit-norm embedding, s·cos(z, W)+b, learned s)
    init_scale: float = 10.0  # cosine head: initial temperature s
    init_bias_prior: bool = False  # start the word bias at the training label prior
    augment: str = "crop"  # crop (RandomResizedCrop(scale_min..1) + flip) | product (resize, small shift, flip)
    lr_schedule: str = "step"  # step (StepLR per epoch: lr_step_size, lr_gamma) | cosine (per step, to 0)
    warmup_epochs: float = 0.0  # linear warm-up from lr/100 (cosine schedule)
    no_decay_1d: bool = False  # no weight decay on biases, BatchNorm and the temperature
    bce_pos_weight_power: float = 0.0  # bce: positive weight ((N - n_w) / n_w) ** power per word (0 = off)
    max_label_share: float = 1.0  # drop words labelling more than this share of training items (1 = keep all)
    # attribute heads (issue 31): softmax heads over bronze/catalog_items fields beside the word head,
    # reading the gold embedding; classes from the train split, rarer than attribute_min_count -> "other"
    attribute_heads: list[str] = field(default_factory=list)  # of category | color | gender ([] = off)
    attribute_weight: float = 0.5  # loss weight of each attribute head (cross-entropy, added to the word loss)
    attribute_weights: dict[str, float] = field(default_factory=dict)  # per-field weight overriding attribute_weight
    attribute_min_count: int = 5  # training items a value needs to be its own class
    # brightness/contrast-only jitter (never hue/saturation: colour words are labels); factor in [1-x, 1+x]
    brightness: float = 0.0
    contrast: float = 0.0
    top_k: int = 5  # validation: precision/recall@k
    log_every: int = 10  # steps between progress lines
    amp: bool = True  # bf16 autocast + channels_last (CUDA only)


@dataclass(frozen=True)
class EmbedSection:
    batch_size: int = 64  # images per model forward (predict_batch_udf / RunInference batch)
    top_n: int = 10  # tags kept per item in gold/item_tags
    full_probabilities: bool = False  # also write gold/item_tag_probabilities (all K per item)
    commit_rows: int = 50000  # images per MERGE commit (a killed run resumes after the last one)
    device: str = "auto"  # auto (the task's GPU if any, else CPU) | cpu | cuda
    torch_threads: int = 0  # intra-op threads per Python worker (0 = spark.task.cpus on CPU)


@dataclass(frozen=True)
class RetrievalSection:
    # auto: exact (flat) up to exact_max_items, IVF above (IVF-PQ above index_memory_mb)
    # | flat | ivf | ivfpq | hnsw (hnsw: CLI/browser only)
    index: str = "auto"
    k: int = 10
    nlist: int = 0  # ivf lists (0 = min(4*sqrt(n), train_sample/39))
    nprobe: int = 0  # ivf lists visited per query (0 = the fewest reaching target_recall on the sample)
    hnsw_m: int = 32
    ef_search: int = 64
    exact_max_items: int = 200_000  # index = auto: flat up to this many items, IVF above
    train_sample: int = 100_000  # ivf: vectors sampled to the driver to train the coarse quantizer
    target_recall: float = 0.95  # ivf, nprobe = 0: recall@k vs exact search the nprobe must reach
    recall_queries: int = 1000  # ivf: items whose top-k is checked against exact search (recall@k)
    index_memory_mb: int = 0  # auto: IVF-PQ when IVF-Flat would exceed this (0 = no budget); sizes pq_m
    pq_m: int = 0  # ivfpq: PQ code bytes per vector (0 = the largest that fits index_memory_mb)
    pq_refine: str = ""  # ivfpq re-ranking: flat | fp16 | sq8 | none ("" = chosen with pq_m)


@dataclass(frozen=True)
class ClusterSection:
    k: int = 12
    prototypes: int = 5
    metric: str = "cosine"  # nearest-prototype assignment of new items: cosine | euclidean
    seed: int = 0
    max_iter: int = 50


@dataclass(frozen=True)
class SimilaritySection:
    conditions: int = 8
    attribute_fn: str = "xnor"  # xnor | or | and
    lam: float = 0.5  # weight of the attribute supervision (0 = unsupervised conditions)
    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 256
    neg_per_pos: int = 3
    max_pos_pairs: int = 20000
    cond_dim: int = 32
    weight_decay: float = 1e-4
    seed: int = 0
    # items read to the driver (a sample by hash of item_id): train items pairs are drawn from,
    # held-out (validation + test) items of the pair AUC; the cost stays flat as the catalog grows
    max_train_items: int = 10_000
    max_heldout_items: int = 5_000


@dataclass(frozen=True)
class EvaluationSection:
    """The evaluation report reads a bounded sample of items (by a hash of item_id), whatever the
    catalog size: its retrieval, probe, kNN and PAN sections are O(items²) in the test split."""

    max_test_items: int = 5_000  # test-split items (queries and gallery)
    max_train_items: int = 2_000  # train-split items (linear probe, kNN word transfer)
    seed: int = 0


@dataclass(frozen=True)
class PromotionSection:
    """The promotion gate (``jobs/promote.py``): a trained candidate replaces the champion
    (``models/LATEST``) only when it scores at least ``champion + min_delta`` on ``metric``, measured
    on the same held-out (test-split) items, at most ``evaluation.max_test_items`` of them."""

    metric: str = "tag_recall@5"  # tag_recall@3|5|10 | retrieval_precision@10 (higher is better)
    min_delta: float = 0.0  # candidate must score >= champion + min_delta
    fail_if_worse: bool = True  # false: the decision is recorded but the candidate is promoted anyway


@dataclass(frozen=True)
class CtrSection:
    num_trees: int = 100
    num_leaves: int = 31
    max_depth: int = -1
    learning_rate: float = 0.1
    min_data_in_leaf: int = 20
    negative_rate: float = 0.1  # w: keep this fraction of negatives for the tree sample
    early_stopping_rounds: int = 20
    lr_reg: float = 0.01
    lr_elastic_net: float = 0.0
    lr_max_iter: int = 100
    lr_with_raw: bool = True  # trees+LR: leaf one-hot plus the raw one-hot/numeric features
    lr_negative_rate: float = 1.0  # 1.0 = LR on all training rows (else down-sampled + re-calibrated)
    pca_components: int = 8
    pca_sample: int = 50_000  # train-window items (hash of item_id) the PCA is fitted on, on the driver
    tree_sample: int = 500_000  # most rows of the (negative down-sampled) tree sample brought to the driver
    top_tags: int = 5  # top-ranked tags per item joined as tag:<word> = probability
    max_tag_features: int = 200  # most frequent tags (train window) kept as model columns
    max_categories: int = 1000  # per categorical field, most frequent values of the train window
    min_category_count: int = 5  # rarer values share one "other" bucket
    train_fraction: float = 0.7  # time-ordered split: first 70% train, next 15% validation, rest test
    validation_fraction: float = 0.15
    ablate_visual: bool = True  # also train trees+LR without tag/embedding features (same run)
    seed: int = 0
    mlflow: bool = False  # log the run, the booster (mlflow.lightgbm) and the LR to MLflow; register ([mlflow])


@dataclass(frozen=True)
class MlflowSection:
    """MLflow tracking + model registry (the ``[mlflow]`` extra), used when train.mlflow / ctr.mlflow
    are on, and by model resolution: a ``--model-version`` that is an alias (``champion``) of
    ``model_name`` resolves to the catalog2vec version tagged on the registered version."""

    tracking_uri: str = ""  # "" = $MLFLOW_TRACKING_URI, else MLflow's default; e.g. sqlite:///mlflow.db, http://host:5000
    registry_uri: str = ""  # "" = the tracking URI
    experiment: str = "catalog2vec"
    artifact_location: str = ""  # where a NEW experiment stores artifacts ("" = MLflow's default, ./mlruns)
    model_name: str = "catalog2vec"  # registered model of the image model (embeddings)
    ctr_model_name: str = "catalog2vec-ctr"  # registered model of the CTR booster
    alias: str = "champion"  # the promoted version's alias, moved only by jobs/promote.py ("" = none)
    candidate_alias: str = "challenger"  # alias train moves to each newly registered candidate


@dataclass(frozen=True)
class MetastoreSection:
    # embedded: a Hive metastore on Derby in metastore.dir (one machine; spark.sql.catalogImplementation=hive)
    # session: the metastore the Spark session already has (cluster Hive metastore, AWS Glue, Unity Catalog)
    kind: str = "embedded"
    dir: str = ""  # embedded: holds metastore_db/ and warehouse/ ("" = <lakehouse>/_metastore, local lakehouse)
    catalog: str = ""  # catalog of a three-level name (Unity Catalog, a named Spark catalog); "" = session catalog
    database_prefix: str = "catalog2vec"  # databases <prefix>_bronze, <prefix>_silver, <prefix>_gold


@dataclass(frozen=True)
class Config:
    lakehouse: str = "lakehouse"
    run_id: str = ""
    spark: SparkSection = field(default_factory=SparkSection)
    ingest: IngestSection = field(default_factory=IngestSection)
    text: TextSection = field(default_factory=TextSection)
    labels: LabelsSection = field(default_factory=LabelsSection)
    images: ImagesSection = field(default_factory=ImagesSection)
    train: TrainSection = field(default_factory=TrainSection)
    embed: EmbedSection = field(default_factory=EmbedSection)
    retrieval: RetrievalSection = field(default_factory=RetrievalSection)
    cluster: ClusterSection = field(default_factory=ClusterSection)
    similarity: SimilaritySection = field(default_factory=SimilaritySection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    promotion: PromotionSection = field(default_factory=PromotionSection)
    ctr: CtrSection = field(default_factory=CtrSection)
    mlflow: MlflowSection = field(default_factory=MlflowSection)
    metastore: MetastoreSection = field(default_factory=MetastoreSection)
    source_path: str = ""  # where this config was loaded from (informational)

    def with_overrides(self, **kwargs: Any) -> Config:
        return dataclasses.replace(self, **{k: v for k, v in kwargs.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return _build(tp, value, where)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    if origin in (list, dict):
        if not isinstance(value, origin):
            raise ConfigError(f"{where}: expected {origin.__name__}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        return value
    return value


def _build(cls: Any, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown key(s) {unknown}; known: {sorted(names)}")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def _set_dotted(data: dict[str, Any], dotted: str, raw: str) -> None:
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # bare string
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _parse(raw: bytes, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from exc


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _resolve_extends(data: dict[str, Any], source: str, seen: tuple[str, ...]) -> dict[str, Any]:
    """``extends = "local.toml"`` (relative to the file, or a URI): that file's values, overridden
    by this file's (tables merged key by key)."""
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent:
        raise ConfigError(f"{source}: extends must be a file name or URI")
    base = parent if ("://" in parent or parent.startswith("/")) else storage.join(storage.parent(source), parent)
    if base in seen:
        raise ConfigError(f"{source}: circular extends ({' -> '.join((*seen, base))})")
    try:
        raw = storage.read_bytes(base)
    except FileNotFoundError as exc:
        raise ConfigError(f"{source}: extends {parent!r}: config file not found: {base}") from exc
    return _deep_merge(_resolve_extends(_parse(raw, base), base, (*seen, base)), data)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a :class:`Config` from ``Config.to_dict()`` (how a resolved configuration is shipped
    to TorchDistributor workers and executors: by content, not by a driver-side path)."""
    cfg: Config = _build(Config, data, "")
    return cfg


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    lakehouse: str | None = None,
    run_id: str | None = None,
) -> Config:
    """Load a TOML config with ``section.key=value`` overrides.

    ``path`` may be a local path or any storage URI (``s3://bucket/conf/cluster.toml``), read
    through :mod:`catalog2vec.storage`; a named file that is missing is a :class:`ConfigError`.
    Without ``path`` the packaged ``conf/local.toml`` is used; if even that is absent, the built-in
    defaults apply and a warning says so on stderr.
    """
    source = str(path) if path else str(DEFAULT_CONFIG)
    raw: bytes | None = None
    try:
        raw = storage.read_bytes(source)
    except (FileNotFoundError, IsADirectoryError) as exc:
        if path:
            raise ConfigError(f"config file not found: {source}") from exc
        print(f"[config] warning: no packaged default config ({source}); using built-in defaults",
              file=sys.stderr)
        source = "<built-in defaults>"
    except storage.StorageError as exc:
        raise ConfigError(f"cannot read config {source}: {exc}") from exc
    data: dict[str, Any] = _parse(raw, source) if raw is not None else {}
    data = _resolve_extends(data, source, seen=(source,))
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, value = item.split("=", 1)
        _set_dotted(data, key.strip(), value.strip())
    cfg: Config = _build(Config, data, "")
    cfg = cfg.with_overrides(lakehouse=lakehouse, run_id=run_id, source_path=source)
    if not cfg.run_id:
        cfg = dataclasses.replace(cfg, run_id=new_run_id())
    _check_names(cfg)
    _check_values(cfg)
    return cfg


def _check_names(cfg: Config) -> None:
    """The name policy (:mod:`catalog2vec.names`) for every name the config can carry."""
    try:
        names.validate_name(cfg.run_id, "run_id")
        names.validate_optional_name(cfg.train.vocab_version, "train.vocab_version")
        names.validate_optional_name(cfg.train.model_version, "train.model_version")
    except InvalidInput as exc:
        raise ConfigError(str(exc)) from None


def _check_values(cfg: Config) -> None:
    """Allowed names and ranges (:mod:`catalog2vec.config_rules`): every broken rule in one line."""
    found = config_rules.problems(cfg)
    if found:
        raise ConfigError("invalid config: " + "; ".join(found))
