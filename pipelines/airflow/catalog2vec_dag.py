"""catalog2vec daily pipeline: one ``SparkSubmitOperator`` per job, in the DESIGN order.

    ingest_catalog -> build_vocab -> build_labels -> ingest_images -> retrain_due (branch)
        -> [train (weekly) -> promote (gate)] -> resolve_model -> embed -> neighbors, cluster, evaluate
        -> build_ctr_features -> train_ctr
    ingest_catalog -> impressions_source (branch) -> ingest_impressions | simulate_impressions
        -> build_ctr_features
    train_ctr -> register_tables -> maintain_tables (OPTIMIZE + VACUUM, weekly per table)

Data freshness (He et al. 2014): the expensive stages — the image model (``train``) and the CTR
boosted trees — are retrained every ``retrain_every_days`` (default 7), while the embedding of new
items and the CTR logistic regression run every day. The ``retrain_due`` branch decides per run
from the age of the newest model under ``<lakehouse>/models/`` (or, when that cannot be listed, from
the logical date); when training is skipped ``resolve_model`` still runs (trigger rule
``none_failed_min_one_success``) and fixes the version for the whole run (``models/LATEST``,
moved only by ``promote``): ``embed``, ``neighbors``, ``cluster``, ``evaluate`` and
``build_ctr_features`` get it as an explicit ``--model-version``, and ``train_ctr`` gets
``ctr_daily_args`` on those days (a hook for a trees-reuse flag; today ``train_ctr`` has none, so
the default is empty and the CTR trees + LR are refitted daily — cheap next to the image model).

CTR trains on the deployment's **real impression log** by default (``ingest_impressions`` from
``params.impressions_input``, by default the day's folder ``<lakehouse>/landing/impressions/<ds>/``);
``params.impressions = "synthetic"`` swaps in ``simulate_impressions`` (demo, tests), and every
table and model built from it is labelled ``synthetic``.

Deployment settings are environment variables of the Airflow workers, read when the DAG is parsed
(``CATALOG2VEC_SPARK_CONN_ID``, ``CATALOG2VEC_ENV_ARCHIVE``, ``CATALOG2VEC_GPU_POOL``,
``CATALOG2VEC_LAKEHOUSE``, ``CATALOG2VEC_CONFIG``, ``CATALOG2VEC_JOBS_DIR``, ``CATALOG2VEC_SPARK_CONF``,
``CATALOG2VEC_GPU_CONF``, ``CATALOG2VEC_INPUT_ROOTS``, ``CATALOG2VEC_JARS`` …) and handed to
``SparkSubmitOperator`` through its public arguments (``conn_id``, ``archives``, ``jars``, ``conf``,
``files``, ``application_args``); one function, :func:`render_submission`, renders every task's
submission (object-store URIs as ``s3a://``; docs/deploy.md shows the production one). Per-run choices
are DAG params (overridable with ``--conf`` / the trigger form), each constrained by an ``enum`` or a
``pattern`` that Airflow checks when the run is created: whoever may trigger with conf can choose
*what* to process (an input under ``CATALOG2VEC_INPUT_ROOTS``, a model version, tuning values of an
allow-listed set), never *which code* runs, where the lakehouse is, or a Spark setting outside
:data:`SPARK_CONF_ALLOWED` (``spark.driver.extraJavaOptions`` and friends run code).

Promotion (DESIGN's rule): ``train`` publishes a candidate; ``promote`` (``jobs/promote.py``) scores it
against the champion (``models/LATEST``) on the held-out split and moves ``models/LATEST`` and the MLflow
``champion`` alias only if it passes. A rejected candidate exits 3: the task is marked *skipped* (no
retry), an alert ``candidate not promoted`` goes to the ``catalog2vec_alerts`` webhook, and the run goes
on with the previous champion, so every gold table stays on the previous model.

Operations: every task retries with exponential back-off and alerts on failure (log + the webhook of
the ``catalog2vec_alerts`` connection, :mod:`catalog2vec.alerts`); a deadline alert fires when a run
has not finished ``CATALOG2VEC_DEADLINE_HOURS`` (default 30) after it was queued; ``train`` and
``embed`` run in the ``gpu`` pool, which bounds concurrent GPU jobs; each task that writes gold
tables emits them as Airflow Assets (``catalog2vec.gold.<table>``, URI = the table's location, the
event's ``extra`` names the model version), so downstream DAGs schedule on fresh embeddings
(``catalog2vec_downstream_dag.py``). Every job is idempotent (MERGE / replaceWhere on its key), so
Airflow retries and re-runs are safe.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import (
    DAG,
    Asset,
    BaseNotifier,
    DeadlineAlert,
    DeadlineReference,
    Param,
    SyncCallback,
    TriggerRule,
    task,
)
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from catalog2vec import alerts, storage

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


def _env_json(name: str, default: dict[str, str]) -> dict[str, str]:
    raw = _env(name, "")
    return {str(k): str(v) for k, v in json.loads(raw).items()} if raw else dict(default)


# Deployment settings (the Airflow workers' environment, read at parse time)
SPARK_CONN_ID = _env("spark_conn_id", "spark_default")
ENV_ARCHIVE = _env("env_archive", "")  # venv-pack archive from scripts/package.sh ('' = the workers' Python)
DRIVER_PYTHON = _env("driver_python", "")  # with an archive in cluster deploy mode: ./environment/bin/python
GPU_POOL = _env("gpu_pool", "gpu")
LAKEHOUSE = _env("lakehouse", "lakehouse")
CONFIG = _env("config", str(REPO_ROOT / "conf" / "local.toml"))  # the TOML passed as --config
JOBS_DIR = _env("jobs_dir", str(REPO_ROOT / "jobs"))  # directory/URI holding jobs/*.py and jobs/_common.py
SPARK_CONF = _env_json("spark_conf", {})  # the deployment's Spark conf for every job
# --jars of every job: Delta, hadoop-aws and the AWS SDK bundle (`make package` -> dist/jars/, uploaded
# beside the jobs); comma-separated URIs. '' = the Spark installation provides them (make setup's defaults)
JARS = tuple(j.strip() for j in _env("jars", "").split(",") if j.strip())
GPU_CONF = _env_json("gpu_conf", GPU_CONF)  # Spark conf of the GPU stages when params.use_gpu
CTR_DAILY_ARGS = _env("ctr_daily_args", "")  # train_ctr flags on non-retrain days (a trees-reuse hook)
# where a triggered run may read its catalog / impression log from (comma-separated path or URI prefixes)
INPUT_ROOTS = tuple(r.strip() for r in _env(
    "input_roots", ",".join((storage.join(LAKEHOUSE, "landing"), str(REPO_ROOT / "examples" / "data")))
).split(",") if r.strip())
ALERTS_CONN_ID = _env("alerts_conn_id", alerts.DEFAULT_CONN_ID)
DEADLINE_HOURS = float(_env("deadline_hours", "30"))
RETRIES = int(_env("retries", "3"))


def gold_asset(table: str, lakehouse: str = LAKEHOUSE) -> Asset:
    """The Airflow Asset of a gold table (``gold/item_embeddings`` -> ``catalog2vec.gold.item_embeddings``,
    URI = the table's location in the deployment's lakehouse). Downstream DAGs schedule on it."""
    return Asset(name="catalog2vec." + table.replace("/", "."),
                 uri=storage.to_asset_uri(storage.join(lakehouse, table)), group="catalog2vec")


def submit_conf() -> dict[str, str]:
    """The Spark conf every job is submitted with: Delta, the deployment's ``CATALOG2VEC_SPARK_CONF``
    and the packaged environment's Python."""
    conf = {**DELTA_CONF, **SPARK_CONF}
    if ENV_ARCHIVE:
        conf["spark.pyspark.python"] = "./environment/bin/python"
        if DRIVER_PYTHON:
            conf["spark.pyspark.driver.python"] = DRIVER_PYTHON
    return conf


@dataclass(frozen=True)
class Submission:
    """What ``spark-submit`` is given for one task: the application, ``--py-files``, ``--files``,
    ``--archives``, ``--jars`` and ``--conf`` (:func:`render_submission`)."""

    application: str
    py_files: str
    files: str
    archives: str | None
    jars: str | None
    conf: dict[str, str]

    def operator_kwargs(self) -> dict[str, Any]:
        """The ``SparkSubmitOperator`` arguments (its public ones, nothing else)."""
        return {"application": self.application, "py_files": self.py_files, "files": self.files,
                "archives": self.archives, "jars": self.jars, "conf": self.conf}

    def uris(self) -> list[str]:
        """Every file or archive spark-submit fetches (the ``#alias`` of an archive dropped)."""
        parts = [self.application, self.py_files, self.files, self.archives or "", self.jars or ""]
        return [u.split("#", 1)[0] for p in parts for u in p.split(",") if u]


def render_submission(job_file: str) -> Submission:
    """The one function that renders a task's spark-submit from the deployment's ``CATALOG2VEC_*``
    environment: ``jobs/<job_file>`` from ``CATALOG2VEC_JOBS_DIR`` with ``_common.py``, the config
    TOML (``--files``), the packed environment (``--archives …#environment``), the jars
    (``CATALOG2VEC_JARS``) and :func:`submit_conf`. Object-store URIs are rendered ``s3a://``: the
    scheme hadoop-aws gives the pip ``spark-submit`` on an Airflow worker (there is no ``s3://``)."""
    jobs = JOBS_DIR.rstrip("/")
    return Submission(
        application=storage.to_spark_uri(f"{jobs}/{job_file}"),
        py_files=storage.to_spark_uri(f"{jobs}/_common.py"),
        files=storage.to_spark_uri(CONFIG),  # the TOML travels with the job (also to executors)
        archives=f"{storage.to_spark_uri(ENV_ARCHIVE)}#environment" if ENV_ARCHIVE else None,
        jars=",".join(storage.to_spark_uri(j) for j in JARS) or None,
        conf=submit_conf(),
    )


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
    outlets: tuple[str, ...] = ()  # gold tables this task writes (emitted as Assets)

    @property
    def job_file(self) -> str:
        return f"{self.job or self.task_id}.py"


BRANCH_TASK = "retrain_due"
IMPRESSIONS_BRANCH = "impressions_source"
# the impressions source CTR features are built from: params.ctr_source, else what this run ingested
CTR_SOURCE = ("(params.ctr_source or ('synthetic' if params.impressions == 'synthetic' "
              "else params.impressions_source))")
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
        "promote",
        ("train",),
        "The promotion gate: the new candidate vs the champion (`models/LATEST`) on the held-out split "
        "(`[promotion]` metric and min_delta); passed -> `models/LATEST` and the MLflow `champion` alias move "
        "to it; rejected -> exit 3: skipped, alerted, the run continues on the previous champion.",
    ),
    JobSpec(
        "embed",
        (RESOLVE_TASK,),
        "Embeddings + tag probabilities of new items -> `gold/item_embeddings`, `gold/item_tags` "
        "(daily; incremental) with the version `resolve_model` fixed for this run.",
        model_version=True,
        gpu=True,
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        outlets=("gold/item_embeddings", "gold/item_tags"),
    ),
    JobSpec("neighbors", ("embed",), "kNN (faiss) -> `gold/item_neighbors`.", model_version=True,
            outlets=("gold/item_neighbors",)),
    JobSpec("cluster", ("embed",), "k-means + prototypes -> `gold/clusters`, `gold/item_clusters`.", model_version=True,
            outlets=("gold/clusters", "gold/item_clusters")),
    JobSpec("evaluate", ("embed",), "Retrieval / tag-recall report -> `reports/<model_version>/`.", model_version=True),
    JobSpec(
        "ingest_impressions",
        (IMPRESSIONS_BRANCH,),
        "The deployment's impression log (`params.impressions_input`, default the day's "
        "`<lakehouse>/landing/impressions/<ds>/`) -> `bronze/impressions` (MERGE on impression_id; "
        "rejects -> `bronze/quarantine`). The default CTR source.",
        args=(
            ("--input", "{{ params.impressions_input or ('" + LAKEHOUSE + "/landing/impressions/' ~ ds ~ '/') }}"),
            ("--format", "{{ params.impressions_format }}"),
            ("--mapping", "{{ params.impressions_mapping }}"),
            ("--source", "{{ params.impressions_source }}"),
        ),
    ),
    JobSpec(
        "simulate_impressions",
        (IMPRESSIONS_BRANCH,),
        "SYNTHETIC impressions over the catalog's items -> `bronze/impressions` (source=synthetic), only "
        "when `params.impressions` is `synthetic` (demo, tests); everything built from it says so.",
        args=(("--impressions", "{{ params.simulated_impressions }}"),),
    ),
    JobSpec(
        "build_ctr_features",
        ("neighbors", "cluster", "evaluate", "ingest_impressions", "simulate_impressions"),
        "Impressions joined to item tags/embeddings of the model -> `gold/ctr_features` "
        "(replaced per feature version).",
        args=(("--source", "{{ " + CTR_SOURCE + " }}"),
              ("--feature-version", "{{ params.ctr_feature_version or (" + CTR_SOURCE + " ~ '-daily') }}")),
        model_version=True,
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,  # one of the two impression tasks is skipped
        outlets=("gold/ctr_features",),
    ),
    JobSpec(
        "train_ctr",
        ("build_ctr_features",),
        "Boosted trees -> leaf one-hot -> logistic regression (+ baselines) -> `models/ctr/`, "
        "`gold/ctr_predictions`, `gold/ctr_metrics`. On non-retrain days it gets `CATALOG2VEC_CTR_DAILY_ARGS`.",
        args=(
            ("--feature-version", "{{ params.ctr_feature_version or (" + CTR_SOURCE + " ~ '-daily') }}"),
            "{{ '' if ti.xcom_pull(task_ids='retrain_due', key='retrain') else '" + CTR_DAILY_ARGS + "' }}",
        ),
        outlets=("gold/ctr_predictions", "gold/ctr_metrics"),
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
    """``SparkSubmitOperator`` configured only through its public arguments (``conn_id``, ``archives``,
    templated ``conf``, ``files``, ``application_args``); at execute time it merges the run's
    ``params.spark_conf`` (allow-listed; and ``GPU_CONF`` for GPU stages when ``params.use_gpu``) into the
    templated ``conf``, drops empty optional flags (:func:`clean_args`) and, once the job succeeded,
    names the model version on its outlet Asset events."""

    def __init__(self, *, gpu: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gpu = gpu

    def execute(self, context: Any) -> None:
        params = context["params"]
        conf = checked_spark_conf(params.get("spark_conf") or {})  # the Param schema checked it too
        if self.gpu and params.get("use_gpu"):
            conf.update(GPU_CONF)
        self.conf = {**(self.conf or {}), **conf}
        self.application_args = clean_args(self.application_args or [])
        try:
            super().execute(context)
        except AirflowException as exc:
            code = exit_code(self, exc)
            if code == USER_ERROR_EXIT:
                # the job's own "one line, exit 2": a bad argument or input; a retry cannot fix it
                raise AirflowFailException(f"user error (exit 2), not retried: {exc}") from exc
            if code == NOT_PROMOTED_EXIT and self.task_id == PROMOTE_TASK:
                not_promoted(context)  # alert, then skip: no retry; the run goes on with the champion
            raise  # exit 1 / a lost executor / the store down: transient, retried with back-off
        if self.outlets:
            args = self.application_args
            version = args[args.index("--model-version") + 1] if "--model-version" in args else None
            for outlet in self.outlets:
                table = outlet.name.removeprefix("catalog2vec.").replace(".", "/")
                context["outlet_events"][outlet].extra = {
                    "table": storage.join(LAKEHOUSE, table), "model_version": version,
                    "run_id": str(context.get("run_id", "")),
                }


USER_ERROR_EXIT = 2  # catalog2vec.errors.UserError: one line on stderr, exit 2 (jobs/_common.run_job)
NOT_PROMOTED_EXIT = 3  # jobs/promote.py: the gate rejected the candidate
PROMOTE_TASK = "promote"


def not_promoted(context: Any, lakehouse: str | None = None, conn_id: str | None = None) -> None:
    """The gate rejected the candidate (``jobs/promote.py`` exit 3): one ``candidate not promoted``
    alert (log + the ``catalog2vec_alerts`` webhook) with the decision record's reason when the
    worker can read it, then :class:`AirflowSkipException` — not retried, and ``resolve_model``
    (``none_failed_min_one_success``) carries on with the champion ``models/LATEST`` still names."""
    from airflow.sdk.exceptions import AirflowSkipException

    from catalog2vec import models
    from catalog2vec.evaluation import gate

    root = lakehouse or LAKEHOUSE
    ti = context.get("ti") or context.get("task_instance")
    fields: dict[str, Any] = {}
    try:
        candidate = models.newest_version(root)
        record = storage.read_json(gate.decision_path(root, candidate))
        fields = {"candidate": candidate, "champion": record.get("champion"), "error": record.get("reason")}
    except Exception as exc:  # the record is a courtesy: the alert goes out without it
        fields = {"error": f"decision record unreadable from the worker: {type(exc).__name__}"}
    payload = alerts.build_message("candidate not promoted", str(getattr(ti, "dag_id", DAG_ID)),
                                   str(context.get("run_id", "")), PROMOTE_TASK, **fields)
    alerts.send(payload, alerts.webhook_url_from_connection(conn_id or ALERTS_CONN_ID))
    raise AirflowSkipException(f"candidate not promoted: {fields.get('error')}")


def exit_code(operator: SparkSubmitOperator, exc: BaseException) -> int | None:
    """The exit code of the spark-submit process behind a failed task (client mode: the PySpark
    driver's own exit code), from the hook's process, else from the provider's message."""
    proc = getattr(getattr(operator, "_hook", None), "_submit_sp", None)
    code = getattr(proc, "returncode", None)
    if isinstance(code, int):
        return code
    match = re.search(r"Error code is: (\d+)", str(exc))
    return int(match.group(1)) if match else None


class FailureNotifier(BaseNotifier):
    """Task-failure alert: one line in the log and a JSON POST to the ``catalog2vec_alerts``
    connection's webhook when it exists (:mod:`catalog2vec.alerts`)."""

    def __init__(self, conn_id: str = alerts.DEFAULT_CONN_ID) -> None:
        super().__init__()
        self.conn_id = conn_id

    def notify(self, context: Any) -> None:
        ti = context.get("ti") or context.get("task_instance")
        exc = context.get("exception")
        payload = alerts.build_message(
            "task failed", str(getattr(ti, "dag_id", DAG_ID)), str(context.get("run_id", "")),
            str(getattr(ti, "task_id", "")), try_number=getattr(ti, "try_number", None),
            error=(f"{type(exc).__name__}: {exc}"[:500] if exc else None),
        )
        alerts.send(payload, alerts.webhook_url_from_connection(self.conn_id))


# ---------------------------------------------------------------------------------------------
# the DAG
# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# run params: what a triggerer may choose, each value constrained (checked when the run is created)
# ---------------------------------------------------------------------------------------------

NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"  # catalog2vec.names.NAME_PATTERN (no import: parse-time only)
NAME_OR_EMPTY = rf"^(|{NAME})$"
MODEL_REF = rf"^({NAME}|models:/{NAME}(@{NAME}|/[0-9]{{1,12}}))$"
# Spark settings a triggerer may change: sizes and parallelism only. Anything that names a class, a
# file, a JVM option or a Python runs code and stays in the deployment's CATALOG2VEC_SPARK_CONF.
SPARK_CONF_ALLOWED = (
    "spark.executor.memory", "spark.executor.cores", "spark.executor.instances", "spark.executor.memoryOverhead",
    "spark.driver.memory", "spark.driver.cores", "spark.driver.maxResultSize", "spark.sql.shuffle.partitions",
    "spark.default.parallelism", "spark.dynamicAllocation.enabled", "spark.dynamicAllocation.minExecutors",
    "spark.dynamicAllocation.maxExecutors", "spark.sql.adaptive.enabled", "spark.task.cpus",
)
SPARK_CONF_VALUE = r"^[A-Za-z0-9.]{1,32}$"
# --set overrides a triggerer may add: tuning values (numbers, words) of these sections, no paths
EXTRA_SET = r"^(text|labels|images|train|embed|retrieval|cluster|evaluation|similarity|ctr)\.[a-z_]{1,64}=[A-Za-z0-9._+-]{0,64}$"


def _input_pattern(roots: Sequence[str]) -> str:
    """A path/URI under one of ``roots``, with no ``..`` segment and only path-like characters."""
    prefixes = "|".join(re.escape(r.rstrip("/") + "/") for r in roots)
    return rf"^(?!.*(^|/)\.\.(/|$))({prefixes})[A-Za-z0-9._/*?{{}}=,-]{{0,512}}$"


INPUT_PATTERN = _input_pattern(INPUT_ROOTS)


class ParamRejectedError(ValueError):
    """A run param outside what a triggerer may choose (also enforced by the Param schema)."""


def checked_spark_conf(conf: dict[str, Any]) -> dict[str, str]:
    """``params.spark_conf`` with every key on :data:`SPARK_CONF_ALLOWED` and a plain value, else
    :class:`ParamRejectedError` (the run fails before anything is submitted)."""
    out = {}
    for key, value in conf.items():
        if key not in SPARK_CONF_ALLOWED or not re.fullmatch(SPARK_CONF_VALUE, str(value)):
            raise ParamRejectedError(f"params.spark_conf: {key!r} is not a setting a run may change "
                                     f"(allowed: {', '.join(SPARK_CONF_ALLOWED)}; plain values only)")
        out[str(key)] = str(value)
    return out


PARAMS: dict[str, Param] = {
    "input_path": Param(_env("input_path", str(REPO_ROOT / "examples" / "data" / "styles.csv")), type="string",
                        pattern=INPUT_PATTERN,
                        description="crawled catalog to ingest (file, glob or URI) under CATALOG2VEC_INPUT_ROOTS"),
    "input_format": Param(_env("input_format", "csv"), enum=["csv", "json", "parquet"], description="catalog format"),
    "mapping": Param(_env("mapping", "id=item_id,productDisplayName=title,articleType=category,baseColour=color,gender=gender"),
                     type="string", pattern=r"^([A-Za-z0-9_. -]{1,64}=[a-z_]{1,32}(,[A-Za-z0-9_. -]{1,64}=[a-z_]{1,32})*)?$",
                     description="source=canonical column mapping ('' = none)"),
    "source": Param(_env("source", ""), type="string", pattern=NAME_OR_EMPTY,
                    description="crawl/feed name ('' = input file name)"),
    "image_template": Param(_env("image_template", "images/{item_id}.jpg"), type="string",
                            pattern=r"^(?!.*(^|/)\.\.(/|$))([A-Za-z0-9_{}-][A-Za-z0-9._/{}-]{0,255})?$",
                            description="relative image_uri template ('' = the catalog has image_uri)"),
    "model_version": Param("latest", type="string", pattern=MODEL_REF,
                           description="model version for embed and later, resolved once per run "
                           "('latest' = models/LATEST)"),
    "retrain_every_days": Param(int(_env("retrain_every_days", "7")), type="integer", minimum=1,
                                description="retrain the image model and the CTR trees when the newest model is this old"),
    "force_retrain": Param(False, type="boolean", description="retrain in this run regardless of the model's age"),
    "impressions": Param(_env("impressions", "log"), enum=["log", "synthetic"],
                         description="CTR impressions: the deployment's real log (ingest_impressions) or "
                         "SYNTHETIC ones (simulate_impressions; demo and tests)"),
    "impressions_input": Param(_env("impressions_input", ""), type="string", pattern=f"(^$)|({INPUT_PATTERN})",
                               description="impression log to ingest under CATALOG2VEC_INPUT_ROOTS ('' = "
                               "<lakehouse>/landing/impressions/<ds>/)"),
    "impressions_format": Param(_env("impressions_format", "json"), enum=["csv", "json", "parquet"],
                                description="impression log format"),
    "impressions_mapping": Param(_env("impressions_mapping", ""), type="string",
                                 pattern=r"^([A-Za-z0-9_. -]{1,64}=[a-z_]{1,32}(,[A-Za-z0-9_. -]{1,64}=[a-z_]{1,32})*)?$",
                                 description="source=canonical columns of the log (impression_id, ts, item_id, click)"),
    "impressions_source": Param(_env("impressions_source", "impressions"), type="string", pattern=NAME_OR_EMPTY,
                                description="source name recorded for the ingested log"),
    "ctr_source": Param(_env("ctr_source", ""), type="string", pattern=NAME_OR_EMPTY,
                        description="impressions source for CTR features ('' = what this run ingested: "
                        "impressions_source, or synthetic)"),
    "ctr_feature_version": Param(_env("ctr_feature_version", ""), type="string", pattern=NAME_OR_EMPTY,
                                 description="gold/ctr_features version built and trained on ('' = <source>-daily; "
                                 "replaced each run)"),
    "simulated_impressions": Param(int(_env("simulated_impressions", "20000")), type="integer", minimum=1,
                                   maximum=100_000_000,
                                   description="number of SYNTHETIC impressions simulate_impressions writes"),
    "maintain_every_days": Param(float(_env("maintain_every_days", "7")), type="number", minimum=0,
                                 description="maintain_tables touches a table at most this often (OPTIMIZE + VACUUM)"),
    "use_gpu": Param(_env("use_gpu", "false").lower() == "true", type="boolean",
                     description="request one GPU per executor/task for train and embed (CATALOG2VEC_GPU_CONF)"),
    "spark_conf": Param({}, type="object", propertyNames={"enum": list(SPARK_CONF_ALLOWED)},
                        additionalProperties={"type": "string", "pattern": SPARK_CONF_VALUE},
                        description="Spark sizes for every job of this run (allow-listed keys, plain values)"),
    "extra_set": Param([], type="array", items={"type": "string", "pattern": EXTRA_SET}, maxItems=64,
                       description="extra --set section.key=value tuning overrides for every job (no paths)"),
}

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "catalog2vec",
    "retries": RETRIES,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,  # 2, 4, 8 minutes ...
    "max_retry_delay": timedelta(hours=1),
    "depends_on_past": False,
    "on_failure_callback": [FailureNotifier(ALERTS_CONN_ID)],
}

COMMON_ARGS: tuple[tuple[str, str], ...] = (
    ("--config", CONFIG),
    ("--lakehouse", LAKEHOUSE),
    ("--run-id", "{{ (dag.dag_id ~ '-' ~ run_id) | replace(':', '') | replace('+', '') }}"),
)

# The run's deadline (0 = none). Airflow 3.3.2's dag.test() cannot complete a successful run of a DAG
# with a DeadlineAlert (it looks the alert up by the unsaved definition), so the tests run with 0.
RUN_DEADLINE = DeadlineAlert(
    reference=DeadlineReference.DAGRUN_QUEUED_AT,
    interval=timedelta(hours=DEADLINE_HOURS),
    callback=SyncCallback("catalog2vec.alerts.deadline_missed",
                          kwargs={"dag_id": DAG_ID, "deadline_hours": DEADLINE_HOURS, "conn_id": ALERTS_CONN_ID}),
) if DEADLINE_HOURS > 0 else None

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
    deadline=RUN_DEADLINE,
) as dag:

    @task.branch(task_id=BRANCH_TASK, doc_md=retrain_decision.__doc__)
    def retrain_due(**context: Any) -> list[str]:
        params = context["params"]
        logical_date = context.get("logical_date") or datetime.now(UTC)
        known = True
        try:
            last = latest_model_trained_at(LAKEHOUSE)
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
          doc_md="Resolves `params.model_version` (`latest` = `models/LATEST`, moved by `promote`) once "
                 "per run with `catalog2vec.models.resolve`; every model stage gets this exact version.")
    def resolve_model(**context: Any) -> str:
        from catalog2vec import models

        params = context["params"]
        version = models.resolve(LAKEHOUSE, str(params["model_version"]))
        print(f"[resolve_model] {params['model_version']} -> {version}")
        return version

    @task.branch(task_id=IMPRESSIONS_BRANCH,
                 doc_md="`ingest_impressions` (the real log, default) or `simulate_impressions` "
                        "(`params.impressions = synthetic`).")
    def impressions_source(**context: Any) -> str:
        return "simulate_impressions" if context["params"]["impressions"] == "synthetic" else "ingest_impressions"

    tasks: dict[str, Any] = {BRANCH_TASK: retrain_due(), RESOLVE_TASK: resolve_model(),
                             IMPRESSIONS_BRANCH: impressions_source()}
    for spec in JOBS:
        model_args = (("--model-version", MODEL_VERSION_ARG),) if spec.model_version else ()
        tasks[spec.task_id] = Catalog2VecSparkSubmitOperator(
            task_id=spec.task_id,
            name=f"catalog2vec-{spec.task_id}",
            **render_submission(spec.job_file).operator_kwargs(),
            conn_id=SPARK_CONN_ID,
            application_args=[
                *COMMON_ARGS,
                *model_args,
                *spec.args,
                "{% for s in params.extra_set %}--set={{ s }} {% endfor %}",
            ],
            gpu=spec.gpu,
            pool=GPU_POOL if spec.gpu else None,
            outlets=[gold_asset(t) for t in spec.outlets],
            trigger_rule=spec.trigger_rule,
            execution_timeout=timedelta(hours=spec.timeout_hours),
            doc_md=f"**{spec.job_file}** — {spec.doc}\n\nGPU stage: {spec.gpu}. Idempotent: safe to retry.",
        )
    tasks["ingest_catalog"] >> tasks[IMPRESSIONS_BRANCH]
    tasks["ingest_images"] >> tasks[BRANCH_TASK]
    tasks[BRANCH_TASK] >> tasks[RESOLVE_TASK]
    tasks[PROMOTE_TASK] >> tasks[RESOLVE_TASK]  # train >> promote (JOBS) >> resolve_model
    for spec in JOBS:
        for up in spec.upstream:
            tasks[up] >> tasks[spec.task_id]
