"""A mutual-TLS HTTP/1.1 server for ASGI applications that hands the client certificate over.

uvicorn does not pass the TLS peer certificate to the application, and hypercorn 0.18 does not
either (its scope carries no ``tls`` extension). IEEE 2030.5 identifies every client by its
certificate (IEEE 2030.5-2018 clause 6.3), so this module terminates TLS itself on ``asyncio`` and
``ssl``, parses HTTP/1.1 with ``h11`` (hypercorn's own parser) and calls the ASGI application with
the ASGI ``tls`` extension filled in (``scope["extensions"]["tls"]["client_cert_chain"]``, per the
ASGI TLS extension specification) plus the certificate's LFDI, computed once per connection.

Hardening: client certificates are required and must chain to the configured CA; request bodies
are capped (413 before reading more than the cap); header blocks are capped by h11; idle
keep-alive connections are closed after a timeout.

``serve`` runs one process or forks worker processes sharing the listening socket (the 2030.5
handlers are short database round trips, so several single-threaded workers use the cores best).
``ServerThread`` runs the server on a background thread for tests and embedding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

import h11

from gridflex.sep2.certs import TlsFiles
from gridflex.sep2.identity import lfdi_from_certificate

log = logging.getLogger("gridflex.sep2.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY_BYTES = 1_000_000
"""Largest request body accepted (bytes); larger requests get 413 without being read."""
MAX_HEADER_BYTES = 16_384
KEEPALIVE_TIMEOUT_S = 75.0
LINGER_TIMEOUT_S = 2.0
LINGER_MAX_BYTES = 16 * DEFAULT_MAX_BODY_BYTES
_READ_CHUNK = 65_536


def make_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """Server context: TLS 1.2+, client certificate required and verified against the CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(files.server_cert), str(files.server_key))
    ctx.load_verify_locations(cafile=str(files.ca_cert))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _simple_response(status: int, text: str) -> tuple[h11.Response, h11.Data]:
    body = text.encode()
    return (
        h11.Response(
            status_code=status,
            headers=[
                ("content-type", "text/plain; charset=utf-8"),
                ("content-length", str(len(body))),
                ("connection", "close"),
            ],
        ),
        h11.Data(data=body),
    )


class _Connection:
    """One TLS connection: a keep-alive loop of HTTP/1.1 requests handed to the ASGI app."""

    def __init__(
        self,
        app: ASGIApp,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        max_body_bytes: int,
        root_path: str,
    ) -> None:
        self.app = app
        self.reader = reader
        self.writer = writer
        self.max_body_bytes = max_body_bytes
        self.root_path = root_path
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        ssl_object = writer.get_extra_info("ssl_object")
        der: bytes | None = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        self.tls: dict[str, Any] = {
            "server_cert": None,
            "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
            "client_cert_name": None,
            "client_cert_error": None if der else "no client certificate",
            "tls_version": None,
            "cipher_suite": None,
            # gridflex addition: the DER bytes and LFDI, computed once per connection
            "client_cert_der": der,
            "client_lfdi": lfdi_from_certificate(der) if der else None,
        }
        peer = writer.get_extra_info("peername")
        sock = writer.get_extra_info("sockname")
        self.client = (peer[0], peer[1]) if peer else None
        self.server = (sock[0], sock[1]) if sock else None

    async def _next_event(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await asyncio.wait_for(self.reader.read(_READ_CHUNK), KEEPALIVE_TIMEOUT_S)
            self.conn.receive_data(data)

    async def _send(self, event: Any) -> None:
        data = self.conn.send(event)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def _refuse(self, status: int, text: str, *, linger: bool = False) -> None:
        with contextlib.suppress(h11.LocalProtocolError):
            for ev in _simple_response(status, text):
                await self._send(ev)
            await self._send(h11.EndOfMessage())
        if linger:
            await self._linger()

    async def _linger(self) -> None:
        """Read and drop what the client is still sending before closing (bounded in bytes and
        time), so closing with unread data does not reset the connection and lose the answer."""
        budget = LINGER_MAX_BYTES
        with contextlib.suppress(TimeoutError, ConnectionError, ssl.SSLError, OSError):
            while budget > 0:
                data = await asyncio.wait_for(self.reader.read(_READ_CHUNK), LINGER_TIMEOUT_S)
                if not data:
                    break
                budget -= len(data)

    async def run(self) -> None:
        try:
            while True:
                try:
                    event = await self._next_event()
                except h11.RemoteProtocolError as exc:
                    await self._refuse(exc.error_status_hint, f"bad request: {exc}")
                    return
                if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return
                if not isinstance(event, h11.Request):
                    return
                if not await self._handle(event):
                    return
                if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
                    self.conn.start_next_cycle()
                else:
                    return
        except (TimeoutError, ConnectionError, ssl.SSLError, OSError):
            return
        finally:
            with contextlib.suppress(Exception):
                self.writer.close()

    async def _read_body(self, request: h11.Request) -> bytes | None:
        length = None
        for name, value in request.headers:
            if name == b"content-length":
                length = int(value)
        if length is not None and length > self.max_body_bytes:
            await self._refuse(
                413,
                f"request body of {length} bytes exceeds the {self.max_body_bytes} byte limit",
                linger=True,
            )
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > self.max_body_bytes:
                    await self._refuse(
                        413,
                        f"request body exceeds the {self.max_body_bytes} byte limit",
                        linger=True,
                    )
                    return None
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            else:
                return None

    async def _handle(self, request: h11.Request) -> bool:
        body = await self._read_body(request)
        if body is None:
            return False
        target = bytes(request.target)
        path_bytes, _, query = target.partition(b"?")
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": request.http_version.decode(),
            "method": request.method.decode(),
            "scheme": "https",
            "path": unquote(path_bytes.decode("latin-1")),
            "raw_path": path_bytes,
            "query_string": query,
            "root_path": self.root_path,
            "headers": [(n, v) for n, v in request.headers],
            "client": self.client,
            "server": self.server,
            "extensions": {"tls": self.tls},
            "state": {},
        }
        delivered = False
        response_started = False
        response_done = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            # ASGI: after the body, receive() waits until the client disconnects.
            await asyncio.Event().wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal response_started, response_done
            kind = message["type"]
            if kind == "http.response.start":
                response_started = True
                headers = [(bytes(n), bytes(v)) for n, v in message.get("headers", [])]
                await self._send(h11.Response(status_code=message["status"], headers=headers))
            elif kind == "http.response.body":
                data = message.get("body", b"")
                if data:
                    await self._send(h11.Data(data=data))
                if not message.get("more_body", False):
                    response_done = True
                    await self._send(h11.EndOfMessage())

        try:
            await self.app(scope, receive, send)
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if not response_started:
                await self._refuse(500, "internal server error")
            return False
        if not response_done:
            if not response_started:
                await self._refuse(500, "application sent no response")
            return False
        return True


class _Lifespan:
    """Drive the ASGI lifespan protocol: one app call spanning startup and shutdown."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _receive(self) -> Message:
        return await self.inbox.get()

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind.startswith("lifespan.startup."):
            if kind.endswith(".failed"):
                log.error("application startup failed: %s", message.get("message", ""))
            self.started.set()
        elif kind.startswith("lifespan.shutdown."):
            self.stopped.set()

    async def _run(self) -> None:
        try:
            await self.app(
                {"type": "lifespan", "asgi": {"version": "3.0"}}, self._receive, self._send
            )
        except Exception:
            pass  # apps without lifespan support raise on the unknown scope type: that is allowed
        finally:
            self.started.set()
            self.stopped.set()

    async def startup(self) -> None:
        self.task = asyncio.ensure_future(self._run())
        await self.inbox.put({"type": "lifespan.startup"})
        await self.started.wait()

    async def shutdown(self) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopped.wait(), 10)
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task


async def serve_socket(
    app: ASGIApp,
    sock: socket.socket,
    ssl_context: ssl.SSLContext,
    stop: asyncio.Event,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    root_path: str = "",
) -> None:
    """Serve ``app`` over mutual TLS on a bound, listening ``sock`` until ``stop`` is set."""
    connections: set[asyncio.Task[None]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            connections.add(task)
        try:
            await _Connection(app, reader, writer, max_body_bytes, root_path).run()
        finally:
            if task is not None:
                connections.discard(task)

    lifespan = _Lifespan(app)
    await lifespan.startup()
    server = await asyncio.start_server(
        on_connect, sock=sock, ssl=ssl_context, ssl_handshake_timeout=15.0, backlog=2048
    )
    try:
        await stop.wait()
    finally:
        server.close()
        for task in list(connections):
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        with contextlib.suppress(Exception):
            await server.wait_closed()
        await lifespan.shutdown()


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0 picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # type: ignore[import-not-found,unused-ignore]  # optional, faster loop

        return uvloop.new_event_loop()  # type: ignore[no-any-return,unused-ignore]
    except ImportError:
        return asyncio.new_event_loop()


def _run_worker(
    app_factory: Callable[[], ASGIApp], sock: socket.socket, ctx: ssl.SSLContext, max_body: int
) -> None:
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        loop.run_until_complete(
            serve_socket(app_factory(), sock, ctx, stop, max_body_bytes=max_body)
        )
    finally:
        loop.close()


def serve(
    app_factory: Callable[[], ASGIApp],
    files: TlsFiles,
    *,
    host: str = "127.0.0.1",
    port: int = 8443,
    workers: int = 1,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Serve the app built by ``app_factory`` until SIGINT / SIGTERM.

    With ``workers > 1`` the listening socket is shared by forked worker processes; each calls
    ``app_factory`` itself, so database engines are created after the fork.
    """
    ctx = make_ssl_context(files)
    sock = bind_socket(host, port)
    if on_ready is not None:
        on_ready(sock.getsockname()[1])
    if workers <= 1:
        _run_worker(app_factory, sock, ctx, max_body_bytes)
        return
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # child
            code = 0
            try:
                _run_worker(app_factory, sock, ctx, max_body_bytes)
            except BaseException:
                log.exception("worker failed")
                code = 1
            finally:
                os._exit(code)
        children.append(pid)

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    for child in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child, 0)


class ServerThread:
    """Run the mutual-TLS server on a background thread (tests, notebooks, embedding).

    Examples
    --------
    >>> srv = ServerThread(app, files).start()   # doctest: +SKIP
    >>> srv.url                                  # doctest: +SKIP
    'https://127.0.0.1:43117'
    >>> srv.stop()                               # doctest: +SKIP
    """

    def __init__(
        self,
        app: ASGIApp,
        files: TlsFiles,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.ctx = make_ssl_context(files)
        self.sock = bind_socket(host, port)
        self.host = host
        self.port: int = self.sock.getsockname()[1]
        self.max_body_bytes = max_body_bytes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sep2-server", daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._stop = asyncio.Event()
        loop.call_soon(self._ready.set)
        try:
            loop.run_until_complete(
                serve_socket(
                    self.app, self.sock, self.ctx, self._stop, max_body_bytes=self.max_body_bytes
                )
            )
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    def start(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self.sock.close()
