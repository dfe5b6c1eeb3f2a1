"""Spark task failures counted for the run record (issue 35): the cause named from a failed task's
error message (pure), and the count read from the driver's status store on a real local session."""

from __future__ import annotations

from typing import Any

import pytest

from catalog2vec.spark import failure_cause

PY_TRACE = ("org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n"
            '  File "x.py", line 3, in f\n    raise ValueError("once")\nValueError: once\n\n'
            "\tat org.apache.spark.api.python.BasePythonRunner$ReaderIterator.handlePythonException")


@pytest.mark.parametrize(("message", "cause"), [
    (PY_TRACE, "ValueError"),
    ("ExecutorLostFailure (executor 1 exited caused by one of the running tasks) Reason: Command exited with code 137",
     "ExecutorLostFailure"),
    ("FetchFailed(BlockManagerId(1, 127.0.0.1, 4242, None), shuffleId=0, mapIndex=1, reduceId=0)", "FetchFailed"),
    ("java.io.IOException: No space left on device\n\tat java.base/java.io.FileOutputStream.writeBytes",
     "IOException"),
    ("org.apache.hadoop.fs.s3a.AWSServiceThrottledException: PUT 503 SlowDown", "AWSServiceThrottledException"),
    ("", "other"),
])
def test_the_cause_of_a_failed_task(message: str, cause: str) -> None:
    assert failure_cause(message) == cause


def _fail_first_attempt_of_partition_1(it: Any) -> Any:
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx is not None and ctx.attemptNumber() == 0 and ctx.partitionId() == 1:
        raise KeyError("injected")
    yield from it


@pytest.mark.spark
def test_failed_task_attempts_since_a_baseline(spark: Any) -> None:
    """``local[*]`` sessions do not retry a task (one attempt), so the failing job fails; its failed
    attempt is counted once, earlier stages (before the baseline) are not."""
    from catalog2vec.spark import stage_attempts, task_failures

    spark.range(4).count()
    before = stage_attempts(spark)
    with pytest.raises(Exception, match="injected"):
        spark.sparkContext.parallelize(range(8), 2).mapPartitions(_fail_first_attempt_of_partition_1).count()
    assert task_failures(spark, before) == {"spark_task_failed:KeyError": 1}
    assert task_failures(spark, stage_attempts(spark)) == {}
