"""The storage layer on a local path, on ``memory://`` and on a real S3 API server (moto server
mode on 127.0.0.1): join, read/write, list, remove, atomic publish with the marker written last."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from catalog2vec import models, storage


@pytest.fixture(params=["local", "memory"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "local":
        yield str(tmp_path / "lake")
        return
    uri = f"memory://c2v-test-{os.getpid()}-{tmp_path.name}"
    yield uri
    storage.remove(uri, recursive=True)


def test_join_keeps_uris_and_makes_local_paths_absolute(tmp_path: Path) -> None:
    assert storage.join("s3a://b/prod/", "models", "v1") == "s3a://b/prod/models/v1"
    assert storage.join("s3://b", "models/") == "s3://b/models"
    with pytest.raises(storage.StorageError, match="would leave"):  # an absolute part is refused, not re-rooted
        storage.join("s3://b", "/models/")
    assert storage.join("memory://x", "a", "", "b") == "memory://x/a/b"
    rel = storage.join("lake", "models")
    assert os.path.isabs(rel) and rel.endswith(os.path.join("lake", "models"))
    assert storage.join("file:///tmp/x", "y") == "/tmp/x/y"
    # the bug this layer removes: pathlib on a URI collapses '//' into a local relative folder
    assert str(Path("s3://b/prod") / "models") == "s3:/b/prod/models"
    assert storage.to_spark_uri("s3://b/x") == "s3a://b/x" and storage.to_object_uri("s3a://b/x") == "s3://b/x"
    assert storage.parent("s3a://b/x/y.json") == "s3a://b/x" and storage.basename("s3a://b/x/y.json") == "y.json"


def test_read_write_list_remove(root: str) -> None:
    storage.write_bytes(storage.join(root, "a", "x.bin"), b"\x00\x01")
    storage.write_json(storage.join(root, "a", "b", "y.json"), {"k": [1, 2]})
    storage.write_text(storage.join(root, "z.txt"), "héllo")
    assert storage.read_bytes(storage.join(root, "a", "x.bin")) == b"\x00\x01"
    assert storage.read_json(storage.join(root, "a", "b", "y.json")) == {"k": [1, 2]}
    assert storage.read_text(storage.join(root, "z.txt")) == "héllo"
    assert storage.listdir(root) == ["a", "z.txt"]
    assert storage.listdir(storage.join(root, "nope")) == []
    files = storage.list_files(root)
    assert files == sorted([storage.join(root, "a", "b", "y.json"), storage.join(root, "a", "x.bin"),
                            storage.join(root, "z.txt")])
    assert storage.isfile(files[0]) and storage.isdir(storage.join(root, "a"))
    assert storage.size(storage.join(root, "a", "x.bin")) == 2
    with storage.open_file(storage.join(root, "s.txt"), "w") as fh:
        fh.write("streamed")
    assert storage.read_text(storage.join(root, "s.txt")) == "streamed"
    storage.remove(storage.join(root, "a"), recursive=True)
    storage.remove(storage.join(root, "never-existed"))
    assert storage.listdir(root) == ["s.txt", "z.txt"]
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(storage.join(root, "a", "x.bin"))


def test_local_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "d" / "f.bin"
    storage.write_bytes(target, b"1" * 1000)
    storage.write_bytes(target, b"2")
    assert target.read_bytes() == b"2"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]


def test_open_file_discards_a_failed_write(root: str) -> None:
    path = storage.join(root, "half.txt")
    with pytest.raises(RuntimeError), storage.open_file(path, "wb") as fh:
        fh.write(b"partial")
        raise RuntimeError("writer died")
    assert not storage.exists(path)


class _RecordingWrites:
    """Records the order of object writes made through the storage layer."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.order: list[str] = []
        real = storage.write_bytes

        def record(path: Any, data: bytes) -> str:
            self.order.append(storage.basename(path))
            return real(path, data)

        monkeypatch.setattr(storage, "write_bytes", record)


def test_publish_writes_the_marker_last(root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = _RecordingWrites(monkeypatch)
    storage.publish(storage.join(root, "m", "card.json"), {"v": 1},
                    {storage.join(root, "m", "w.bin"): b"w", storage.join(root, "m", "vocab"): "t"})
    assert rec.order == ["w.bin", "vocab", "card.json"]
    assert storage.read_json(storage.join(root, "m", "card.json")) == {"v": 1}


def test_a_reader_never_sees_a_model_whose_card_is_missing(root: str) -> None:
    """Concurrent reader vs a slow publisher: whenever the reader lists a version, its payload is complete."""
    payload_written = threading.Event()
    release = threading.Event()
    real = storage.write_bytes
    seen: list[list[str]] = []

    def slow_write(path: Any, data: bytes) -> str:
        out = real(path, data)
        if storage.basename(path) == "model.pt":
            payload_written.set()
            release.wait(5)
        return out

    directory = models.model_dir(root, "v1")
    storage.write_bytes = slow_write  # type: ignore[assignment]
    try:
        t = threading.Thread(target=models.publish, args=(directory, {"model_version": "v1"},
                                                          {"model.pt": b"weights", "vocab.parquet": b"v"}))
        t.start()
        assert payload_written.wait(5)
        seen.append(models.list_versions(root))  # payload on storage, card not yet: invisible
        release.set()
        t.join(5)
    finally:
        storage.write_bytes = real  # type: ignore[assignment]
    seen.append(models.list_versions(root))
    assert seen == [[], ["v1"]]
    assert storage.read_bytes(storage.join(directory, "model.pt")) == b"weights"


def test_check_writable_rejects_a_file_and_a_read_only_dir(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(storage.StorageError, match="is a file"):
        storage.check_writable(f)
    storage.check_writable(tmp_path / "new" / "lake")  # creatable: fine
    if os.geteuid() != 0:  # root ignores permission bits
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(storage.StorageError, match="not writable"):
            storage.check_writable(ro / "lake")


def test_unknown_scheme_is_a_storage_error() -> None:
    with pytest.raises(storage.StorageError, match="no filesystem for scheme 'nosuchfs'"):
        storage.exists("nosuchfs://bucket/x")


def test_settings_from_env_and_spark_conf_agree() -> None:
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
           "AWS_REGION": "eu-west-1"}
    s = storage.s3_settings(env=env)
    conf = s.spark_conf()
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "eu-west-1"
    rs = s.delta_rs_options()
    assert rs["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000" and rs["AWS_ALLOW_HTTP"] == "true"
    assert rs["AWS_ACCESS_KEY_ID"] == "k" and rs["AWS_REGION"] == "eu-west-1"
    fo = s.fsspec_options()
    assert fo["endpoint_url"] == "http://127.0.0.1:9000" and fo["key"] == "k" and fo["secret"] == "s"
    # the same settings read back from the Spark side (spark.hadoop.fs.s3a.* win over the environment)
    back = storage.s3_settings(conf, env={})
    assert (back.endpoint, back.access_key, back.secret_key, back.region) == (s.endpoint, "k", "s", "eu-west-1")
    assert storage.s3_settings({"spark.hadoop.fs.s3a.endpoint": "http://other:1"}, env=env).endpoint == "http://other:1"


def test_one_retry_policy_configures_every_s3_client() -> None:
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "CATALOG2VEC_S3_RETRY_ATTEMPTS": "4",
           "CATALOG2VEC_S3_RETRY_BUDGET_S": "30", "CATALOG2VEC_S3_READ_TIMEOUT_S": "5"}
    policy = storage.RetryPolicy.from_env(env)
    assert (policy.attempts, policy.budget_s, policy.read_timeout_s) == (4, 30.0, 5.0)
    assert policy.s3a_conf()["spark.hadoop.fs.s3a.retry.limit"] == "4"
    assert policy.s3a_conf()["spark.hadoop.fs.s3a.attempts.maximum"] == "1"  # S3A retries; the SDK does not multiply
    assert policy.s3a_conf()["spark.hadoop.fs.s3a.connection.timeout"] == "5s"
    assert policy.delta_rs_options()["max_retries"] == "3" and policy.delta_rs_options()["retry_timeout"] == "30s"
    assert policy.fsspec_config()["retries"] == {"max_attempts": 4, "mode": "standard"}
    defaults = storage.RetryPolicy.from_env({})
    s = storage.s3_settings(env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"})
    assert s.fsspec_options()["config_kwargs"]["retries"]["max_attempts"] == defaults.attempts
    assert s.delta_rs_options()["max_retries"] == str(defaults.attempts - 1)
    assert s.spark_conf()["spark.hadoop.fs.s3a.retry.limit"] == str(defaults.attempts)
    with pytest.raises(storage.StorageError, match="not a number"):
        storage.RetryPolicy.from_env({"CATALOG2VEC_S3_RETRY_ATTEMPTS": "many"})


def test_s3_roundtrip_on_a_real_s3_api_server(s3_server: Any) -> None:
    bucket = s3_server.create_bucket("c2v-storage-unit")
    root = f"s3a://{bucket}/lake"
    storage.publish(storage.join(root, "models", "v1", "model_card.json"), {"ok": 1},
                    {storage.join(root, "models", "v1", "model.pt"): b"w"})
    storage.publish(storage.join(root, "models", "LATEST"), "v1\n")
    assert s3_server.keys(bucket) == ["lake/models/LATEST", "lake/models/v1/model.pt", "lake/models/v1/model_card.json"]
    assert models.list_versions(root) == ["v1"] and models.resolve(root, "latest") == "v1"
    assert storage.listdir(storage.join(root, "models")) == ["LATEST", "v1"]
    assert storage.list_files(root)[0] == "s3a://c2v-storage-unit/lake/models/LATEST"
    storage.remove(storage.join(root, "models"), recursive=True)
    assert s3_server.keys(bucket) == []


def test_botocore_retries_are_counted_per_cause() -> None:
    """The s3fs clients' ``needs-retry`` hook: transient failures counted by cause (the run record's
    ``retries``), definite answers (404) not; botocore's standard policy decides what is transient."""
    from types import SimpleNamespace

    from botocore.exceptions import EndpointConnectionError
    from botocore.session import get_session

    op = get_session().get_service_model("s3").operation_model("PutObject")
    storage.retry_counts(reset=True)

    def attempt(status: int | None, code: str = "", exc: BaseException | None = None, n: int = 1) -> None:
        response = None if status is None else (SimpleNamespace(status_code=status, headers={}),
                                                {"Error": {"Code": code}, "ResponseMetadata": {}})
        storage._count_retry(response=response, caught_exception=exc, attempts=n, operation=op,
                             request_dict={"context": {}})

    attempt(503, "SlowDown")
    attempt(503, "SlowDown")
    attempt(500, "InternalError")
    attempt(None, exc=EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    attempt(404, "NoSuchKey")
    attempt(200)
    assert storage.retry_counts(reset=True) == {"s3:EndpointConnectionError": 1, "s3:InternalError": 1,
                                                "s3:SlowDown": 2}
    assert storage.retry_counts() == {}
