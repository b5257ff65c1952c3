"""Start the whole server with one call: migrations, the TLS identity files, the 2030.5
application with the registry REST API under ``/admin``, and the mutual-TLS server.

``gridflex serve`` (:mod:`gridflex.cli.serve`) is a thin wrapper around :func:`prepare` and
:func:`run`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gridflex.derms.db import default_url, make_engine, normalize_url, upgrade
from gridflex.errors import InputError
from gridflex.sep2.app import Sep2Settings, create_app
from gridflex.sep2.certs import ClientIdentity, TlsFiles, ensure_test_pki
from gridflex.sep2.server import ASGIApp, serve


def default_certs_dir() -> Path:
    """``$XDG_DATA_HOME/gridflex/sep2-certs`` (``~/.local/share/gridflex/sep2-certs``)."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "gridflex" / "sep2-certs"


@dataclass(frozen=True)
class Prepared:
    """What :func:`prepare` set up: the database URL, the TLS files and the test clients."""

    db_url: str
    files: TlsFiles
    clients: list[ClientIdentity]
    generated: bool


def prepare(
    db: str | None, certs: Path | None, hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
) -> Prepared:
    """Migrate the database and make sure the TLS files exist.

    A certificate folder holding ``ca.pem``, ``server.pem`` and ``server.key`` (a deployment's own
    PKI) is used as it is; otherwise a self-signed test CA, a server certificate and client
    certificates are generated there (kept across restarts).
    """
    url = db or default_url()
    normalize_url(url)
    folder = (certs or default_certs_dir()).expanduser()
    own = all((folder / n).exists() for n in ("ca.pem", "server.pem", "server.key"))
    own = own and not (folder / "ca.key").exists()
    if own:
        files = TlsFiles(folder / "server.pem", folder / "server.key", folder / "ca.pem")
        clients: list[ClientIdentity] = []
        generated = False
    else:
        files, clients = ensure_test_pki(folder, hosts=hosts)
        generated = True
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return Prepared(url, files, clients, generated)


def app_factory(
    db_url: str, settings: Sep2Settings | None = None, *, with_admin: bool = True
) -> Callable[[], ASGIApp]:
    """A factory building the app (and its engine) inside each worker process."""

    def build() -> ASGIApp:
        # no pre-ping: it would double the round trips of every short request; a broken
        # pooled connection fails one request and is replaced
        engine = make_engine(db_url, pool_pre_ping=False, pool_size=10, max_overflow=10)
        return create_app(engine, settings, with_admin=with_admin)

    return build


def run(
    prepared: Prepared,
    *,
    host: str = "127.0.0.1",
    port: int = 8443,
    workers: int = 1,
    settings: Sep2Settings | None = None,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Serve until interrupted."""
    if workers < 1:
        raise InputError(f"--workers {workers} is below 1", "give 1 or more worker processes")
    serve(
        app_factory(prepared.db_url, settings),
        prepared.files,
        host=host,
        port=port,
        workers=workers,
        on_ready=on_ready,
    )
