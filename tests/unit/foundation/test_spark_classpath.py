"""The Delta/S3A jars go on the JVM class path in place: only those Spark does not ship itself."""

from __future__ import annotations

from pathlib import Path

from catalog2vec.spark import _artifact, extra_classpath, spark_home


def test_artifact_names_of_ivy_and_spark_jars() -> None:
    assert _artifact("delta-spark_4.2_2.13-4.4.0.jar") == "delta-spark_4.2_2.13"
    assert _artifact("zstd-jni-1.5.7-3.jar") == "zstd-jni"
    assert _artifact("wildfly-openssl-2.2.5.Final.jar") == "wildfly-openssl"
    assert _artifact("jackson-databind-2.21.2.jar") == "jackson-databind"


def test_only_jars_spark_lacks_go_on_the_class_path(tmp_path: Path) -> None:
    ivy = [str(tmp_path / n) for n in (
        "io.delta_delta-spark_4.2_2.13-4.4.0.jar", "org.apache.hadoop_hadoop-aws-3.5.0.jar",
        "software.amazon.awssdk_bundle-2.35.4.jar",
        "com.fasterxml.jackson.core_jackson-databind-2.13.5.jar",  # Spark ships a newer one
        "org.apache.hadoop_hadoop-client-api-3.4.2.jar", "org.apache.parquet_parquet-hadoop-1.16.0.jar")]
    assert any(p.name.startswith("jackson-databind-") for p in (spark_home() / "jars").glob("*.jar"))
    assert extra_classpath(ivy).split(":") == ivy[:3]
    assert extra_classpath([]) == ""
