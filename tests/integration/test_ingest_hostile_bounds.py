"""Issue 29 on real Spark + Delta: what one crawled row can make ingest do.

One JSON-lines feed holds a 1,000-deep line, image URIs off the allow-list (``local://``,
``file://``, ``memory://``, an ``a::b`` chain, ``http://`` to a live server on 127.0.0.1), an
oversized record and control characters. ``ingest_catalog`` exits 0, quarantines each with its
reason (the URI in ``detail``) and its counts add up. Then bronze rows naming such URIs (as an
older ingest let in) go through ``ingest_images``: every one refused before anything is opened —
the HTTP server sees no request and the readable image behind ``local://``/``file://`` is never
written. An input file over ``ingest.max_file_bytes`` is one user error (exit 2) naming the file."""

from __future__ import annotations

import http.server
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import ingest_catalog
import ingest_images
import pytest

from catalog2vec.lakehouse import read_pandas, read_table, table_path
from catalog2vec.schemas import bronze, silver

pytestmark = pytest.mark.spark


def _jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, format="JPEG")
    return buf.getvalue()


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        body = _jpeg()
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1 that serves a JPEG at any path and records every request."""
    seen: ClassVar[list[str]] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_hostile_feed_is_quarantined_and_nothing_is_fetched(
    spark: Any, lakehouse: Path, tmp_path: Path, http_server: tuple[str, list[str]], capsys: Any
) -> None:
    base, seen = http_server
    feed = tmp_path / "in"
    (feed / "images").mkdir(parents=True)
    (feed / "images" / "ok.jpg").write_bytes(_jpeg())
    secret = tmp_path / "secret" / "s.jpg"  # a readable image outside the input: must never be read
    secret.parent.mkdir()
    secret.write_bytes(_jpeg())
    deep = '{"item_id": "deep", "title": "Red shirt", "n": ' + "[" * 999 + "]" * 999 + "}"
    rows: list[tuple[str, str]] = [
        (json.dumps({"item_id": "ok1", "title": "Red \x1b[31mcotton\x07 shirt\x9b", "image_uri": "images/ok.jpg"}), "ok"),
        (json.dumps({"item_id": "ok2", "title": "Blue\r\nlinen\tdress", "description": "plain"}), "ok"),
        (deep, "malformed_record"),
        (json.dumps({"item_id": "loc", "title": "Red shirt", "image_uri": "local:///etc/passwd"}), "image_path_invalid"),
        (json.dumps({"item_id": "fil", "title": "Red shirt", "image_uri": f"file://{secret}"}), "image_path_invalid"),
        (json.dumps({"item_id": "mem", "title": "Red shirt", "image_uri": "memory://x"}), "image_path_invalid"),
        (json.dumps({"item_id": "chn", "title": "Red shirt", "image_uri": "a::b"}), "image_path_invalid"),
        (json.dumps({"item_id": "web", "title": "Red shirt", "image_uri": f"{base}/secret.jpg"}), "image_path_invalid"),
        (json.dumps({"item_id": "big", "title": "Red shirt", "blob": "x" * 5000}), "record_too_large"),
        (json.dumps({"item_id": "ctl", "title": "\x1b\x07", "description": "\x00\x1b\x9b"}), "no_text"),
    ]
    path = feed / "feed.jsonl"
    path.write_text("\n".join(line for line, _ in rows) + "\n")
    rc = ingest_catalog.main(["--lakehouse", str(lakehouse), "--run-id", "r1", "--input", str(path),
                              "--format", "json", "--set", "ingest.max_record_chars=4000"])
    assert rc == 0
    want = {line: reason for line, reason in rows if reason != "ok"}  # raw line -> reason
    n_bad = len(want)
    assert f"read={len(rows)} written={len(rows) - n_bad} quarantined={n_bad} duplicates=0" in capsys.readouterr().out
    run = json.loads((lakehouse / "_runs" / "r1" / "ingest_catalog.json").read_text())
    counts = run["counts"]
    assert counts["read"] == counts["written"] + counts["quarantined"] + counts["duplicates"] == len(rows)
    assert run["reasons"] == {"image_path_invalid": 5, "malformed_record": 1, "no_text": 1, "record_too_large": 1}

    q = read_pandas(lakehouse, bronze.QUARANTINE)
    assert dict(zip(q.record, q.reason, strict=True)) == want  # each raw line kept whole, with its reason
    detail = dict(zip(q.record, q.detail, strict=True))
    for line, _ in rows[3:8]:
        uri = json.loads(line)["image_uri"]
        assert uri in detail[line], detail[line]  # the refused URI is in the detail
    assert "max_json_depth=64" in detail[deep] and "max_record_chars=4000" in detail[rows[8][0]]
    assert seen == []

    items = read_pandas(lakehouse, bronze.CATALOG_ITEMS).set_index("item_id")
    assert items.loc["ok1", "title"] == "Red [31mcotton shirt"  # ESC, BEL and CSI (C1) dropped
    assert items.loc["ok2", "title"] == "Blue\nlinen\tdress"  # tab and newline stay, CR LF is LF
    assert items.loc["ok1", "image_uri"] == str(feed / "images" / "ok.jpg")

    # ---- bronze rows naming refused URIs (an older ingest let them in): ingest_images opens none
    hostile = {"ok2": f"local://{secret}", "loc": f"file://{secret}", "fil": "memory://x/a.jpg",
               "mem": f"simplecache::file://{secret}", "web": f"{base}/secret.jpg"}
    from delta.tables import DeltaTable

    ok1 = read_table(spark, lakehouse, bronze.CATALOG_ITEMS).where("item_id = 'ok1'").drop("item_id", "image_uri")
    rows_in = spark.createDataFrame(list(hostile.items()), "item_id string, image_uri string").crossJoin(ok1)
    (DeltaTable.forPath(spark, table_path(str(lakehouse), bronze.CATALOG_ITEMS)).alias("t")
     .merge(rows_in.select(*bronze.CATALOG_ITEMS.column_names).alias("s"), "t.item_id = s.item_id")
     .whenMatchedUpdate(set={"image_uri": "s.image_uri"}).whenNotMatchedInsertAll().execute())
    assert ingest_images.main(["--lakehouse", str(lakehouse), "--run-id", "r2"]) == 0
    img_run = json.loads((lakehouse / "_runs" / "r2" / "ingest_images.json").read_text())
    ic = img_run["counts"]
    assert ic == {"items": 6, "written": 1, "unchanged": 0, "quarantined": 5}
    qi = read_pandas(lakehouse, bronze.QUARANTINE)
    qi = qi[qi.job == "ingest_images"]
    assert dict(zip(qi.item_id, qi.reason, strict=True)) == dict.fromkeys(hostile, "image_path_invalid")
    assert all(hostile[i][:20] in d for i, d in zip(qi.item_id, qi.detail, strict=True))
    assert list(read_pandas(lakehouse, silver.IMAGES).item_id) == ["ok1"]  # the secret image was never read
    assert seen == []  # nothing was requested from the server on 127.0.0.1


def test_input_file_over_the_byte_cap_is_one_user_error(lakehouse: Path, tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_text(json.dumps({"item_id": "1", "title": "Red shirt " * 20}) + "\n")
    rc = ingest_catalog.main(["--lakehouse", str(lakehouse), "--run-id", "r1", "--input", str(path),
                              "--format", "json", "--set", "ingest.max_file_bytes=100"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert any(str(path) in line and "ingest.max_file_bytes=100" in line for line in err), err
    assert not (lakehouse / "bronze").exists()  # nothing was read or written
