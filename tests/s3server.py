"""A real S3 API server on 127.0.0.1 for object-store tests: moto's server mode (``ThreadedMotoServer``,
a werkzeug HTTP server speaking the S3 REST protocol; nothing is mocked in the client libraries:
boto, s3fs, delta-rs and Spark's S3A connector all talk HTTP to it)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from catalog2vec.storage import S3Settings

ACCESS_KEY = "catalog2vec-test"
SECRET_KEY = "catalog2vec-test-secret"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    @property
    def settings(self) -> S3Settings:
        return S3Settings(endpoint=self.endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=REGION,
                          path_style=True)

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION)

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        out: list[str] = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return sorted(out)


@contextmanager
def running_s3_server() -> Iterator[S3Server]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per S3 request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()
