"""The one place that builds a SparkSession with Delta Lake enabled.

* Under ``spark-submit`` (cluster or local) an active/pre-launched session is reused and the
  master is never overridden: the submitter decides (``--master yarn``, ``k8s://…``).
* In a plain Python process (tests, notebooks, ``python -m``) a local session is built with
  small-machine defaults and the Delta jars resolved by Spark from Maven
  (``spark.jars.packages``, cached under ``~/.ivy2.5.2`` by ``make setup``).

``python -m catalog2vec.spark --install-defaults --warm`` (run by ``make setup``) writes the
project's ``SPARK_CONF_DIR`` (``conf/spark/``, exported by the Makefile; never site-packages) so that
a bare ``spark-submit jobs/x.py`` also gets Delta, and resolves the jars once so no job downloads
anything at run time. The Spark UI and the console progress bar keep Spark's defaults (on); the
test suite turns them off in its own copy of that directory (tests/conftest.py).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalog2vec import storage

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"

# Local defaults for a small machine. A key the user already set (spark-submit --conf,
# spark-defaults.conf) is never overridden.
LOCAL_DEFAULTS: dict[str, str] = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.sql.session.timeZone": "UTC",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.memory": "3g",
    "spark.sql.adaptive.enabled": "true",
    "spark.databricks.delta.schema.autoMerge.enabled": "false",
    "spark.python.worker.reuse": "true",
    # Delta VACUUM lists the table's directories in a job of this many tasks (Spark default
    # 10,000: minutes of empty tasks on a small machine)
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "8",
}


# Settings that only take effect when the JVM is launched (spark-submit has already launched it)
JVM_LAUNCH_KEYS = frozenset({"spark.driver.memory"})


def is_local_master(master: str | None) -> bool:
    """True for ``local``, ``local[...]`` and ``local-cluster[...]`` masters (one machine)."""
    return master is not None and (master == "local" or master.startswith(("local[", "local-cluster[")))


def delta_maven_coordinates() -> str:
    """Maven coordinates of the Delta jar matching the installed delta-spark and pyspark."""
    from importlib.metadata import version

    delta_version = version("delta-spark")
    spark_major_minor = ".".join(version("pyspark").split(".")[:2])
    return f"io.delta:delta-spark_{spark_major_minor}_2.13:{delta_version}"


def hadoop_version() -> str:
    """Version of the Hadoop client jars shipped with the installed pyspark (e.g. ``3.5.0``)."""
    import re

    for jar in sorted((spark_home() / "jars").glob("hadoop-client-api-*.jar")):
        m = re.fullmatch(r"hadoop-client-api-(\d+\.\d+\.\d+)\.jar", jar.name)
        if m:
            return m.group(1)
    raise RuntimeError(f"no hadoop-client-api jar under {spark_home() / 'jars'}; is pyspark installed?")


def hadoop_aws_coordinates() -> str:
    """``org.apache.hadoop:hadoop-aws`` at exactly the Hadoop version of pyspark's jars (the S3A
    connector must match Hadoop; it pulls the matching AWS SDK bundle)."""
    return f"org.apache.hadoop:hadoop-aws:{hadoop_version()}"


def jar_packages() -> str:
    """``spark.jars.packages`` for local sessions and bare ``spark-submit``: Delta + S3A."""
    return f"{delta_maven_coordinates()},{hadoop_aws_coordinates()}"


def conf_dir() -> Path:
    """Spark's configuration directory: ``$SPARK_CONF_DIR`` (the Makefile exports the project's
    ``conf/spark``), else the installation's own ``conf/`` (what spark-submit reads then)."""
    env = os.environ.get("SPARK_CONF_DIR", "")
    return Path(env) if env else spark_home() / "conf"


def jars_manifest() -> Path:
    """The local jar files ``make setup`` resolved for :func:`jar_packages` (one path a line)."""
    return conf_dir() / "catalog2vec-jars.txt"


def resolved_jars() -> list[str]:
    """Those jar files, if they are all still on disk (else ``[]``: resolve from Maven again)."""
    try:
        jars = [ln.strip() for ln in jars_manifest().read_text().splitlines() if ln.strip()]
    except OSError:
        return []
    return jars if jars and all(os.path.isfile(j) for j in jars) else []


def _artifact(jar_name: str) -> str:
    """``delta-spark_4.2_2.13`` of ``io.delta_delta-spark_4.2_2.13-4.4.0.jar`` (Ivy) or of
    ``delta-spark_4.2_2.13-4.4.0.jar`` (Spark's own ``jars/``)."""
    m = re.match(r"^(.+?)-\d", jar_name)
    return m.group(1) if m else jar_name.removesuffix(".jar")


def extra_classpath(jars: list[str] | None = None) -> str:
    """The resolved jars that Spark does not ship itself (Delta, hadoop-aws, the AWS SDK bundle, …),
    as a ``spark.{driver,executor}.extraClassPath`` value.

    Every JVM of this machine (driver, local-cluster and standalone executors) loads them in place.
    As ``spark.jars`` (even with the ``local:`` scheme) each standalone executor of each
    application copied all of them, 744 MB, into its work directory (measured: 1.5 GB of disk per
    application on the two-worker cluster). Transitive jars Spark already has at a newer version
    (Jackson, Parquet, the Hadoop client, log4j, …) are left out so they cannot shadow Spark's."""
    jars = resolved_jars() if jars is None else jars
    shipped = {_artifact(p.name) for p in (spark_home() / "jars").glob("*.jar")}
    return ":".join(j for j in jars if _artifact(Path(j).name.split("_", 1)[-1]) not in shipped)


def _running_under_spark_submit() -> bool:
    # spark-submit launches the JVM first and hands python the gateway port.
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(
    app_name: str = "catalog2vec",
    master: str | None = None,
    conf: Mapping[str, Any] | None = None,
) -> SparkSession:
    """Return a Delta-enabled SparkSession.

    ``master`` applies only when this process launches Spark itself (not under
    spark-submit). ``conf`` entries are applied unless already set by the launcher.
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    under_submit = _running_under_spark_submit()
    if not under_submit:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    builder = SparkSession.builder.appName(app_name)
    settings: dict[str, str] = {
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
    }
    if not under_submit:
        builder = builder.master(master or os.environ.get("CATALOG2VEC_SPARK_MASTER", "local[*]"))
        # Delta + S3A: the local files make setup resolved (no resolver, no network), else Maven
        classpath = extra_classpath()
        if classpath:
            settings["spark.driver.extraClassPath"] = settings["spark.executor.extraClassPath"] = classpath
        else:
            settings["spark.jars.packages"] = jar_packages()
        settings.update(LOCAL_DEFAULTS)
    # S3 endpoint/credentials from the AWS_* environment (never overriding --conf / defaults)
    settings.update(storage.s3_settings().spark_conf())
    if conf:
        settings.update({k: str(v) for k, v in conf.items()})

    from pyspark import SparkConf, SparkContext

    if under_submit:
        SparkContext._ensure_initialized()  # attach to the JVM so SparkConf sees --conf values
    launcher_conf = SparkConf()  # what spark-submit / spark-defaults already set
    if under_submit and is_local_master(launcher_conf.get("spark.master", None)):
        # spark-submit on one machine (the DAG's local connection, `make demo`): the same small-
        # machine defaults (Delta snapshot/listing parallelism, shuffle partitions) — without them
        # VACUUM/OPTIMIZE list a table in thousands of empty tasks. Cluster masters keep theirs;
        # JVM launch settings (driver memory) are too late here.
        local = {k: v for k, v in LOCAL_DEFAULTS.items() if k not in JVM_LAUNCH_KEYS}
        settings = {**local, **settings}
    for key, value in settings.items():
        if key in ("spark.sql.extensions", "spark.sql.catalog.spark_catalog") or not launcher_conf.contains(key):
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("CATALOG2VEC_SPARK_LOG_LEVEL", "WARN"))
    storage.configure_from_spark(spark)  # artifact writes use the session's S3 endpoint and keys
    return spark


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def total_memory_mb() -> int:
    """Physical memory of this machine in MiB (0 when unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20))
    except (ValueError, OSError, AttributeError):
        return 0


def local_memory_defaults(total_mb: int | None = None) -> dict[str, str]:
    """Memory settings for a bare ``spark-submit`` on this machine (local mode: the driver JVM is
    also the executor). spark-submit's own default heap is 1 GiB, too small to cache and shuffle a
    few million catalog rows; the heap here is a quarter of RAM, clamped to [1 GiB, 3 GiB] (the
    machine is shared), and input splits stay small so no task holds a large slice of the input."""
    total = total_memory_mb() if total_mb is None else total_mb
    heap = max(1024, min(3072, total // 4)) if total else 3072
    return {
        "spark.driver.memory": f"{heap}m",
        "spark.sql.files.maxPartitionBytes": "32m",
    }


def install_spark_defaults(jars: list[str] | None = None) -> Path:
    """Write ``spark-defaults.conf`` into :func:`conf_dir` so bare ``spark-submit`` has Delta, S3A and
    memory settings that fit this machine (:func:`local_memory_defaults`; ``--conf`` /
    ``--driver-memory`` on the command line still win).

    With the jar files :func:`warm` resolved (Delta, hadoop-aws and the ~690 MB AWS SDK bundle)
    they go on the driver and executor class path (:func:`extra_classpath`): every JVM of this
    machine loads them from the Ivy cache in place — no resolver run and no network at job start,
    and no copy into each application's work directory. Without them, ``spark.jars.packages``
    (resolved from Maven at start). On a real cluster pass
    ``--packages …`` (README).
    """
    directory = conf_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "spark-defaults.conf"
    classpath = extra_classpath(jars)
    jar_lines = ([f"spark.driver.extraClassPath {classpath}", f"spark.executor.extraClassPath {classpath}"]
                 if classpath else [f"spark.jars.packages {jar_packages()}"])
    lines = [
        "# written by `python -m catalog2vec.spark --install-defaults` (make setup)",
        *jar_lines,
        f"spark.sql.extensions {DELTA_EXTENSION}",
        f"spark.sql.catalog.spark_catalog {DELTA_CATALOG}",
        "spark.sql.session.timeZone UTC",
        "# memory for local spark-submit runs (see catalog2vec.spark.local_memory_defaults)",
        *(f"{k} {v}" for k, v in local_memory_defaults().items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    # quiet console: WARN and above (Spark's own default template logs INFO under spark-submit)
    (directory / "log4j2.properties").write_text(
        "rootLogger.level = warn\n"
        "rootLogger.appenderRef.stdout.ref = console\n"
        "appender.console.type = Console\n"
        "appender.console.name = console\n"
        "appender.console.target = SYSTEM_ERR\n"
        "appender.console.layout.type = PatternLayout\n"
        "appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex\n"
        "logger.ivy.name = org.apache.spark.util.MavenUtils\n"
        "logger.ivy.level = warn\n"
    )
    return path


# ------------------------------------------------------------------ task failures
_CAUSE_RES = (re.compile(r"\b(ExecutorLostFailure|FetchFailed|TaskResultLost|TaskKilled|ResultDeleted)\b"),
              re.compile(r"^(\w+(?:Error|Exception|Exit|Interrupt))\b", re.MULTILINE),  # a Python exception
              re.compile(r"\b(?:\w+\.)*([A-Z]\w*(?:Exception|Error))\b"))  # a JVM exception class


def failure_cause(message: str) -> str:
    """A short cause for a failed task's error message: ``ExecutorLostFailure``, the Python
    exception class a UDF raised (the last one of its traceback), or the JVM exception's class."""
    for i, pattern in enumerate(_CAUSE_RES):
        found = pattern.findall(message)
        if found:
            return str(found[-1] if i == 1 else found[0])
    return "other"


def stage_attempts(spark: SparkSession | None) -> set[tuple[int, int]]:
    """(stage id, attempt) of every stage the session's status store knows (the baseline of
    :func:`task_failures`); empty without a session."""
    if spark is None:
        return set()
    store: Any = spark.sparkContext._jsc.sc().statusStore()
    stages = store.stageList(None, False, False, getattr(store, "stageList$default$4")(), None)
    return {(int(stages.apply(i).stageId()), int(stages.apply(i).attemptId())) for i in range(stages.size())}


def task_failures(spark: SparkSession | None, before: set[tuple[int, int]] | frozenset[tuple[int, int]] = frozenset(),
                  max_tasks: int = 10_000) -> dict[str, int]:
    """Task attempts that failed in the stages run since ``before`` (:func:`stage_attempts`), per
    cause (``spark_task_failed:<cause>``), and stage attempts Spark re-ran (``spark_stage_retry``:
    a barrier stage after a task failure, a stage after a fetch failure or a lost executor).
    Read from the driver's status store (the listener bus drained first), so it covers every
    executor; killed tasks (speculation, the rest of a failed barrier stage) are not failures."""
    if spark is None:
        return {}
    sc: Any = spark.sparkContext._jsc.sc()
    sc.listenerBus().waitUntilEmpty()
    store = sc.statusStore()
    out: dict[str, int] = {}
    for stage_id, attempt in sorted(stage_attempts(spark) - set(before)):
        if attempt > 0:
            out["spark_stage_retry"] = out.get("spark_stage_retry", 0) + 1
        tasks = store.taskList(stage_id, attempt, max_tasks)
        for i in range(tasks.size()):
            task = tasks.apply(i)
            if str(task.status()) == "FAILED":
                msg = task.errorMessage()
                key = "spark_task_failed:" + failure_cause(str(msg.get()) if msg.isDefined() else "")
                out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def warm() -> list[str]:
    """Resolve Delta + hadoop-aws from Maven into the Ivy cache once, check a Delta round trip, and
    record the resolved jar files (:func:`jars_manifest`) for later sessions. Returns them."""
    import tempfile

    jars_manifest().unlink(missing_ok=True)
    (conf_dir() / "spark-defaults.conf").unlink(missing_ok=True)  # resolve our own packages
    spark = get_spark("catalog2vec-warm", conf={"spark.jars.packages": jar_packages()})
    resolved = [j.removeprefix("file:").removeprefix("//") for j in spark.sparkContext.getConf().get("spark.jars", "").split(",") if j]
    with tempfile.TemporaryDirectory() as tmp:
        spark.range(3).write.format("delta").save(f"{tmp}/t")
        n = spark.read.format("delta").load(f"{tmp}/t").count()
    spark.stop()
    if n != 3:
        raise RuntimeError("Delta warm-up read back the wrong row count")
    if not resolved or not any("hadoop-aws" in j for j in resolved):
        raise RuntimeError(f"jar resolution did not yield Delta + hadoop-aws: {resolved}")
    jars_manifest().parent.mkdir(parents=True, exist_ok=True)  # a fresh pip pyspark has no conf/
    jars_manifest().write_text("\n".join(resolved) + "\n")
    return resolved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--install-defaults", action="store_true",
                        help="write spark-defaults.conf into $SPARK_CONF_DIR (else $SPARK_HOME/conf)")
    parser.add_argument("--warm", action="store_true", help="resolve the Delta jars and write a test table")
    args = parser.parse_args(argv)
    if args.warm:
        jars = warm()
        print(f"[spark] Delta + S3A jars cached ({jar_packages()}: {len(jars)} jar files)")
    if args.install_defaults:
        n = len([j for j in extra_classpath().split(":") if j])
        print(f"[spark] wrote {install_spark_defaults()} ({n} jars on the driver and executor class path)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
