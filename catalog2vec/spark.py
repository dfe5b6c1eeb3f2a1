"""The one place that builds a SparkSession with Delta Lake enabled.

* Under ``spark-submit`` (cluster or local) an active/pre-launched session is reused and the
  master is never overridden: the submitter decides (``--master yarn``, ``k8s://…``).
* In a plain Python process (tests, notebooks, ``python -m``) a local session is built with
  small-machine defaults and the Delta jars resolved by Spark from Maven
  (``spark.jars.packages``, cached under ``~/.ivy2.5.2`` by ``make setup``).

``python -m catalog2vec.spark --install-defaults --warm`` (run by ``make setup``) writes
``$SPARK_HOME/conf/spark-defaults.conf`` so that a bare ``spark-submit jobs/x.py`` also gets
Delta, and resolves the jars once so no job downloads anything at run time.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"

# Local defaults for a small machine. A key the user already set (spark-submit --conf,
# spark-defaults.conf) is never overridden.
LOCAL_DEFAULTS: dict[str, str] = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.memory": "3g",
    "spark.sql.adaptive.enabled": "true",
    "spark.databricks.delta.schema.autoMerge.enabled": "false",
    "spark.python.worker.reuse": "true",
}


def delta_maven_coordinates() -> str:
    """Maven coordinates of the Delta jar matching the installed delta-spark and pyspark."""
    from importlib.metadata import version

    delta_version = version("delta-spark")
    spark_major_minor = ".".join(version("pyspark").split(".")[:2])
    return f"io.delta:delta-spark_{spark_major_minor}_2.13:{delta_version}"


def _running_under_spark_submit() -> bool:
    # spark-submit launches the JVM first and hands python the gateway port.
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(
    app_name: str = "catalog2vec",
    master: str | None = None,
    conf: Mapping[str, Any] | None = None,
) -> Any:
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
        settings["spark.jars.packages"] = delta_maven_coordinates()
        settings.update(LOCAL_DEFAULTS)
    if conf:
        settings.update({k: str(v) for k, v in conf.items()})

    from pyspark import SparkConf, SparkContext

    if under_submit:
        SparkContext._ensure_initialized()  # attach to the JVM so SparkConf sees --conf values
    launcher_conf = SparkConf()  # what spark-submit / spark-defaults already set
    for key, value in settings.items():
        if key in ("spark.sql.extensions", "spark.sql.catalog.spark_catalog") or not launcher_conf.contains(key):
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("CATALOG2VEC_SPARK_LOG_LEVEL", "WARN"))
    return spark


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def install_spark_defaults() -> Path:
    """Write $SPARK_HOME/conf/spark-defaults.conf so bare ``spark-submit`` has Delta."""
    conf_dir = spark_home() / "conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / "spark-defaults.conf"
    lines = [
        "# written by `python -m catalog2vec.spark --install-defaults` (make setup)",
        f"spark.jars.packages {delta_maven_coordinates()}",
        f"spark.sql.extensions {DELTA_EXTENSION}",
        f"spark.sql.catalog.spark_catalog {DELTA_CATALOG}",
        "spark.ui.showConsoleProgress false",
        "spark.sql.session.timeZone UTC",
    ]
    path.write_text("\n".join(lines) + "\n")
    # quiet console: WARN and above (Spark's own default template logs INFO under spark-submit)
    (conf_dir / "log4j2.properties").write_text(
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


def warm() -> None:
    """Start a session once (resolving the Delta jars into the ivy cache) and write Delta."""
    import tempfile

    spark = get_spark("catalog2vec-warm")
    with tempfile.TemporaryDirectory() as tmp:
        spark.range(3).write.format("delta").save(f"{tmp}/t")
        n = spark.read.format("delta").load(f"{tmp}/t").count()
    spark.stop()
    if n != 3:
        raise RuntimeError("Delta warm-up read back the wrong row count")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--install-defaults", action="store_true", help="write $SPARK_HOME/conf/spark-defaults.conf")
    parser.add_argument("--warm", action="store_true", help="resolve the Delta jars and write a test table")
    args = parser.parse_args(argv)
    if args.install_defaults:
        print(f"[spark] wrote {install_spark_defaults()}")
    if args.warm:
        warm()
        print(f"[spark] Delta jars cached ({delta_maven_coordinates()})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
