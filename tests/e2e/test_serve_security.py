"""The neighbour browser attacked as a crawled row or a web page would: a real ``catalog2vec serve``
on 127.0.0.1 over a small real lakehouse (tests/e2e/_browser_lakehouse.py) whose bronze rows name
``local:///etc/passwd``, ``file:///etc/passwd``, a plain path, a loopback HTTP service (a real server
started here, which must see no request), ``memory://``, chained ``a::b`` URIs; requests with a foreign
Host, cross-site POSTs, a 16 MP upload while ``/healthz`` is polled, a pixel bomb, 60 MB bodies with
and without Content-Length; an item id holding ``/ ? # %``; a title holding terminal escapes.
"""

from __future__ import annotations

import http.client
import http.server
import io
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import pytest

from tests.conftest import EXAMPLES, REPO
from tests.e2e import _browser_lakehouse as fixture

pytestmark = [pytest.mark.slow]

WEIRD_ID = "a/b?c#d%e é"  # every character a URL gives a meaning to, and a non-ASCII one
WEIRD_TITLE = "Slashy Weird Thing"
ESC_TITLE = "Evil \x1b]0;pwned\x07\x1b[2J\x9bTitle"  # OSC title set, BEL, clear screen, C1 CSI


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        body = b"loopback-only secret"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _hostile_rows(secret_url: str, marker_file: Path) -> dict[str, str]:
    return {
        "h-local": "local:///etc/passwd",
        "h-file": "file:///etc/passwd",
        "h-path": "/etc/passwd",
        "h-marker": str(marker_file),
        "h-local-marker": f"local://{marker_file}",
        "h-http": secret_url,
        "h-memory": "memory://x",
        "h-chain": "a::b",
        "h-chain-file": "simplecache::file:///etc/passwd",
    }


def _extend_lakehouse(root: Path, hostile: dict[str, str], esc_item: str) -> None:
    """Bronze gains the hostile rows and the weird id, ``esc_item``'s title gets terminal escapes;
    silver gains the weird id's picture (a normalised sample image)."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from catalog2vec.lakehouse import read_arrow, table_path
    from catalog2vec.schemas import bronze, silver

    rows = read_arrow(root, bronze.CATALOG_ITEMS).to_pylist()
    template = dict(rows[0])
    for r in rows:
        if r["item_id"] == esc_item:
            r["title"] = ESC_TITLE
    for item_id, uri in [*hostile.items(), (WEIRD_ID, template["image_uri"])]:
        rows.append({**template, "item_id": item_id, "image_uri": uri,
                     "title": WEIRD_TITLE if item_id == WEIRD_ID else f"hostile {item_id}"})
    schema = bronze.CATALOG_ITEMS.arrow_schema()
    write_deltalake(table_path(root, bronze.CATALOG_ITEMS), pa.Table.from_pylist(rows, schema=schema), mode="overwrite")
    images = read_arrow(root, silver.IMAGES).to_pylist()
    write_deltalake(table_path(root, silver.IMAGES),
                    pa.Table.from_pylist([{**images[0], "item_id": WEIRD_ID}], schema=silver.IMAGES.arrow_schema()),
                    mode="append")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base_dir = tmp_path_factory.mktemp("serve-security")
    root = base_dir / "lakehouse"
    root.mkdir()
    info = fixture.build(root, EXAMPLES, limit=16)
    marker = base_dir / "marker.txt"
    marker.write_text("MARKER-7f3a private file content\n")

    _Recorder.seen = []
    secret = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=secret.serve_forever, daemon=True).start()
    hostile = _hostile_rows(f"http://127.0.0.1:{secret.server_address[1]}/secret", marker)
    esc_item = info["ids"][1]
    _extend_lakehouse(root, hostile, esc_item)

    port = _free_port()
    log_path = base_dir / "serve.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "catalog2vec.cli", "serve", "--lakehouse", str(root), "--port", str(port), "-k", "5"],
        stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise AssertionError(f"catalog2vec serve did not start:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield {"root": root, "base": base, "port": port, "hostile": hostile, "marker": marker,
               "esc_item": esc_item, "proc": proc, **info}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        secret.shutdown()
        secret.server_close()


def _request(port: int, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def _multipart(data: bytes, filename: str = "q.jpg", k: int = 3) -> tuple[bytes, str]:
    boundary = "----catalog2vec-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\n{k}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{filename}\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _post_image(port: int, data: bytes, headers: dict[str, str] | None = None,
                timeout: float = 120) -> tuple[int, dict[str, str], bytes]:
    body, ctype = _multipart(data)
    return _request(port, "POST", "/query", body, {"Content-Type": ctype, **(headers or {})}, timeout)


def test_image_route_never_reads_a_uri_a_crawled_row_names(served: dict[str, Any]) -> None:
    from catalog2vec.retrieval.store import item_images

    port, passwd = served["port"], Path("/etc/passwd").read_bytes()[:40]
    for item_id in served["hostile"]:
        status, _, body = _request(port, "GET", f"/image/{quote(item_id, safe='')}")
        assert status == 404, (item_id, status, body[:200])
        assert b"MARKER-7f3a" not in body and b"loopback-only" not in body and passwd not in body
        # the item page itself renders (the row exists), pointing at the same refused picture
        status, _, page = _request(port, "GET", f"/item/{quote(item_id, safe='')}")
        assert status == 200 and f"hostile {item_id}".encode() in page
        assert b"MARKER-7f3a" not in page and passwd not in page
    # the library call behind the page and `catalog2vec similar --grid` reads silver.images only
    assert item_images(served["root"], list(served["hostile"])) == {}
    assert _Recorder.seen == []  # the loopback service never saw a request


def test_foreign_host_is_400_and_own_names_are_served(served: dict[str, Any]) -> None:
    port = served["port"]
    for host in ("attacker.example", f"attacker.example:{port}", "127.0.0.1.attacker.example"):
        status, headers, body = _request(port, "GET", "/healthz", headers={"Host": host})
        assert status == 400 and b"Invalid host header" in body, host
        assert headers["x-content-type-options"] == "nosniff"  # the refusal carries the headers too
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        assert _request(port, "GET", "/healthz", headers={"Host": host})[0] == 200, host


def test_cross_site_posts_are_403_same_origin_post_is_served(served: dict[str, Any]) -> None:
    port = served["port"]
    jpeg = (EXAMPLES / "images" / f"{served['ids'][0]}.jpg").read_bytes()
    for extra in ({"Origin": "http://attacker.example"}, {"Origin": "null"},
                  {"Origin": f"http://localhost:{port + 1}"},  # another local service: same site, not same origin
                  {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                  {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "cross-site"}):
        status, _, body = _post_image(port, jpeg, extra)
        assert status == 403 and b"cross-site request refused" in body, (extra, status, body[:200])
    status, _, body = _post_image(port, jpeg, {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"})
    assert status == 200 and f'data-item-id="{served["ids"][0]}" data-score="1.0000"'.encode() in body
    assert _post_image(port, jpeg)[0] == 200  # no Origin, no Sec-Fetch-Site: not a browser's cross-site post


def test_security_headers_and_no_openapi(served: dict[str, Any]) -> None:
    port = served["port"]
    item = served["ids"][0]
    for path in ("/", f"/item/{item}", f"/image/{item}", "/image/h-local", "/item/nope", "/healthz"):
        status, h, _ = _request(port, "GET", path)
        assert status in (200, 404), path
        csp = h["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp and "script-src" not in csp, csp
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY", path
        assert h["referrer-policy"] == "same-origin" and h["cross-origin-resource-policy"] == "same-origin", path
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert _request(port, "GET", path)[0] == 404, path


def test_item_id_with_reserved_characters_is_browsable(served: dict[str, Any]) -> None:
    import re

    port, encoded = served["port"], quote(WEIRD_ID, safe="")
    assert encoded == "a%2Fb%3Fc%23d%25e%20%C3%A9"
    status, _, page = _request(port, "GET", "/?q=slashy")
    assert status == 200
    links = set(re.findall(r'href="(/item/[^"]+)"', page.decode()))
    assert links == {f"/item/{encoded}"}, links
    assert f'src="/image/{encoded}"'.encode() in page
    status, _, page = _request(port, "GET", f"/item/{encoded}")
    assert status == 200 and f"{WEIRD_ID}: {WEIRD_TITLE}".encode() in page
    status, h, img = _request(port, "GET", f"/image/{encoded}")
    assert status == 200 and h["content-type"] == "image/jpeg" and img[:3] == b"\xff\xd8\xff"
    status, h, _ = _request(port, "GET", f"/?q={quote(WEIRD_ID)}")
    assert status == 303 and h["location"] == f"/item/{encoded}"
    assert _request(port, "GET", f"/api/item/{encoded}")[0] == 200


def _big_jpeg(side: int = 4000) -> bytes:
    from PIL import Image

    img = Image.open(EXAMPLES / "images" / "10039.jpg").convert("RGB").resize((side, side), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def test_16mp_upload_does_not_stall_healthz(served: dict[str, Any]) -> None:
    port = served["port"]
    data = _big_jpeg()
    result: dict[str, Any] = {}

    def upload() -> None:
        t0 = time.perf_counter()
        result["status"], _, result["body"] = _post_image(port, data)
        result["seconds"] = time.perf_counter() - t0

    thread = threading.Thread(target=upload)
    latencies: list[float] = []
    thread.start()
    while thread.is_alive():
        t0 = time.perf_counter()
        status, _, _ = _request(port, "GET", "/healthz", timeout=10)
        latencies.append(time.perf_counter() - t0)
        assert status == 200
        time.sleep(0.05)
    thread.join()
    assert result["status"] == 200, result["body"][:300]
    assert b'id="query-title"' in result["body"]
    print(f"16 MP upload ({len(data) / 1e6:.1f} MB) answered in {result['seconds']:.2f} s; {len(latencies)} "
          f"/healthz polls meanwhile, slowest {max(latencies):.3f} s")
    assert len(latencies) >= 2, (result["seconds"], latencies)
    assert max(latencies) < 0.5, [round(t, 3) for t in latencies]


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height RGB pixels but holds almost no data (a pixel bomb)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
            + chunk(b"IEND", b""))


def test_pixel_bomb_is_refused_from_the_header(served: dict[str, Any]) -> None:
    port = served["port"]
    for w, h in ((8000, 6000), (60000, 60000)):  # 48 MP > images.max_pixels (40 MP); 3.6 GP > Pillow's own
        t0 = time.perf_counter()
        status, _, body = _post_image(port, _png_header_only(w, h))
        assert status == 400 and b"decompression_bomb" in body, (w, h, status, body[:300])
        assert time.perf_counter() - t0 < 5  # refused from the header, nothing decoded
    assert _request(port, "GET", "/healthz")[0] == 200


def _read_status(sock: socket.socket, timeout: float = 30) -> int:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        part = sock.recv(65536)
        if not part:
            break
        data += part
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else -1


def test_60mb_body_is_refused_before_it_is_read(served: dict[str, Any]) -> None:
    port, total = served["port"], 60_000_000
    head = (f"POST /query HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\n")
    chunk = b"\0" * (1 << 20)

    # declared 60 MB: refused on the Content-Length, before the body is read (1 MB of it is sent)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        t0 = time.perf_counter()
        sock.sendall(f"{head}Content-Length: {total}\r\n\r\n".encode() + chunk)
        assert _read_status(sock) == 413
        assert time.perf_counter() - t0 < 5

    # chunked, no Content-Length: cut off once the limit has arrived; the client never gets to send it all
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        part = b'--x\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
        sock.sendall(f"{head}Transfer-Encoding: chunked\r\n\r\n{len(part):x}\r\n".encode() + part + b"\r\n")
        try:
            while sent < total:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert _read_status(sock) == 413
    print(f"chunked upload: the 413 came after {sent / 2**20:.0f} MiB of 57 MiB were sent")
    assert sent < total
    assert _request(port, "GET", "/healthz")[0] == 200  # and the server is still up


def test_similar_escapes_control_characters_of_titles(served: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from catalog2vec.cli import main

    assert main(["similar", "--lakehouse", str(served["root"]), "--item-id", served["esc_item"], "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in "\x1b\x07\x9b"), repr(out)
    assert "Evil \\x1b]0;pwned\\x07\\x1b[2J\\x9bTitle" in out.splitlines()[0]
