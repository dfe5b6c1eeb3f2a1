"""The one storage layer: every non-table artifact (models, checkpoints, cards, indexes, reports,
run records, configs, vocab files) is read and written through this module, on a local path or
any fsspec URI (``s3://``/``s3a://`` through s3fs, ``memory://`` in tests, ``gs://``, ``abfs://``).

Object stores have no rename, so the atomic unit is one object: :func:`publish` writes the payload
objects first and the small *marker* object (a model card, ``LATEST``, an index manifest) last; a
reader trusts an artifact only once its marker exists. On local disk each single write is also
atomic (temporary file + rename), so a killed writer never leaves a half-written file.

Credentials and endpoint come from the usual places, merged by :func:`s3_settings`:
``spark.hadoop.fs.s3a.*`` (when a Spark configuration is given) over the ``AWS_*`` environment.
The same :class:`S3Settings` derive the fsspec options, the delta-rs ``storage_options`` and the
``spark.hadoop.fs.s3a.*`` configuration, so Spark, delta-rs/DuckDB readers and artifact writes
agree.

>>> from catalog2vec import storage
>>> uri = storage.join("memory://lake", "models", "v1", "card.json")
>>> storage.write_json(uri, {"ok": True})
>>> storage.read_json(uri)
{'ok': True}
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from catalog2vec.errors import UserError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem
    from pyspark.sql import SparkSession

# Schemes that name the same S3 object store (Hadoop spells it s3a, boto/fsspec s3).
S3_SCHEMES = ("s3", "s3a", "s3n")


class StorageError(UserError, OSError):
    """A storage location is unusable (bad URI, missing filesystem driver, unwritable root)."""


# ------------------------------------------------------------------ paths
def scheme(path: str | os.PathLike[str]) -> str:
    """URI scheme of ``path`` (``""`` for a local path; ``file://`` counts as local)."""
    s = os.fspath(path)
    if "://" not in s:
        return ""
    sch = s.split("://", 1)[0].lower()
    return "" if sch == "file" else sch


def is_local(path: str | os.PathLike[str]) -> bool:
    return scheme(path) == ""


def normalize(path: str | os.PathLike[str]) -> str:
    """A local path made absolute (``file://`` stripped); a URI unchanged but for trailing ``/``."""
    s = os.fspath(path)
    if is_local(s):
        return os.path.abspath(s.removeprefix("file://"))
    return s.rstrip("/")


def join(base: str | os.PathLike[str], *parts: str) -> str:
    """``base/part/...`` — absolute for local paths, ``/``-joined for URIs (never ``pathlib`` on a URI).

    A part is relative and stays below ``base``: an absolute part (``/etc``, ``C:\\x``, ``s3://…``),
    a ``.``/``..`` segment or a NUL raises :class:`StorageError` — names from a command line or a
    DAG trigger can never lead a write out of the lakehouse."""
    b = normalize(base)
    for p in parts:
        if not p:
            continue
        segments = p.replace("\\", "/").split("/")
        if p.startswith("/") or "://" in p or "\0" in p or os.path.isabs(p) or any(s in (".", "..") for s in segments):
            raise StorageError(f"path part {p[:200]!r} would leave {b}: parts must be relative names without '.' or '..'")
    clean = [p.strip("/") for p in parts if p and p.strip("/")]
    if is_local(b):
        return os.path.join(b, *clean)
    sch, rest = b.split("://", 1)
    return f"{sch}://{posixpath.join(rest, *clean)}" if clean else b


def basename(path: str | os.PathLike[str]) -> str:
    return posixpath.basename(normalize(path).replace(os.sep, "/"))


def parent(path: str | os.PathLike[str]) -> str:
    p = normalize(path)
    if is_local(p):
        return os.path.dirname(p)
    sch, rest = p.split("://", 1)
    return f"{sch}://{posixpath.dirname(rest)}"


def to_spark_uri(path: str | os.PathLike[str]) -> str:
    """The URI Spark (Hadoop) opens: ``s3://`` → ``s3a://``; local paths absolute."""
    p = normalize(path)
    if scheme(p) in ("s3", "s3n"):
        return "s3a://" + p.split("://", 1)[1]
    return p


def to_object_uri(path: str | os.PathLike[str]) -> str:
    """The URI fsspec and delta-rs open: ``s3a://`` → ``s3://``; local paths absolute."""
    p = normalize(path)
    if scheme(p) in ("s3a", "s3n"):
        return "s3://" + p.split("://", 1)[1]
    return p


def to_asset_uri(path: str | os.PathLike[str]) -> str:
    """The URI that names ``path`` to a scheduler (Airflow Assets, OpenLineage datasets): ``file://``
    plus the absolute path for local paths, ``s3://`` for any S3 spelling."""
    p = to_object_uri(path)
    return f"file://{p}" if is_local(p) else p


# ------------------------------------------------------------------ retries
@dataclass(frozen=True)
class RetryPolicy:
    """One retry budget for every client of the object store: Spark's S3A, s3fs/botocore (artifacts)
    and delta-rs (analyst reads). A request that fails with a transient cause (connection refused or
    reset, a timeout, 5xx / 503 SlowDown throttling) is retried with exponential back-off for up to
    ``attempts`` tries and about ``budget_s`` seconds; past that the job ends with one error line and
    exit 1 (a transient failure the DAG retries), and a re-run produces the same tables.

    The defaults ride out a ~1-2 minute outage; ``CATALOG2VEC_S3_RETRY_ATTEMPTS``,
    ``CATALOG2VEC_S3_RETRY_BUDGET_S``, ``CATALOG2VEC_S3_CONNECT_TIMEOUT_S`` and
    ``CATALOG2VEC_S3_READ_TIMEOUT_S`` change them for every client at once (:meth:`from_env`).
    """

    attempts: int = 10  # tries per request, the first included
    base_delay_s: float = 0.5  # first back-off; doubles per retry (botocore: its own standard curve)
    max_delay_s: float = 20.0  # longest single back-off
    budget_s: float = 150.0  # delta-rs retry_timeout; ~ the sum of the back-offs of the other clients
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RetryPolicy:
        env = os.environ if env is None else env
        d = cls()

        def num(name: str, default: float) -> float:
            raw = env.get(f"CATALOG2VEC_S3_{name}", "")
            try:
                return float(raw) if raw else default
            except ValueError:
                raise StorageError(f"CATALOG2VEC_S3_{name}={raw!r} is not a number") from None

        return cls(attempts=max(1, int(num("RETRY_ATTEMPTS", d.attempts))),
                   base_delay_s=d.base_delay_s, max_delay_s=d.max_delay_s,
                   budget_s=num("RETRY_BUDGET_S", d.budget_s),
                   connect_timeout_s=num("CONNECT_TIMEOUT_S", d.connect_timeout_s),
                   read_timeout_s=num("READ_TIMEOUT_S", d.read_timeout_s))

    def fsspec_config(self) -> dict[str, Any]:
        """botocore ``Config`` keywords (s3fs ``config_kwargs``): standard-mode retries, timeouts."""
        return {"retries": {"max_attempts": self.attempts, "mode": "standard"},
                "connect_timeout": self.connect_timeout_s, "read_timeout": self.read_timeout_s}

    def delta_rs_options(self) -> dict[str, str]:
        """delta-rs / object_store client options (``storage_options``)."""
        return {"max_retries": str(self.attempts - 1), "retry_timeout": f"{int(self.budget_s)}s",
                "backoff_config.init_backoff": f"{int(self.base_delay_s * 1000)}ms",
                "backoff_config.max_backoff": f"{int(self.max_delay_s)}s", "backoff_config.base": "2",
                "connect_timeout": f"{int(self.connect_timeout_s)}s", "timeout": f"{int(self.read_timeout_s)}s"}

    def s3a_conf(self) -> dict[str, str]:
        """``spark.hadoop.fs.s3a.*`` retry and timeout settings (S3A retries; the AWS SDK's own
        retries are kept to one so the two do not multiply)."""
        pre = "spark.hadoop.fs.s3a."
        return {pre + "retry.limit": str(self.attempts), pre + "retry.interval": f"{int(self.base_delay_s * 1000)}ms",
                pre + "retry.throttle.limit": str(self.attempts),
                pre + "retry.throttle.interval": f"{int(self.base_delay_s * 1000)}ms",
                pre + "attempts.maximum": "1",
                pre + "connection.establish.timeout": f"{int(self.connect_timeout_s)}s",
                pre + "connection.timeout": f"{int(self.read_timeout_s)}s"}


_RETRIES: Counter[str] = Counter()


def retry_counts(reset: bool = False) -> dict[str, int]:
    """Requests of this process's s3fs/botocore client that failed with a transient cause and were
    retried, per cause (``s3:SlowDown``, ``s3:503``, ``s3:EndpointConnectionError``,
    ``s3:ReadTimeoutError``, ...). The job runner puts them in the run record (``retries``).
    Not counted here: S3A's retries (Hadoop-side, see :func:`s3a_retry_counts`), delta-rs's (Rust
    ``object_store``, not observable from Python), and retries made in other processes (executors,
    TorchDistributor ranks)."""
    out = {k: v for k, v in sorted(_RETRIES.items())}
    if reset:
        _RETRIES.clear()
    return out


def _count_retry(**kwargs: Any) -> None:
    """botocore ``needs-retry`` hook: count a failed attempt — one botocore's standard retry policy
    retries (its own decision: connection errors, 5xx, throttling codes) or an exception s3fs's own
    retry loop sees (a read timeout)."""
    from botocore.retries.standard import RetryEventAdapter, StandardRetryConditions

    context = RetryEventAdapter().create_retry_context(**kwargs)
    retried = StandardRetryConditions(max_attempts=RetryPolicy.from_env().attempts).is_retryable(context)
    if not retried and context.caught_exception is None:
        return  # a definite answer (404, 403, ...), not a transient failure
    if context.caught_exception is not None:
        cause = type(context.caught_exception).__name__
    else:
        cause = str(context.get_error_code() or (context.http_response.status_code if context.http_response else "?"))
    _RETRIES[f"s3:{cause}"] += 1


def _counting_session() -> Any:
    """An aiobotocore session for s3fs whose clients count their retries (:func:`retry_counts`)."""
    from aiobotocore.session import AioSession

    session = AioSession()
    session.register("needs-retry.s3", _count_retry)
    return session


def s3a_retry_counts(root: str | os.PathLike[str] | None) -> dict[str, int]:
    """S3A's cumulative retry counters (Hadoop IOStatistics ``store_io_retry``,
    ``store_io_throttled``) of the active Spark session's filesystem for ``root``; ``{}`` for a
    local root or without a session. In local mode the executors share the driver's filesystem
    instance, so these include theirs; on a cluster they are the driver's only."""
    if root is None or scheme(root) not in S3_SCHEMES:
        return {}
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None:
        return {}
    jvm: Any = spark.sparkContext._jvm
    uri = jvm.java.net.URI(to_spark_uri(root))
    fs = jvm.org.apache.hadoop.fs.FileSystem.get(uri, spark.sparkContext._jsc.hadoopConfiguration())
    try:
        counters = fs.getIOStatistics().counters()
    except Exception:  # not an S3AFileSystem, or statistics unavailable: nothing to count
        return {}
    return {f"s3a:{k}": int(counters.get(k)) for k in ("store_io_retry", "store_io_throttled")
            if counters.get(k) is not None}


# ------------------------------------------------------------------ S3 settings
# S3Settings field → the name each client gives it
_FSSPEC_KEYS = (("endpoint", "endpoint_url"), ("access_key", "key"), ("secret_key", "secret"),
                ("session_token", "token"))
_ENV_KEYS = (("endpoint", "AWS_ENDPOINT_URL"), ("access_key", "AWS_ACCESS_KEY_ID"),
             ("secret_key", "AWS_SECRET_ACCESS_KEY"), ("session_token", "AWS_SESSION_TOKEN"),
             ("region", "AWS_REGION"))


@dataclass(frozen=True)
class S3Settings:
    """Endpoint and credentials of an S3 API (AWS itself when ``endpoint`` is empty)."""

    endpoint: str = ""  # e.g. http://127.0.0.1:9000 for a local S3 server
    access_key: str = ""
    secret_key: str = field(default="", repr=False)  # never in a repr, a log line or a traceback
    session_token: str = field(default="", repr=False)
    region: str = ""
    path_style: bool = False

    @property
    def allow_http(self) -> bool:
        return self.endpoint.startswith("http://")

    def _named(self, keys: tuple[tuple[str, str], ...]) -> dict[str, str]:
        """The set fields under another system's names; the secret only beside an access key."""
        return {name: getattr(self, f) for f, name in keys
                if getattr(self, f) and (f != "secret_key" or self.access_key)}

    def fsspec_options(self) -> dict[str, Any]:
        """Keyword options for ``s3fs.S3FileSystem``."""
        opts: dict[str, Any] = dict(self._named(_FSSPEC_KEYS))
        retry = RetryPolicy.from_env()
        if self.region:
            opts["client_kwargs"] = {"region_name": self.region}
        opts["config_kwargs"] = retry.fsspec_config()
        if self.path_style:
            opts["config_kwargs"]["s3"] = {"addressing_style": "path"}
        return opts

    def delta_rs_options(self) -> dict[str, str]:
        """``storage_options`` for delta-rs (``deltalake``), Polars ``scan_delta`` and DuckDB readers:
        the ``AWS_*`` variables of :meth:`environment` plus delta-rs's own switches."""
        opts = {k: v for k, v in self.environment().items() if k.startswith("AWS_")}
        if self.allow_http:
            opts["AWS_ALLOW_HTTP"] = "true"
        opts["AWS_REGION"] = self.region or "us-east-1"
        if self.path_style or self.endpoint:
            opts["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
        # a single writer per table in this project's jobs; delta-rs needs this on plain S3
        opts["AWS_S3_ALLOW_UNSAFE_RENAME"] = "true"
        opts.update(RetryPolicy.from_env().delta_rs_options())
        return opts

    def spark_conf(self) -> dict[str, str]:
        """``spark.hadoop.fs.s3a.*`` settings for the same endpoint and credentials."""
        conf: dict[str, str] = {}
        pre = "spark.hadoop.fs.s3a."
        if self.endpoint:
            conf[pre + "endpoint"] = self.endpoint
            conf[pre + "connection.ssl.enabled"] = "false" if self.allow_http else "true"
        if self.path_style or self.endpoint:
            conf[pre + "path.style.access"] = "true"
        if self.access_key:
            conf[pre + "access.key"] = self.access_key
            conf[pre + "secret.key"] = self.secret_key
            provider = "SimpleAWSCredentialsProvider"
            if self.session_token:
                conf[pre + "session.token"] = self.session_token
                provider = "TemporaryAWSCredentialsProvider"
            conf[pre + "aws.credentials.provider"] = f"org.apache.hadoop.fs.s3a.{provider}"
        if self.region:
            conf[pre + "endpoint.region"] = self.region
        conf.update(RetryPolicy.from_env().s3a_conf())
        return conf

    def environment(self) -> dict[str, str]:
        """The ``AWS_*`` environment that makes boto/s3fs/delta-rs in a child process agree."""
        env = self._named(_ENV_KEYS)
        if self.path_style:
            env["CATALOG2VEC_S3_PATH_STYLE"] = "true"
        return env


_SPARK_KEYS = {
    "endpoint": "endpoint",
    "access.key": "access_key",
    "secret.key": "secret_key",
    "session.token": "session_token",
    "endpoint.region": "region",
}

_configured: S3Settings | None = None


def s3_settings(spark_conf: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None) -> S3Settings:
    """Merge S3 endpoint/credentials: ``spark.hadoop.fs.s3a.*`` (if given) over the ``AWS_*``
    environment over what :func:`configure` last installed in this process."""
    env = os.environ if env is None else env
    base = _configured or S3Settings()
    values: dict[str, Any] = {
        "endpoint": env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or base.endpoint,
        "access_key": env.get("AWS_ACCESS_KEY_ID") or base.access_key,
        "secret_key": env.get("AWS_SECRET_ACCESS_KEY") or base.secret_key,
        "session_token": env.get("AWS_SESSION_TOKEN") or base.session_token,
        "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or base.region,
        "path_style": env.get("CATALOG2VEC_S3_PATH_STYLE", "").lower() in ("1", "true") or base.path_style,
    }
    for key, value in (spark_conf or {}).items():
        for prefix in ("spark.hadoop.fs.s3a.", "fs.s3a."):
            if key.startswith(prefix):
                short = key[len(prefix):]
                if short in _SPARK_KEYS and value:
                    values[_SPARK_KEYS[short]] = value
                elif short == "path.style.access":
                    values["path_style"] = str(value).lower() == "true"
    return S3Settings(**values)


def configure(settings: S3Settings | None) -> None:
    """Install process-wide S3 settings (e.g. derived once from the Spark configuration, or shipped
    to a TorchDistributor worker); ``None`` resets. Clears the cached filesystems."""
    global _configured
    _configured = settings
    _fs_cache.clear()


def configure_from_spark(spark: SparkSession) -> S3Settings:
    """Derive the settings from a running session's ``fs.s3a.*`` conf (plus environment) and
    install them, so artifact writes use the same endpoint as the session's Delta writes."""
    conf = dict(spark.sparkContext.getConf().getAll())
    hconf = spark.sparkContext._jsc.hadoopConfiguration()
    for short in (*_SPARK_KEYS, "path.style.access"):
        value = hconf.get("fs.s3a." + short)
        if value:
            conf["fs.s3a." + short] = str(value)
    settings = s3_settings(conf)
    configure(settings)
    return settings


def apply_to_spark(spark: SparkSession, settings: S3Settings | None = None) -> None:
    """Set ``fs.s3a.*`` on a running session's Hadoop configuration (for sessions started before
    the endpoint was known, e.g. a test session)."""
    settings = settings or s3_settings()
    hconf = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in settings.spark_conf().items():
        hconf.set(key.removeprefix("spark.hadoop."), value)


# ------------------------------------------------------------------ filesystems
_fs_cache: dict[tuple[str, str], AbstractFileSystem] = {}


def filesystem(path: str | os.PathLike[str]) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem for ``path`` and the path in that filesystem's terms."""
    import fsspec

    p = to_object_uri(path)
    sch = scheme(p) or "file"
    opts: dict[str, Any] = {}
    if sch == "s3":
        opts = s3_settings().fsspec_options()
    cache_key = (sch, json.dumps(opts, sort_keys=True))
    fs = _fs_cache.get(cache_key)
    if fs is None:
        try:
            fs = fsspec.filesystem(sch, **opts, **({"session": _counting_session()} if sch == "s3" else {}))
        except (ImportError, ValueError) as exc:
            raise StorageError(f"cannot open {p!r}: no filesystem for scheme {sch!r} ({exc})") from exc
        _fs_cache[cache_key] = fs
    return fs, (p if sch == "file" else fs._strip_protocol(p))


def exists(path: str | os.PathLike[str]) -> bool:
    fs, p = filesystem(path)
    return bool(fs.exists(p))


def isdir(path: str | os.PathLike[str]) -> bool:
    fs, p = filesystem(path)
    return bool(fs.isdir(p))


def isfile(path: str | os.PathLike[str]) -> bool:
    fs, p = filesystem(path)
    return bool(fs.isfile(p))


def _rebuild(path: str | os.PathLike[str], found: str) -> str:
    """A path returned by fsspec, in the caller's scheme (``s3a://`` stays ``s3a://``)."""
    base = normalize(path)
    if is_local(base):
        return found
    return f"{scheme(base)}://{found.split('://', 1)[-1].lstrip('/')}"


def listdir(path: str | os.PathLike[str]) -> list[str]:
    """Names (not paths) directly under ``path``, sorted; ``[]`` if it does not exist."""
    fs, p = filesystem(path)
    try:
        entries = fs.ls(p, detail=False)
    except FileNotFoundError:
        return []
    names = {posixpath.basename(str(e).rstrip("/")) for e in entries}
    names.discard("")
    return sorted(names)


def list_files(path: str | os.PathLike[str]) -> list[str]:
    """Every file below ``path`` (recursive), as full paths in the caller's scheme, sorted."""
    fs, p = filesystem(path)
    if not fs.exists(p):
        return []
    return sorted(_rebuild(path, str(f)) for f in fs.find(p))


def makedirs(path: str | os.PathLike[str]) -> None:
    """Create a local directory (object stores have none: a no-op there)."""
    if is_local(path):
        os.makedirs(normalize(path), exist_ok=True)


def remove(path: str | os.PathLike[str], recursive: bool = False) -> None:
    """Delete a file (or a whole tree with ``recursive``); missing is fine."""
    fs, p = filesystem(path)
    with contextlib.suppress(FileNotFoundError):
        if fs.exists(p):
            fs.rm(p, recursive=recursive)


def size(path: str | os.PathLike[str]) -> int:
    fs, p = filesystem(path)
    return int(fs.size(p))


def modified(path: str | os.PathLike[str]) -> float:
    """Last-modified time (epoch seconds) of a file."""
    fs, p = filesystem(path)
    ts = fs.modified(p)
    return float(ts.timestamp())


# ------------------------------------------------------------------ read / write
def read_bytes(path: str | os.PathLike[str]) -> bytes:
    fs, p = filesystem(path)
    try:
        return bytes(fs.cat_file(p))
    except IsADirectoryError as exc:
        raise IsADirectoryError(f"{path} is a directory") from exc


def read_text(path: str | os.PathLike[str]) -> str:
    return read_bytes(path).decode("utf-8")


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(read_bytes(path))


@contextlib.contextmanager
def _atomic_local(target: str) -> Iterator[str]:
    """A temporary file beside local ``target`` that replaces it when the block ends cleanly
    (readers never see a partial file; on error it is removed)."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=f".{os.path.basename(target)}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> str:
    """Write one object/file atomically (local: temp file + rename; object store: one PUT)."""
    target = normalize(path)
    if is_local(target):
        with _atomic_local(target) as tmp, open(tmp, "wb") as fh:
            fh.write(data)
        return target
    fs, p = filesystem(target)
    fs.pipe_file(p, data)
    return target


def write_text(path: str | os.PathLike[str], text: str) -> str:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> str:
    return write_bytes(path, json.dumps(obj, indent=indent, sort_keys=True, default=str).encode("utf-8"))


@contextlib.contextmanager
def open_file(path: str | os.PathLike[str], mode: str = "rb") -> Iterator[IO[Any]]:
    """A file object for streaming reads (``rb``/``r``) or a whole-object write (``wb``/``w``,
    published atomically on close, discarded if the block raises)."""
    if "r" in mode:
        fs, p = filesystem(path)
        with fs.open(p, mode) as fh:
            yield fh
        return
    with tempfile.SpooledTemporaryFile(max_size=64 << 20, mode="w+b") as buf:
        if "b" in mode:
            yield buf  # type: ignore[misc]
        else:
            text = io.TextIOWrapper(buf, encoding="utf-8", write_through=True)
            yield text
            text.flush()
            text.detach()
        buf.seek(0)
        write_bytes(path, buf.read())


def put_file(local_path: str | os.PathLike[str], path: str | os.PathLike[str]) -> str:
    """Copy a local file to ``path`` (atomically)."""
    target = normalize(path)
    if is_local(target):
        with _atomic_local(target) as tmp:
            shutil.copyfile(os.fspath(local_path), tmp)
        return target
    fs, p = filesystem(target)
    fs.put_file(os.fspath(local_path), p)
    return target


def get_file(path: str | os.PathLike[str], local_path: str | os.PathLike[str]) -> str:
    """Copy ``path`` to a local file."""
    fs, p = filesystem(path)
    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(local_path))), exist_ok=True)
    fs.get_file(p, os.fspath(local_path))
    return os.fspath(local_path)


@contextlib.contextmanager
def local_copy(path: str | os.PathLike[str]) -> Iterator[str]:
    """A local file path holding ``path``'s content (the file itself when local), for libraries
    that only open local files (faiss)."""
    if is_local(path):
        yield normalize(path)
        return
    with tempfile.TemporaryDirectory(prefix="c2v-") as tmp:
        yield get_file(path, os.path.join(tmp, basename(path)))


def upload_dir(local_dir: str | os.PathLike[str], path: str | os.PathLike[str]) -> list[str]:
    """Copy every file of a local directory tree under ``path``; returns the written paths."""
    written = []
    root = os.fspath(local_dir)
    for dirpath, _dirs, files in os.walk(root):
        for name in sorted(files):
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
            written.append(put_file(os.path.join(dirpath, name), join(path, rel)))
    return written


# ------------------------------------------------------------------ publish
def publish(
    marker: str | os.PathLike[str],
    marker_content: bytes | str | Mapping[str, Any],
    payload: Mapping[str, bytes | str] | None = None,
) -> str:
    """Publish an artifact: every ``payload`` object (path → content) first, the ``marker`` last.

    A reader that trusts only artifacts whose marker exists never sees a half-published one,
    on local disk and on object stores alike (each single write is atomic, the order is the
    guarantee). Returns the marker path.
    """
    for path, content in (payload or {}).items():
        write_bytes(path, content.encode("utf-8") if isinstance(content, str) else content)
    if isinstance(marker_content, Mapping):
        return write_json(marker, dict(marker_content))
    if isinstance(marker_content, str):
        return write_text(marker, marker_content)
    return write_bytes(marker, marker_content)


def check_writable(root: str | os.PathLike[str], probe_dir: str | os.PathLike[str] | None = None) -> None:
    """Fail fast (:class:`StorageError`) when ``root`` cannot hold a lakehouse: a file, a read-only
    directory, or an unreachable bucket (on object stores an empty probe object is written and removed
    under ``probe_dir``, default ``root``; the jobs pass :func:`catalog2vec.layout.runs_dir`)."""
    r = normalize(root)
    if is_local(r):
        if os.path.exists(r) and not os.path.isdir(r):
            raise StorageError(f"lakehouse {r} is a file, not a directory")
        probe_dir = r
        while not os.path.exists(probe_dir):
            probe_dir = os.path.dirname(probe_dir)
        if not os.access(probe_dir, os.W_OK | os.X_OK):
            raise StorageError(f"lakehouse {r} is not writable ({probe_dir} is read-only)")
        return
    probe = join(probe_dir or r, f".write-probe-{os.getpid()}")
    try:
        write_bytes(probe, b"")
        remove(probe)
    except Exception as exc:
        raise StorageError(f"lakehouse {r} is not writable: {exc}") from exc


__all__ = [
    "S3Settings",
    "StorageError",
    "apply_to_spark",
    "basename",
    "check_writable",
    "configure",
    "configure_from_spark",
    "exists",
    "filesystem",
    "get_file",
    "is_local",
    "isdir",
    "isfile",
    "join",
    "list_files",
    "listdir",
    "local_copy",
    "makedirs",
    "modified",
    "normalize",
    "open_file",
    "parent",
    "publish",
    "put_file",
    "read_bytes",
    "read_json",
    "read_text",
    "remove",
    "s3_settings",
    "scheme",
    "size",
    "to_object_uri",
    "to_spark_uri",
    "upload_dir",
    "write_bytes",
    "write_json",
    "write_text",
]
