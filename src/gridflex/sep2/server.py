"""Mutual-TLS serving of ASGI applications on uvicorn, with the client certificate in the scope.

IEEE 2030.5 identifies every client by its certificate (IEEE 2030.5-2018 clause 6.3). uvicorn
terminates TLS and parses HTTP/1.1 (its ``httptools`` protocol on ``uvloop``) but does not put the
peer certificate in the ASGI scope. What is ours here is a small subclass of uvicorn's
``HttpToolsProtocol`` that:

- fills the ASGI ``tls`` extension (``scope["extensions"]["tls"]["client_cert_chain"]``, per the
  ASGI TLS extension specification) plus the certificate's DER bytes and LFDI, read once per
  connection from ``transport.get_extra_info("ssl_object").getpeercert(binary_form=True)``
  (asyncio and uvloop call ``connection_made`` after the handshake);
- caps request bodies (413 from the Content-Length before reading the body, or as soon as a
  chunked body passes the cap) and header blocks (431), then drains what the client still sends
  for a bounded time so the refusal is not lost to a connection reset;

plus the SSL context (TLS 1.2+, client certificate required and verified against the CA, handed to
uvicorn through ``Config.ssl_context_factory``) and the process model: ``serve`` runs one process
or forks worker processes that share the listening socket, each running its own uvicorn
``Server`` on that socket (the 2030.5 handlers are short database round trips, so several
single-threaded workers use the cores best). Keep-alive, lifespan, flow control and graceful
shutdown are uvicorn's. ``ServerThread`` runs the server on a background thread for tests and
embedding.
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

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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
"""Largest request line + header block accepted (bytes); larger ones get 431."""
KEEPALIVE_TIMEOUT_S = 75.0
LINGER_TIMEOUT_S = 2.0
LINGER_MAX_BYTES = 16 * DEFAULT_MAX_BODY_BYTES


def make_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """Server context: TLS 1.2+, client certificate required and verified against the CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(files.server_cert), str(files.server_key))
    ctx.load_verify_locations(cafile=str(files.ca_cert))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any]:
    """The ASGI ``tls`` extension of a connection, plus the client certificate's DER and LFDI."""
    ssl_object = transport.get_extra_info("ssl_object")
    der: bytes | None = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    version = ssl_object.version() if ssl_object else None
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": None,
        "client_cert_error": None if der else "no client certificate",
        "tls_version": _TLS_VERSIONS.get(version or ""),
        "cipher_suite": None,
        # gridflex addition: the DER bytes and LFDI, computed once per connection
        "client_cert_der": der,
        "client_lfdi": lfdi_from_certificate(der) if der else None,
    }


_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
"""ASGI TLS extension: ``tls_version`` is the TLS record version number."""


def _plain(status: int, reason: str, text: str) -> bytes:
    body = text.encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


class MutualTlsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the client certificate in the scope and size caps."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._tls = _tls_extension(transport)
        self._refused = False
        self._linger_budget = LINGER_MAX_BYTES
        self._head_bytes = 0
        self._body_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self._refused:  # drain what the client still sends after a refusal
            self._linger_budget -= len(data)
            if self._linger_budget <= 0:
                self.transport.close()
            return
        super().data_received(data)

    def _refuse(self, status: int, reason: str, text: str) -> None:
        """Answer and stop parsing; keep reading (and dropping) for a while before closing, so
        closing with unread data does not reset the connection and lose the answer."""
        self._refused = True
        if self.cycle is not None and not self.cycle.response_complete:
            # a chunked body over the cap while the app waits for it: the app sees a disconnect
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.write(_plain(status, reason, text))
        self.loop.call_later(LINGER_TIMEOUT_S, self.transport.close)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {"tls": self._tls}  # type: ignore[dict-item]
        self._head_bytes = 0
        self._body_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > MAX_HEADER_BYTES:
            self._refuse(431, "Request Header Fields Too Large", "header block too large")
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        for name, value in self.headers:
            if name == b"content-length" and int(value) > self.max_body_bytes:
                self._refuse(
                    413, "Content Too Large", f"request body over {self.max_body_bytes} bytes"
                )
                return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._body_bytes += len(body)
        if self._body_bytes > self.max_body_bytes:
            self._refuse(413, "Content Too Large", f"request body over {self.max_body_bytes} bytes")
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()


def _protocol(max_body_bytes: int) -> type[MutualTlsProtocol]:
    if max_body_bytes == DEFAULT_MAX_BODY_BYTES:
        return MutualTlsProtocol
    return type("MutualTlsProtocol", (MutualTlsProtocol,), {"max_body_bytes": max_body_bytes})


def uvicorn_config(
    app: ASGIApp, ctx: ssl.SSLContext, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> uvicorn.Config:
    """The uvicorn configuration: httptools + our protocol, our SSL context, no access log."""
    return uvicorn.Config(
        app,
        http=_protocol(max_body_bytes),
        loop="auto",  # uvloop when installed
        lifespan="on",
        ssl_context_factory=lambda _config, _default: ctx,
        timeout_keep_alive=int(KEEPALIVE_TIMEOUT_S),
        # clients are identified by their certificates; no X-Forwarded-* header is believed
        proxy_headers=False,
        backlog=2048,
        log_config=None,
        access_log=False,
        server_header=False,
        date_header=False,
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0 picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _run_worker(
    app_factory: Callable[[], ASGIApp], sock: socket.socket, ctx: ssl.SSLContext, max_body: int
) -> None:
    server = uvicorn.Server(uvicorn_config(app_factory(), ctx, max_body_bytes=max_body))
    server.run(sockets=[sock])


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
        self.sock = bind_socket(host, port)
        self.host = host
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn_config(app, make_ssl_context(files), max_body_bytes=max_body_bytes)
        config.loop = "asyncio"  # a thread of the caller's process: leave its loop policy alone
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="sep2-server", daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def _run(self) -> None:
        try:
            asyncio.run(self.server.serve(sockets=[self.sock]))
        except BaseException as exc:
            self._error = exc

    def start(self) -> ServerThread:
        self._thread.start()
        for _ in range(1000):
            if self.server.started or self._error is not None or not self._thread.is_alive():
                break
            threading.Event().wait(0.01)
        if self._error is not None:
            raise self._error
        if not self.server.started:
            raise RuntimeError("the 2030.5 server did not start (see the log)")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(10)
        with contextlib.suppress(OSError):
            self.sock.close()
