"""A fault-injecting TCP proxy for object-store tests: every S3 client (s3fs/botocore, delta-rs,
Spark's S3A) is pointed at ``127.0.0.1:<proxy port>``, which forwards to the real local S3 server
until the test switches it to an outage:

* ``pass``    — bytes forwarded both ways;
* ``refuse``  — the listening socket is closed: new connections get *connection refused*;
* ``reset``   — connections are accepted and closed at once (RST): *connection reset*;
* ``hang``    — connections are accepted and never answered (clients hit their read timeout);
* ``slowdown``— every request is answered ``503 SlowDown`` (S3's throttling error) and closed.

Existing connections are cut when the mode changes, as a real outage would. :meth:`outage` runs
a mode for N seconds in the background and then goes back to ``pass``. Every accepted connection
and every connection refused/failed by an outage is counted (``stats``), so a test can show the
fault was actually seen.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

MODES = ("pass", "refuse", "reset", "hang", "slowdown")
SLOWDOWN = (
    b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nConnection: close\r\nContent-Length: 159\r\n\r\n"
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.'
    b"</Message><RequestId>fault</RequestId></Error>"
)


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of ``upstream`` (``host:port``), run on its own event loop."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.mode = "pass"
        self.stats: Counter[str] = Counter()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        self._call(self._listen())

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _unlisten(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _cut(self) -> None:
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    async def _set(self, mode: str) -> None:
        await self._cut()
        if mode == "refuse":
            await self._unlisten()
        else:
            await self._listen()
        self.mode = mode

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self._call(self._set(mode))

    @contextmanager
    def down(self, mode: str) -> Iterator[None]:
        """The outage ``mode`` for the duration of the ``with`` block."""
        self.set_mode(mode)
        try:
            yield
        finally:
            self.set_mode("pass")

    def outage(self, mode: str, seconds: float, after: float = 0.0) -> threading.Thread:
        """Start ``mode`` after ``after`` seconds, hold it for ``seconds``, then ``pass`` again (in the
        background; join the returned thread to wait for the end)."""

        def run() -> None:
            time.sleep(after)
            self.set_mode(mode)
            self.stats[f"outage:{mode}"] += 1
            time.sleep(seconds)
            self.set_mode("pass")

        t = threading.Thread(target=run, name=f"outage-{mode}", daemon=True)
        t.start()
        return t

    def outage_when(self, ready: Callable[[], bool], mode: str, seconds: float, poll: float = 0.2,
                    give_up: float = 900.0) -> threading.Thread:
        """Like :meth:`outage`, started the moment ``ready()`` is true (e.g. the job's first output
        object exists: the outage then lands in the middle of its writes). ``ready`` must not talk
        through the proxy. Gives up (no outage; ``stats['outage:missed']``) after ``give_up`` s or
        once :meth:`cancel` is called."""
        self._cancel.clear()

        def run() -> None:
            end = time.monotonic() + give_up
            while not ready():
                if self._cancel.is_set() or time.monotonic() > end:
                    self.stats["outage:missed"] += 1
                    return
                time.sleep(poll)
            self.set_mode(mode)
            self.stats[f"outage:{mode}"] += 1
            time.sleep(seconds)
            self.set_mode("pass")

        t = threading.Thread(target=run, name=f"outage-{mode}", daemon=True)
        t.start()
        return t

    def cancel(self) -> None:
        """Stop a pending :meth:`outage_when` that has not started."""
        self._cancel.set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mode = self.mode
        self.stats[f"conn:{mode}"] += 1
        if mode == "reset":
            writer.transport.abort()
            return
        if mode == "slowdown":
            try:
                await asyncio.wait_for(reader.read(65536), timeout=2)
                writer.write(SLOWDOWN)
                await writer.drain()
            finally:
                writer.close()
            return
        self._writers.add(writer)
        if mode == "hang":
            return  # accepted, never answered; cut when the mode changes
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.transport.abort() if self.mode != "pass" else dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)

    def close(self) -> None:
        self._call(self._unlisten())
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


@contextmanager
def fault_proxy(endpoint: str) -> Iterator[FaultProxy]:
    """A :class:`FaultProxy` in front of the S3 server at ``endpoint`` (``http://host:port``)."""
    host, port = endpoint.removeprefix("http://").rstrip("/").split(":")
    proxy = FaultProxy(host, int(port))
    try:
        yield proxy
    finally:
        proxy.close()
