"""The Airflow DAG: imports cleanly, has the documented order, retries with back-off, takes its
deployment settings from params, decides the weekly/daily cadence correctly, and runs jobs for
real through SparkSubmitOperator against a local master."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import REPO, airflow_env, own_metadata_db, run_dag

EXAMPLES = REPO / "examples" / "data"

# The documented task graph (README / docs/deploy.md): task -> its upstream tasks.
EXPECTED_UPSTREAM: dict[str, set[str]] = {
    "ingest_catalog": set(),
    "build_vocab": {"ingest_catalog"},
    "build_labels": {"build_vocab"},
    "ingest_images": {"build_labels"},
    "retrain_due": {"ingest_images"},
    "train": {"retrain_due"},
    "promote": {"train"},
    "resolve_model": {"retrain_due", "promote"},
    "embed": {"resolve_model"},
    "neighbors": {"embed"},
    "cluster": {"embed"},
    "evaluate": {"embed"},
    "impressions_source": {"ingest_catalog"},
    "ingest_impressions": {"impressions_source"},
    "simulate_impressions": {"impressions_source"},
    "build_ctr_features": {"neighbors", "cluster", "evaluate", "ingest_impressions", "simulate_impressions"},
    "train_ctr": {"build_ctr_features"},
    "register_tables": {"train_ctr"},
    "maintain_tables": {"register_tables"},
}
PYTHON_TASKS = ("retrain_due", "resolve_model", "impressions_source")
SPARK_TASKS = [t for t in EXPECTED_UPSTREAM if t not in PYTHON_TASKS]
# gold tables each task emits as an Airflow Asset
OUTLETS = {"embed": {"gold/item_embeddings", "gold/item_tags"}, "neighbors": {"gold/item_neighbors"},
           "cluster": {"gold/clusters", "gold/item_clusters"}, "build_ctr_features": {"gold/ctr_features"},
           "train_ctr": {"gold/ctr_predictions", "gold/ctr_metrics"}}
DESIGN_ORDER = ["ingest_catalog", "build_vocab", "build_labels", "ingest_images", "train", "promote", "resolve_model",
                "embed",
                "neighbors", "build_ctr_features", "train_ctr"]


def load_dag_module(name: str = "catalog2vec_dag_under_test") -> Any:
    """The DAG file as a fresh module (its deployment settings read from the current environment)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, REPO / "pipelines" / "airflow" / "catalog2vec_dag.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@functools.cache
def dag_module() -> Any:
    return load_dag_module()


# --------------------------------------------------------------------------------------------- structure


def test_dagbag_imports_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dags) == ["catalog2vec", "catalog2vec_embeddings_consumer"]  # no example DAGs, ours
    dag = dagbag.dags["catalog2vec"]
    assert dag.catchup is False
    assert dag.schedule == "@daily"
    assert {"catalog2vec", "spark"} <= set(dag.tags)
    assert dag.max_active_runs == 1
    assert dag.doc_md and "retrain_every_days" in dag.doc_md


def test_task_graph_has_the_documented_order(dag: Any) -> None:
    assert {t.task_id: set(t.upstream_task_ids) for t in dag.tasks} == EXPECTED_UPSTREAM
    order = [t.task_id for t in dag.topological_sort()]
    positions = [order.index(t) for t in DESIGN_ORDER]
    assert positions == sorted(positions), order


def test_every_task_retries_with_exponential_backoff_and_is_documented(dag: Any) -> None:
    for t in dag.tasks:
        assert t.retries >= 2, t.task_id
        assert t.retry_exponential_backoff >= 2.0, t.task_id
        assert t.retry_delay == timedelta(minutes=2), t.task_id
        assert t.max_retry_delay == timedelta(hours=1), t.task_id
        assert t.doc_md and len(t.doc_md) > 40, t.task_id


def test_spark_tasks_are_spark_submit_per_job(dag: Any) -> None:
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    for task_id in SPARK_TASKS:
        t = dag.get_task(task_id)
        assert isinstance(t, SparkSubmitOperator), task_id
        assert t.application == f"{dag_module().JOBS_DIR}/{task_id}.py"
        assert t.execution_timeout is not None
        assert t.conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
        assert t.pool == ("gpu" if task_id in ("train", "embed") else "default_pool"), task_id
    assert dag.get_task("resolve_model").trigger_rule == "none_failed_min_one_success"
    assert dag.get_task("build_ctr_features").trigger_rule == "none_failed_min_one_success"
    assert dag.get_task("train").gpu and dag.get_task("embed").gpu and not dag.get_task("cluster").gpu


def test_gold_tasks_emit_assets_and_the_consumer_dag_schedules_on_embeddings(dagbag: Any, dag: Any) -> None:
    lakehouse = os.path.abspath("lakehouse")  # the deployment default (CATALOG2VEC_LAKEHOUSE unset)
    for t in dag.tasks:
        names = {a.name for a in t.outlets}
        expected = OUTLETS.get(t.task_id, set())
        assert names == {"catalog2vec." + x.replace("/", ".") for x in expected}, t.task_id
        for a in t.outlets:
            table = a.name.removeprefix("catalog2vec.").replace(".", "/")
            assert a.uri == f"file://{lakehouse}/{table}" and a.group == "catalog2vec"
    consumer = dagbag.dags["catalog2vec_embeddings_consumer"]
    (embeddings,) = [a for a in dag.get_task("embed").outlets if a.name.endswith("item_embeddings")]
    scheduled_on = consumer.timetable.asset_condition.objects  # schedule=[asset]: AssetAll of one
    assert [(a.name, a.uri) for a in scheduled_on] == [(embeddings.name, embeddings.uri)]


def test_deadline_and_failure_alerts_are_configured(dag: Any) -> None:
    deadline = dag.deadline[0] if isinstance(dag.deadline, list) else dag.deadline
    assert deadline.interval == timedelta(hours=30)
    assert "catalog2vec.alerts.deadline_missed" in str(deadline.callback.path)
    for t in dag.tasks:
        assert any(type(cb).__name__ == "FailureNotifier" for cb in t.on_failure_callback or []), t.task_id


class _FakeTI:
    def __init__(self, xcom: dict[str, Any] | None = None) -> None:
        self.xcom = dict(xcom or {})
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcom.get(f"{task_ids}.{key}")

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _render_args(dag: Any, task_id: str, params: dict[str, Any], retrain: bool | None = None,
                 mod: Any = None) -> list[str]:
    mod = mod or dag_module()
    task = dag.get_task(task_id)
    resolved = {k: v.value if hasattr(v, "value") else v for k, v in dag.params.items()}
    resolved.update(params)
    ctx = {"params": resolved, "dag": dag, "run_id": "scheduled__2026-11-23T00:00:00+00:00", "ds": "2026-11-23",
           "ti": _FakeTI({"retrain_due.retrain": retrain, "resolve_model.return_value": "m-resolved"})}
    return mod.clean_args(task.render_template(task.application_args, ctx))


def test_job_arguments_come_from_params_and_the_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALOG2VEC_LAKEHOUSE", "s3://lh/prod")
    monkeypatch.setenv("CATALOG2VEC_CONFIG", "conf/cluster.toml")
    monkeypatch.setenv("CATALOG2VEC_INPUT_ROOTS", "s3://crawl")
    monkeypatch.setenv("CATALOG2VEC_INPUT_PATH", "s3://crawl/latest/*.json")  # a default inside the roots
    mod = load_dag_module("catalog2vec_dag_prod")
    args = _render_args(mod.dag, "ingest_catalog", {"input_path": "s3://crawl/2026-11-23/*.json", "input_format": "json",
                                                    "source": "", "extra_set": ["train.epochs=2"]}, mod=mod)
    assert args[:6] == ["--config", "conf/cluster.toml", "--lakehouse", "s3://lh/prod", "--run-id",
                        "catalog2vec-scheduled__2026-11-23T0000000000"]
    assert args[args.index("--input") + 1] == "s3://crawl/2026-11-23/*.json"
    assert args[args.index("--format") + 1] == "json"
    assert args[args.index("--image-template") + 1] == "images/{item_id}.jpg"
    assert "--source" not in args  # empty optional flag dropped
    assert args[-1] == "--set=train.epochs=2"
    assert mod.dag.get_task("ingest_catalog").application == str(REPO / "jobs" / "ingest_catalog.py")
    embed = _render_args(mod.dag, "embed", {"model_version": "latest"}, mod=mod)
    assert embed[embed.index("--model-version") + 1] == "m-resolved"  # resolved once, by resolve_model
    assert "--input" not in embed


# a trigger's conf that would run code or leave the deployment's data, and what Airflow says to it
HOSTILE_CONF = [
    {"spark_conf": {"spark.driver.extraJavaOptions": "-javaagent:/tmp/x.jar"}},
    {"spark_conf": {"spark.executor.memory": "1g --conf spark.jars=/tmp/x.jar"}},
    {"spark_conf": {"spark.pyspark.python": "/tmp/evil"}},
    {"jobs_dir": "/tmp/evil"},
    {"config": "/tmp/evil.toml"},
    {"lakehouse": "/"},
    {"gpu_conf": {"spark.executor.resource.gpu.discoveryScript": "/tmp/evil.sh"}},
    {"ctr_daily_args": "--conf spark.jars=/tmp/x.jar"},
    {"extra_set": ["ingest.image_roots=/"]},
    {"extra_set": ["train.init_weights=/etc/passwd"]},
    {"input_path": "/etc/passwd"},
    {"input_path": str(REPO / "examples" / "data" / ".." / ".." / "conf" / "local.toml")},
    {"image_template": "../../../etc/{item_id}"},
    {"model_version": "../../x"},
    {"ctr_feature_version": "x' OR true --"},
    {"source": "a b"},
]


@pytest.mark.parametrize("conf", HOSTILE_CONF, ids=lambda c: next(iter(c)))
def test_trigger_conf_cannot_run_code_or_leave_the_deployment(dag: Any, conf: dict[str, Any]) -> None:
    """Every param a trigger may set is declared and constrained: Airflow refuses the run when it is
    created (ParamValidationError for a bad value; an unknown key is not a param at all)."""
    import copy

    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    (key,) = conf
    params = copy.deepcopy(dag.params)
    if key not in params:  # deployment settings are not params: nothing a trigger sets reaches a job
        assert key in ("jobs_dir", "config", "lakehouse", "gpu_conf", "ctr_daily_args")
        for task_id in SPARK_TASKS:
            rendered = " ".join(_render_args(dag, task_id, conf))
            assert "/tmp/evil" not in rendered and "spark.jars" not in rendered and "--lakehouse / " not in rendered
        return
    with pytest.raises(ParamValidationError):
        params.update(conf)  # the same check dag.test / the API apply to a trigger's conf
        ParamsDict(params).validate()


def test_benign_trigger_conf_is_accepted(dag: Any) -> None:
    import copy

    params = copy.deepcopy(dag.params)
    params.update({"spark_conf": {"spark.executor.memory": "16g", "spark.sql.shuffle.partitions": "400"},
                   "extra_set": ["train.epochs=2", "ctr.num_trees=10"], "model_version": "models:/catalog2vec@champion",
                   "ctr_feature_version": "synthetic-daily", "source": "crawl.2026-11",
                   "input_path": str(REPO / "examples" / "data" / "styles.csv")})
    params.validate()


def test_operator_refuses_a_spark_conf_outside_the_allow_list() -> None:
    mod = dag_module()
    with pytest.raises(mod.ParamRejectedError, match="extraJavaOptions"):
        mod.checked_spark_conf({"spark.driver.extraJavaOptions": "-Dx=1"})
    assert mod.checked_spark_conf({"spark.executor.memory": "8g"}) == {"spark.executor.memory": "8g"}


@pytest.mark.slow
def test_a_run_triggered_with_a_forbidden_spark_conf_fails_before_anything_is_submitted(
        airflow_db: Path, tmp_path: Path) -> None:
    """A real dag.test() run triggered with ``spark.driver.extraJavaOptions``: the run is refused
    when it is created (param validation), no task runs and no spark-submit line is built."""
    cmd = [sys.executable, str(REPO / "tests" / "deploy" / "dag_runner.py"), "--task", "ingest_catalog",
           "--conf", json.dumps({"spark_conf": {"spark.driver.extraJavaOptions": "-javaagent:/tmp/x.jar"}})]
    env = {**airflow_env(), **own_metadata_db(tmp_path / "db"), "CATALOG2VEC_LAKEHOUSE": str(tmp_path / "lakehouse")}
    proc = subprocess.run(cmd, env=env,
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "DAG_TEST_RESULT" not in out, out[-3000:]
    assert "ParamValidationError" in out or "Invalid input for param" in out, out[-3000:]
    assert "spark-submit" not in out and not (tmp_path / "lakehouse").exists()


def test_maintenance_runs_last_and_touches_each_table_weekly(dag: Any) -> None:
    assert _render_args(dag, "maintain_tables", {})[-2:] == ["--every-days", "7.0"]
    assert _render_args(dag, "maintain_tables", {"maintain_every_days": 0})[-2:] == ["--every-days", "0"]
    assert dag.get_task("maintain_tables").upstream_task_ids == {"register_tables"}


@pytest.mark.parametrize(("params", "source"), [
    ({}, "impressions"),  # default: the deployment's real log
    ({"impressions": "synthetic"}, "synthetic"),
    ({"impressions_source": "ipinyou"}, "ipinyou"),
    ({"impressions": "synthetic", "ctr_source": "ipinyou"}, "ipinyou"),  # explicit source wins
])
def test_ctr_tasks_chain_on_one_feature_version(dag: Any, params: dict[str, Any], source: str) -> None:
    feats = _render_args(dag, "build_ctr_features", params)
    assert feats[feats.index("--source") + 1] == source
    assert feats[feats.index("--model-version") + 1] == "m-resolved"
    train = _render_args(dag, "train_ctr", params, retrain=False)
    version = feats[feats.index("--feature-version") + 1]
    assert train[train.index("--feature-version") + 1] == version == f"{source}-daily"
    assert "--model-version" not in train  # train_ctr takes the feature version only


def test_impressions_come_from_the_real_log_unless_synthetic_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALOG2VEC_LAKEHOUSE", "s3://lh/prod")  # the deployment's lakehouse
    mod = load_dag_module("catalog2vec_dag_impressions")
    dag = mod.dag
    branch = dag.get_task("impressions_source")
    params = {k: v.value if hasattr(v, "value") else v for k, v in dag.params.items()}
    assert params["impressions"] == "log"
    assert branch.python_callable(params=params) == "ingest_impressions"
    assert branch.python_callable(params={**params, "impressions": "synthetic"}) == "simulate_impressions"
    log = _render_args(dag, "ingest_impressions", {}, mod=mod)
    assert log[log.index("--input") + 1] == "s3://lh/prod/landing/impressions/2026-11-23/"  # the day's folder
    assert log[log.index("--format") + 1] == "json" and log[log.index("--source") + 1] == "impressions"
    assert "--mapping" not in log
    given = _render_args(dag, "ingest_impressions", {"impressions_input": "s3://logs/imp/*.parquet",
                                                     "impressions_format": "parquet",
                                                     "impressions_mapping": "id=impression_id,clicked=click"},
                         mod=mod)
    assert given[given.index("--input") + 1] == "s3://logs/imp/*.parquet"
    assert given[given.index("--mapping") + 1] == "id=impression_id,clicked=click"
    sim = _render_args(dag, "simulate_impressions", {"simulated_impressions": 5000}, mod=mod)
    assert sim[sim.index("--impressions") + 1] == "5000"


def test_train_ctr_daily_args_only_on_non_retrain_days(dag: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _render_args(dag, "train_ctr", {}, retrain=False) == _render_args(dag, "train_ctr", {}, retrain=True)
    monkeypatch.setenv("CATALOG2VEC_CTR_DAILY_ARGS", "--reuse-trees")  # a deployment setting, not a param
    mod = load_dag_module("catalog2vec_dag_daily")
    assert "--reuse-trees" in _render_args(mod.dag, "train_ctr", {}, retrain=False, mod=mod)
    assert "--reuse-trees" not in _render_args(mod.dag, "train_ctr", {}, retrain=True, mod=mod)


def test_clean_args_keeps_values_with_spaces_and_drops_empty_pairs() -> None:
    mod = dag_module()
    assert mod.clean_args([("--a", "x y"), ("--b", ""), ("--c", None), "", "  --flag --other  ", ("--d", 0)]) == [
        "--a", "x y", "--flag", "--other", "--d", "0"]


# --------------------------------------------------------------------------------------------- cadence


NOW = datetime(2026, 11, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last", "every", "kwargs", "due"),
    [
        (None, 7, {}, True),  # no model yet
        (NOW - timedelta(days=1), 7, {}, False),  # fresh model: daily path
        (NOW - timedelta(days=6, hours=12), 7, {}, False),
        (NOW - timedelta(days=6, hours=23, minutes=30), 7, {}, True),  # schedule jitter tolerated
        (NOW - timedelta(days=9), 7, {}, True),  # a failed weekly run is caught up
        (NOW - timedelta(hours=1), 7, {"force": True}, True),
        (NOW - timedelta(hours=1), 1, {}, True),  # daily retraining
    ],
)
def test_retrain_decision(last: datetime | None, every: int, kwargs: dict[str, Any], due: bool) -> None:
    got, why = dag_module().retrain_decision(NOW, every, last, **kwargs)
    assert got is due, why


def test_retrain_decision_calendar_rule_when_model_age_unknown() -> None:
    decide = dag_module().retrain_decision
    week = [NOW + timedelta(days=d) for d in range(14)]
    due = [decide(d, 7, None, model_age_known=False)[0] for d in week]
    assert sum(due) == 2  # exactly one retrain per 7 days
    assert all(d.toordinal() % 7 == 0 for d, flag in zip(week, due, strict=True) if flag)


def test_latest_model_trained_at_reads_cards_and_ignores_ctr(tmp_path: Path) -> None:
    mod = dag_module()
    assert mod.latest_model_trained_at(str(tmp_path)) is None
    for version, created in [("v1", "2026-11-01T00:00:00Z"), ("v2", "2026-11-20T06:00:00+00:00")]:
        d = tmp_path / "models" / version
        d.mkdir(parents=True)
        (d / "model_card.json").write_text(json.dumps({"created_at": created}))
    ctr = tmp_path / "models" / "ctr"
    ctr.mkdir()
    (ctr / "model_card.json").write_text(json.dumps({"created_at": "2026-11-23T00:00:00Z"}))
    nocreated = tmp_path / "models" / "v0"
    nocreated.mkdir()
    (nocreated / "model_card.json").write_text("{}")
    os.utime(nocreated / "model_card.json", (0, 0))  # mtime 1970: older than both
    assert mod.latest_model_trained_at(str(tmp_path)) == datetime(2026, 11, 20, 6, tzinfo=UTC)


def test_branch_callable_follows_train_only_when_due(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALOG2VEC_LAKEHOUSE", str(tmp_path))  # the deployment's lakehouse
    dag = load_dag_module("catalog2vec_dag_branch").dag
    branch = dag.get_task("retrain_due")
    params = {k: v.value if hasattr(v, "value") else v for k, v in dag.params.items()}
    ti = _FakeTI()
    assert branch.python_callable(params=params, logical_date=NOW, ti=ti) == ["train", "resolve_model"]
    assert ti.pushed == {"retrain": True}
    card = tmp_path / "models" / "m1" / "model_card.json"
    card.parent.mkdir(parents=True)
    card.write_text(json.dumps({"created_at": (NOW - timedelta(days=2)).isoformat()}))
    ti = _FakeTI()
    assert branch.python_callable(params=params, logical_date=NOW, ti=ti) == ["resolve_model"]
    assert ti.pushed == {"retrain": False}


@pytest.mark.slow
def test_daily_run_skips_training_but_runs_everything_downstream(airflow_db: Path, tmp_path: Path) -> None:
    """Real Airflow scheduling semantics (dag.test): with a 1-day-old model the branch skips
    `train`, and the trigger rules still run embed ... train_ctr (Spark tasks marked success)."""
    lakehouse = tmp_path / "lakehouse"
    card = lakehouse / "models" / "m1" / "model_card.json"
    card.parent.mkdir(parents=True)
    card.write_text(json.dumps({"created_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()}))
    states, _ = run_dag(tmp_path, {"lakehouse": str(lakehouse)}, mark_success=r"^(?!retrain_due$).*")
    assert states.pop("__dagrun__") == "success"
    assert states.pop("train") == "skipped"
    assert states.pop("promote") == "skipped"  # no candidate: the champion stays
    assert states.pop("retrain_due") == "success"
    assert states.pop("resolve_model") == "success"
    assert states.pop("impressions_source") == "success"
    assert set(states.values()) == {"success"} and set(states) == set(SPARK_TASKS) - {"train", "promote"}


# --------------------------------------------------------------------------------------------- real runs


@pytest.mark.slow
def test_ingest_catalog_runs_through_spark_submit_on_local_master(airflow_db: Path, tmp_path: Path) -> None:
    from catalog2vec.lakehouse import read_arrow

    lakehouse = tmp_path / "lakehouse"
    states, log = run_dag(tmp_path, {"lakehouse": str(lakehouse)}, tasks=["ingest_catalog"])
    assert states == {"ingest_catalog": "success", "__dagrun__": "success"}
    assert "--master local[2]" in log and "spark-submit" in log  # the provider built the command
    table = read_arrow(lakehouse, "bronze/catalog_items", columns=["item_id", "run_id", "image_uri"])
    assert table.num_rows == len((EXAMPLES / "styles.csv").read_text().strip().splitlines()) - 1 == 1920
    run_ids = set(table.column("run_id").to_pylist())
    assert len(run_ids) == 1 and next(iter(run_ids)).startswith("catalog2vec-manual__")
    assert all(u.endswith(".jpg") and Path(u).is_file() for u in table.column("image_uri").to_pylist()[:20])


JOB_FILES = [f"{t}.py" for t in SPARK_TASKS]
GOLD_TABLES = ["gold/item_embeddings", "gold/item_tags", "gold/item_neighbors", "gold/clusters",
               "gold/item_clusters", "gold/ctr_features", "gold/ctr_predictions"]


# 18 spark-submit tasks in sequence: 487 s on the idle 2-core machine (2026-12-05), so it runs in
# `make test-long`. Its slices stay in `make test`: one real task through spark-submit
# (test_ingest_catalog_runs_through_spark_submit_on_local_master), the scheduling semantics of a
# daily run (test_daily_run_skips_training_but_runs_everything_downstream), a rejected candidate
# (test_promotion_dag.py), and the same job list end to end through scripts/demo.py's steps
# (test_object_store.py, test_standalone.py).
@pytest.mark.slow
@pytest.mark.long
@pytest.mark.timeout(2400)
def test_full_dag_on_the_bundled_sample(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    missing = [f for f in JOB_FILES if not (REPO / "jobs" / f).is_file()]
    if missing:
        pytest.skip(f"full DAG run needs every job; missing in jobs/: {', '.join(missing)}")
    request.getfixturevalue("airflow_db")
    from catalog2vec.lakehouse import table_exists
    from tests.sample import core_sample_dir

    lakehouse = tmp_path / "lakehouse"
    # the real pipeline at a test-sized configuration: every job runs on the 384-item core of the
    # bundled sample, the model stage is tiny
    small = ["train.image_size=32", "train.epochs=1", "train.batch_size=64", "ctr.num_trees=10",
             "ctr.lr_max_iter=20", "ctr.ablate_visual=false", "cluster.max_iter=10"]
    conf = {"lakehouse": str(lakehouse), "input_path": str(core_sample_dir() / "styles.csv"),
            "extra_set": small, "impressions": "synthetic", "simulated_impressions": 3000}
    states, log = run_dag(tmp_path, conf, timeout=2400)
    assert states.pop("__dagrun__") == "success", log[-6000:]
    assert states.pop("ingest_impressions") == "skipped"  # synthetic impressions asked for
    assert states == dict.fromkeys(set(EXPECTED_UPSTREAM) - {"ingest_impressions"}, "success")  # train ran
    events = asset_events(log)
    assert {e["asset"] for e in events} == {"catalog2vec." + t.replace("/", ".") for ts in OUTLETS.values() for t in ts}
    versions = {e["extra"]["model_version"] for e in events if e["task_id"] in ("embed", "neighbors", "cluster")}
    (model_version,) = versions  # one model version, resolved once, on every model stage's events
    assert (lakehouse / "models" / model_version / "model_card.json").is_file()
    for table in GOLD_TABLES:
        assert table_exists(lakehouse, table), table
    assert list((lakehouse / "models").glob("*/model_card.json"))
    assert (lakehouse / "_metastore" / "metastore_db").is_dir()  # register_tables ran


def test_operator_builds_the_cluster_command_from_the_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The spark-submit line the operator builds for a GPU stage with an env archive on YARN: the
    connection and the archive come from the workers' environment, through public arguments."""
    import copy

    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    captured: dict[str, list[str]] = {}

    def fake_submit(self: SparkSubmitHook, application: str = "", **_: Any) -> None:
        captured["cmd"] = self._build_spark_submit_command(application)

    monkeypatch.setattr(SparkSubmitHook, "submit", fake_submit)
    monkeypatch.setenv("AIRFLOW_CONN_YARN_PROD", json.dumps(
        {"conn_type": "spark", "host": "yarn", "extra": {"deploy-mode": "client", "queue": "ml"}}))
    monkeypatch.setenv("CATALOG2VEC_SPARK_CONN_ID", "yarn_prod")
    monkeypatch.setenv("CATALOG2VEC_ENV_ARCHIVE", "s3a://b/artifacts/catalog2vec-env.tar.gz")
    mod = load_dag_module("catalog2vec_dag_yarn")
    task = copy.copy(mod.dag.get_task("embed"))
    task.application, task.py_files = "s3a://b/artifacts/jobs/embed.py", "s3a://b/artifacts/jobs/_common.py"
    task.application_args = [("--lakehouse", "s3a://b/prod"), ("--model-version", "latest"), ""]
    task.outlets = []
    gpu_conf = mod.GPU_CONF
    task.execute({"params": {"use_gpu": True, "spark_conf": {"spark.executor.memory": "16g"}}})
    cmd = captured["cmd"]
    joined = " ".join(cmd)
    assert cmd[:3] == ["spark-submit", "--master", "yarn"]
    assert "--archives s3a://b/artifacts/catalog2vec-env.tar.gz#environment" in joined
    assert "--conf spark.pyspark.python=./environment/bin/python" in joined
    for key, value in gpu_conf.items():
        assert f"--conf {key}={value}" in joined
    assert "--conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" in joined
    assert "--conf spark.executor.memory=16g" in joined
    assert "--queue ml" in joined and "--deploy-mode client" in joined
    assert cmd[-5:] == ["s3a://b/artifacts/jobs/embed.py", "--lakehouse", "s3a://b/prod", "--model-version", "latest"]


def asset_events(log: str) -> list[dict[str, Any]]:
    """The asset events dag_runner.py printed (one ``ASSET_EVENT {json}`` line each)."""
    return [json.loads(ln.removeprefix("ASSET_EVENT ")) for ln in log.splitlines() if ln.startswith("ASSET_EVENT ")]


@pytest.mark.slow
def test_a_failed_task_alerts_the_webhook_connection(airflow_db: Path, tmp_path: Path) -> None:
    """A real failing task (a catalog that does not exist) under dag.test(): the failure notifier posts
    one JSON alert to the webhook of the ``catalog2vec_alerts`` connection (a server on loopback)."""
    import http.server
    import threading

    received: list[dict[str, Any]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"CATALOG2VEC_RETRIES": "0", "AIRFLOW_CONN_CATALOG2VEC_ALERTS": json.dumps(
            {"conn_type": "http", "extra": {"webhook_url": f"http://127.0.0.1:{server.server_port}/alerts"}})}
        states, log = run_dag(tmp_path, {"lakehouse": str(tmp_path / "lakehouse"),
                                         "input_path": str(tmp_path / "no-such-catalog.csv")},
                              tasks=["ingest_catalog"], extra_env=env)
    finally:
        server.shutdown()
    assert states["ingest_catalog"] == "failed", log[-4000:]
    assert len(received) == 1, log[-4000:]
    (alert,) = received
    assert alert["kind"] == "task failed" and alert["dag_id"] == "catalog2vec" and alert["task_id"] == "ingest_catalog"
    assert alert["text"].startswith("[catalog2vec] task failed: catalog2vec.ingest_catalog")


@pytest.mark.slow
def test_user_errors_are_not_retried_and_crashes_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real spark-submit runs through the operator: a job's user error (exit 2: here a catalog that
    does not exist) fails the task for good (AirflowFailException: no retry); a crash (exit 1) is an
    ordinary failure that Airflow retries with back-off."""
    import copy

    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    for key, value in airflow_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CATALOG2VEC_LAKEHOUSE", str(tmp_path / "lakehouse"))
    mod = load_dag_module("catalog2vec_dag_exit_codes")
    user_error = copy.copy(mod.dag.get_task("ingest_catalog"))
    user_error.outlets = []
    user_error.application_args = [("--lakehouse", str(tmp_path / "lakehouse")),
                                   ("--input", str(tmp_path / "no-such-catalog.csv"))]
    with pytest.raises(AirflowFailException, match=r"user error \(exit 2\), not retried"):
        user_error.execute({"params": {}})
    crash = tmp_path / "crash.py"
    crash.write_text("raise RuntimeError('the executor was lost')\n")
    crashed = copy.copy(mod.dag.get_task("ingest_catalog"))
    crashed.outlets, crashed.application, crashed.py_files, crashed.application_args = [], str(crash), None, []
    with pytest.raises(AirflowException) as exc:
        crashed.execute({"params": {}})
    assert not isinstance(exc.value, AirflowFailException) and mod.exit_code(crashed, exc.value) == 1
