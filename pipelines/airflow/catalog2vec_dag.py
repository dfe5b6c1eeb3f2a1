"""catalog2vec daily pipeline: one ``SparkSubmitOperator`` per job, in the DESIGN order.

    ingest_catalog -> build_vocab -> build_labels -> ingest_images -> retrain_due (branch)
        -> [train (weekly)] -> resolve_model -> embed -> neighbors, cluster, evaluate
        -> build_ctr_features -> train_ctr
    ingest_catalog -> simulate_impressions -> build_ctr_features
    train_ctr -> register_tables -> maintain_tables (OPTIMIZE + VACUUM, weekly per table)

Data freshness (He et al. 2014): the expensive stages — the image model (``train``) and the CTR
boosted trees — are retrained every ``retrain_every_days`` (default 7), while the embedding of new
items and the CTR logistic regression run every day. The ``retrain_due`` branch decides per run
from the age of the newest model under ``<lakehouse>/models/`` (or, when that cannot be listed, from
the logical date); when training is skipped ``resolve_model`` still runs (trigger rule
``none_failed_min_one_success``) and fixes the version for the whole run (``models/LATEST``,
written by ``train``): ``embed``, ``neighbors``, ``cluster``, ``evaluate`` and
``build_ctr_features`` get it as an explicit ``--model-version``, and ``train_ctr`` gets
``ctr_daily_args`` on those days (a hook for a trees-reuse flag; today ``train_ctr`` has none, so
the default is empty and the CTR trees + LR are refitted daily — cheap next to the image model).

Everything deployment-specific is a DAG param (overridable per run with ``--conf`` / the trigger
form, defaults from ``CATALOG2VEC_*`` environment variables of the Airflow workers): the Spark
connection id, the lakehouse root, the config file, the jobs directory, the input catalog and its
column mapping, the packaged environment archive (``scripts/package.sh``). Every job is idempotent
(MERGE / replaceWhere on its key), so Airflow retries and re-runs are safe.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Param, TriggerRule, task

DAG_ID = "catalog2vec"
REPO_ROOT = Path(__file__).resolve().parents[2]
TAGS = ["catalog2vec", "spark", "delta", "ml"]

# GPU settings applied to the GPU stages (train, embed) when the run param ``use_gpu`` is true.
GPU_CONF: dict[str, str] = {
    "spark.executor.resource.gpu.amount": "1",
    "spark.task.resource.gpu.amount": "1",
    "spark.executor.resource.gpu.discoveryScript": "/opt/spark/getGpusResources.sh",
}
DELTA_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def _env(name: str, default: str) -> str:
    return os.environ.get(f"CATALOG2VEC_{name.upper()}", default)


@dataclass(frozen=True)
class JobSpec:
    """One Spark job of the pipeline: ``jobs/<job>.py`` with its upstream tasks and extra flags.

    ``args`` are Jinja-templated (``params``, ``ti`` ...): a ``("--flag", value)`` pair whose rendered
    value is empty is dropped, so optional flags can come from empty params; a plain string is split
    on whitespace (``"--reuse-trees"``) and dropped when empty.
    """

    task_id: str
    upstream: tuple[str, ...]
    doc: str
    args: tuple[str | tuple[str, str], ...] = ()
    model_version: bool = False  # pass --model-version {{ params.model_version }}
    gpu: bool = False
    trigger_rule: str = TriggerRule.ALL_SUCCESS
    job: str = ""  # defaults to task_id
    timeout_hours: float = 6.0

    @property
    def job_file(self) -> str:
        return f"{self.job or self.task_id}.py"


BRANCH_TASK = "retrain_due"
RESOLVE_TASK = "resolve_model"
# the model version resolved once per run (``resolve_model``), passed to every model stage
MODEL_VERSION_ARG = "{{ ti.xcom_pull(task_ids='resolve_model') }}"

# The pipeline, in the DESIGN order. ``retrain_due`` is the branch (not a Spark job).
JOBS: tuple[JobSpec, ...] = (
    JobSpec(
        "ingest_catalog",
        (),
        "Crawled catalog file -> `bronze/catalog_items` (MERGE on item_id; rejects -> `bronze/quarantine`).",
        args=(
            ("--input", "{{ params.input_path }}"),
            ("--format", "{{ params.input_format }}"),
            ("--mapping", "{{ params.mapping }}"),
            ("--source", "{{ params.source }}"),
            ("--image-template", "{{ params.image_template }}"),
        ),
    ),
    JobSpec("build_vocab", ("ingest_catalog",), "Titles/descriptions -> `silver/catalog_tokens`, `silver/vocab`."),
    JobSpec("build_labels", ("build_vocab",), "Vocabulary words per item -> `silver/item_labels` with the split."),
    JobSpec("ingest_images", ("build_labels",), "Validated, resized images -> `silver/images` (incremental by sha256)."),
    JobSpec(
        "train",
        (BRANCH_TASK,),
        "Weakly supervised ResNet (TorchDistributor, one GPU per task) -> `models/<model_version>/`. "
        "Runs only when `retrain_due` says so (weekly by default).",
        gpu=True,
        timeout_hours=24.0,
    ),
    JobSpec(
        "embed",
        (RESOLVE_TASK,),
        "Embeddings + tag probabilities of new items -> `gold/item_embeddings`, `gold/item_tags` "
        "(daily; incremental) with the version `resolve_model` fixed for this run.",
        model_version=True,
        gpu=True,
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
    ),
    JobSpec("neighbors", ("embed",), "kNN (faiss) -> `gold/item_neighbors`.", model_version=True),
    JobSpec("cluster", ("embed",), "k-means + prototypes -> `gold/clusters`, `gold/item_clusters`.", model_version=True),
    JobSpec("evaluate", ("embed",), "Retrieval / tag-recall report -> `reports/<model_version>/`.", model_version=True),
    JobSpec(
        "simulate_impressions",
        ("ingest_catalog",),
        "SYNTHETIC impressions over the catalog's items -> `bronze/impressions` (source=synthetic; a "
        "stand-in for real impression logs, which `jobs/ingest_impressions.py` loads).",
        args=(("--impressions", "{{ params.simulated_impressions }}"),),
    ),
    JobSpec(
        "build_ctr_features",
        ("neighbors", "cluster", "evaluate", "simulate_impressions"),
        "Impressions joined to item tags/embeddings of the model -> `gold/ctr_features` "
        "(replaced per feature version).",
        args=(("--source", "{{ params.ctr_source }}"), ("--feature-version", "{{ params.ctr_feature_version }}")),
        model_version=True,
    ),
    JobSpec(
        "train_ctr",
        ("build_ctr_features",),
        "Boosted trees -> leaf one-hot -> logistic regression (+ baselines) -> `models/ctr/`, "
        "`gold/ctr_predictions`, `gold/ctr_metrics`. On non-retrain days it gets `params.ctr_daily_args`.",
        args=(
            ("--feature-version", "{{ params.ctr_feature_version }}"),
            "{{ '' if ti.xcom_pull(task_ids='retrain_due', key='retrain') else params.ctr_daily_args }}",
        ),
    ),
    JobSpec(
        "register_tables",
        ("train_ctr",),
        "Every table as an EXTERNAL Delta table in the metastore (`catalog2vec_bronze|silver|gold`, comments "
        "from `schemas/`) and the `*_latest` views moved to `models/LATEST` (daily, after the last writer).",
    ),
    JobSpec(
        "maintain_tables",
        ("register_tables",),
        "OPTIMIZE (Z-order where declared) and VACUUM with the declared retention, per table at most every "
        "`params.maintain_every_days` days (weekly by default): the daily run skips tables maintained since.",
        args=(("--every-days", "{{ params.maintain_every_days }}"),),
    ),
)


# ---------------------------------------------------------------------------------------------
# retrain cadence: pure functions (unit-tested)
# ---------------------------------------------------------------------------------------------


class ModelAgeUnknownError(LookupError):
    """The model directory cannot be listed from the Airflow worker (e.g. no fsspec driver)."""


def latest_model_trained_at(lakehouse: str) -> datetime | None:
    """When the newest published image model was trained (``None``: no model yet), by the one
    model owner (:func:`catalog2vec.models.newest_trained_at`: card ``created_at``, else the card's
    modification time; ``models/ctr`` is not an image model), on local disk or an object store.
    Raises :class:`ModelAgeUnknownError` when the lakehouse cannot be listed."""
    from catalog2vec import models

    try:
        return models.newest_trained_at(lakehouse)
    except Exception as exc:  # no filesystem driver, no credentials, unreachable endpoint ...
        raise ModelAgeUnknownError(f"cannot list {lakehouse}/models: {exc}") from exc


def retrain_decision(
    logical_date: datetime,
    retrain_every_days: int,
    last_trained: datetime | None,
    *,
    model_age_known: bool = True,
    force: bool = False,
) -> tuple[bool, str]:
    """Whether the expensive stages (image model, CTR trees) retrain in the run at ``logical_date``.

    * ``force`` or ``retrain_every_days <= 1`` -> retrain;
    * no model yet -> retrain;
    * the newest model is at least ``retrain_every_days`` old -> retrain (a failed weekly run is
      therefore caught up the next day);
    * model age unknown (remote store not listable) -> calendar rule: every
      ``retrain_every_days``-th day counted from 0001-01-01 (``date.toordinal() % N == 0``).
    """
    if force:
        return True, "forced by params.force_retrain"
    if retrain_every_days <= 1:
        return True, "retrain_every_days <= 1: daily retraining"
    if not model_age_known:
        due = logical_date.date().toordinal() % retrain_every_days == 0
        return due, f"model age unknown; calendar rule day {logical_date.date()} % {retrain_every_days} days"
    if last_trained is None:
        return True, "no image model yet"
    age = logical_date - last_trained
    if age >= timedelta(days=retrain_every_days) - timedelta(hours=1):  # tolerate schedule jitter
        return True, f"newest model is {age} old (>= {retrain_every_days} days)"
    return False, f"newest model is {age} old (< {retrain_every_days} days): reuse it"


def clean_args(args: Sequence[Any]) -> list[str]:
    """Flatten rendered job arguments: ``(flag, value)`` pairs are kept only with a non-empty value
    (the value is passed verbatim, spaces included); plain strings are split on whitespace."""
    out: list[str] = []
    for item in args:
        if isinstance(item, (list, tuple)):
            flag, value = item
            if value is not None and str(value).strip() != "":
                out += [str(flag), str(value)]
        elif item is not None:
            out += str(item).split()
    return out


# ---------------------------------------------------------------------------------------------
# the operator: SparkSubmitOperator with the run's params applied at execute time
# ---------------------------------------------------------------------------------------------


class Catalog2VecSparkSubmitOperator(SparkSubmitOperator):
    """``SparkSubmitOperator`` whose connection id, archive, conf and flags come from the run params.

    * ``spark_conn_id`` (templated) -> the Airflow connection (master, deploy-mode, queue ...);
    * ``env_archive`` (templated): the venv-pack archive; shipped as ``--archives X#environment``
      with ``spark.pyspark.python=./environment/bin/python``;
    * GPU conf for GPU stages when ``params.use_gpu``; ``params.spark_conf`` merged into every job;
    * empty optional flags dropped (see :func:`clean_args`).
    """

    template_fields: Sequence[str] = (*SparkSubmitOperator.template_fields, "spark_conn_id", "env_archive")

    def __init__(self, *, spark_conn_id: str, env_archive: str = "", gpu: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spark_conn_id = spark_conn_id
        self.env_archive = env_archive
        self.gpu = gpu

    def execute(self, context: Any) -> None:
        params = context["params"]
        self._conn_id = self.spark_conn_id or "spark_default"
        conf: dict[str, str] = {**DELTA_CONF, **{k: str(v) for k, v in (params.get("spark_conf") or {}).items()}}
        if self.gpu and params.get("use_gpu"):
            conf.update({k: str(v) for k, v in (params.get("gpu_conf") or GPU_CONF).items()})
        if self.env_archive:
            self._archives = f"{self.env_archive}#environment"
            conf["spark.pyspark.python"] = "./environment/bin/python"
            if params.get("driver_python"):
                conf["spark.pyspark.driver.python"] = str(params["driver_python"])
        self.conf = {**conf, **(self.conf or {})}
        self.application_args = clean_args(self.application_args or [])
        self._hook = None  # rebuild with the rendered connection id / conf
        super().execute(context)


# ---------------------------------------------------------------------------------------------
# the DAG
# ---------------------------------------------------------------------------------------------

PARAMS: dict[str, Param] = {
    "spark_conn_id": Param(_env("spark_conn_id", "spark_default"), type="string",
                           description="Airflow connection of the Spark master (yarn, k8s://..., spark://..., local[*])"),
    "lakehouse": Param(_env("lakehouse", "lakehouse"), type="string", description="lakehouse root (path or s3:// URI)"),
    "config": Param(_env("config", str(REPO_ROOT / "conf" / "local.toml")), type="string",
                    description="TOML run configuration passed as --config (conf/cluster.toml on a cluster)"),
    "jobs_dir": Param(_env("jobs_dir", str(REPO_ROOT / "jobs")), type="string",
                      description="directory/URI holding jobs/*.py and jobs/_common.py"),
    "input_path": Param(_env("input_path", str(REPO_ROOT / "examples" / "data" / "styles.csv")), type="string",
                        description="crawled catalog to ingest (file, glob or URI)"),
    "input_format": Param(_env("input_format", "csv"), enum=["csv", "json", "parquet"], description="catalog format"),
    "mapping": Param(_env("mapping", "id=item_id,productDisplayName=title,articleType=category,baseColour=color,gender=gender"),
                     type="string", description="source=canonical column mapping ('' = none)"),
    "source": Param(_env("source", ""), type="string", description="crawl/feed name ('' = input file name)"),
    "image_template": Param(_env("image_template", "images/{item_id}.jpg"), type="string",
                            description="image_uri template ('' = the catalog has image_uri)"),
    "env_archive": Param(_env("env_archive", ""), type="string",
                         description="venv-pack archive from scripts/package.sh ('' = use the workers' Python)"),
    "driver_python": Param(_env("driver_python", ""), type="string",
                           description="spark.pyspark.driver.python with an archive ('' = unchanged; "
                           "./environment/bin/python in cluster deploy mode)"),
    "model_version": Param("latest", type="string",
                           description="model version for embed and later, resolved once per run "
                           "('latest' = models/LATEST)"),
    "retrain_every_days": Param(int(_env("retrain_every_days", "7")), type="integer", minimum=1,
                                description="retrain the image model and the CTR trees when the newest model is this old"),
    "force_retrain": Param(False, type="boolean", description="retrain in this run regardless of the model's age"),
    "ctr_daily_args": Param(_env("ctr_daily_args", ""), type="string",
                            description="extra train_ctr flags on non-retrain days, for a trees-reuse flag "
                            "('' = train_ctr retrains trees and LR every day)"),
    "ctr_source": Param(_env("ctr_source", "synthetic"), type="string",
                        description="impressions source for CTR features (synthetic, ipinyou, your log source)"),
    "ctr_feature_version": Param(_env("ctr_feature_version", "synthetic-daily"), type="string",
                                 description="gold/ctr_features version built and trained on (replaced each run)"),
    "simulated_impressions": Param(int(_env("simulated_impressions", "20000")), type="integer", minimum=1,
                                   description="number of SYNTHETIC impressions simulate_impressions writes"),
    "maintain_every_days": Param(float(_env("maintain_every_days", "7")), type="number", minimum=0,
                                 description="maintain_tables touches a table at most this often (OPTIMIZE + VACUUM)"),
    "use_gpu": Param(_env("use_gpu", "false").lower() == "true", type="boolean",
                     description="request one GPU per executor/task for train and embed"),
    "gpu_conf": Param(GPU_CONF, type="object", description="Spark conf applied to GPU stages when use_gpu"),
    "spark_conf": Param({}, type="object", description="extra Spark conf for every job"),
    "extra_set": Param([], type="array", description="extra --set section.key=value overrides for every job"),
}

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "catalog2vec",
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,  # 2, 4, 8 minutes ...
    "max_retry_delay": timedelta(hours=1),
    "depends_on_past": False,
}

COMMON_ARGS: tuple[tuple[str, str], ...] = (
    ("--config", "{{ params.config }}"),
    ("--lakehouse", "{{ params.lakehouse }}"),
    ("--run-id", "{{ (dag.dag_id ~ '-' ~ run_id) | replace(':', '') | replace('+', '') }}"),
)

with DAG(
    dag_id=DAG_ID,
    description="catalog -> vocabulary -> weakly supervised image model -> Delta feature tables -> CTR",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=TAGS,
    doc_md=__doc__,
) as dag:

    @task.branch(task_id=BRANCH_TASK, doc_md=retrain_decision.__doc__)
    def retrain_due(**context: Any) -> list[str]:
        params = context["params"]
        logical_date = context.get("logical_date") or datetime.now(UTC)
        known = True
        try:
            last = latest_model_trained_at(str(params["lakehouse"]))
        except ModelAgeUnknownError as exc:
            print(f"[retrain_due] {exc}")
            last, known = None, False
        due, why = retrain_decision(
            logical_date, int(params["retrain_every_days"]), last,
            model_age_known=known, force=bool(params["force_retrain"]),
        )
        print(f"[retrain_due] retrain={due}: {why}")
        context["ti"].xcom_push(key="retrain", value=due)
        # resolve_model is a direct downstream too: follow it in both cases (it waits for train when due)
        return ["train", RESOLVE_TASK] if due else [RESOLVE_TASK]

    @task(task_id=RESOLVE_TASK, trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
          doc_md="Resolves `params.model_version` (`latest` = `models/LATEST`, written by `train`) once "
                 "per run with `catalog2vec.models.resolve`; every model stage gets this exact version.")
    def resolve_model(**context: Any) -> str:
        from catalog2vec import models

        params = context["params"]
        version = models.resolve(str(params["lakehouse"]), str(params["model_version"]))
        print(f"[resolve_model] {params['model_version']} -> {version}")
        return version

    tasks: dict[str, Any] = {BRANCH_TASK: retrain_due(), RESOLVE_TASK: resolve_model()}
    for spec in JOBS:
        model_args = (("--model-version", MODEL_VERSION_ARG),) if spec.model_version else ()
        tasks[spec.task_id] = Catalog2VecSparkSubmitOperator(
            task_id=spec.task_id,
            name=f"catalog2vec-{spec.task_id}",
            application="{{ params.jobs_dir }}/" + spec.job_file,
            py_files="{{ params.jobs_dir }}/_common.py",
            files="{{ params.config }}",  # the TOML travels with the job (also to executors)
            application_args=[
                *COMMON_ARGS,
                *model_args,
                *spec.args,
                "{% for s in params.extra_set %}--set={{ s }} {% endfor %}",
            ],
            spark_conn_id="{{ params.spark_conn_id }}",
            env_archive="{{ params.env_archive }}",
            gpu=spec.gpu,
            trigger_rule=spec.trigger_rule,
            execution_timeout=timedelta(hours=spec.timeout_hours),
            doc_md=f"**{spec.job_file}** — {spec.doc}\n\nGPU stage: {spec.gpu}. Idempotent: safe to retry.",
        )
    tasks["ingest_images"] >> tasks[BRANCH_TASK]
    tasks[BRANCH_TASK] >> tasks[RESOLVE_TASK]
    tasks["train"] >> tasks[RESOLVE_TASK]
    for spec in JOBS:
        for up in spec.upstream:
            tasks[up] >> tasks[spec.task_id]
