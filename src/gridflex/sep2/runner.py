"""Start the whole server with one call: migrations, the TLS identity files, the 2030.5
application with the registry REST API under ``/admin``, and the mutual-TLS server.

``gridflex serve`` (:mod:`gridflex.cli.serve`) is a thin wrapper around :func:`prepare` and
:func:`run`.
"""

from __future__ import annotations

import datetime as dt
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


def seed_demo(
    db_url: str, clients: list[ClientIdentity], now: dt.datetime | None = None
) -> list[str]:
    """Register the test certificates in the registry so a client sees limits at once (demo).

    The first aggregator certificate becomes "demo aggregator"; the first device certificate a
    direct 100 kW PV with a seasonal export schedule (60 kW June–September, 80 kW otherwise,
    40 kW fallback); the other devices 10 kW PV behind the aggregator with an 8 kW export limit.
    Certificates already in the registry are left alone. Returns what was added.
    """
    from gridflex.derms import registry
    from gridflex.derms.db import session_factory
    from gridflex.terms import ConnectionTerms

    agreed = now or dt.datetime.now(dt.UTC)
    added: list[str] = []
    engine = make_engine(db_url)
    try:
        with session_factory(engine).begin() as s:
            aggs = [c for c in clients if c.role == "aggregator"]
            devices = [c for c in clients if c.role == "device"]
            agg_id: int | None = None
            if aggs:
                found = registry.find_aggregator_by_lfdi(s, aggs[0].lfdi)
                if found is None:
                    found = registry.add_aggregator(
                        s, name="demo aggregator", lfdi=aggs[0].lfdi, sfdi=aggs[0].sfdi
                    )
                    added.append(f"aggregator {aggs[0].name}")
                agg_id = found.id
            site = None
            for i, dev in enumerate(devices):
                if registry.find_der_by_lfdi(s, dev.lfdi) is not None:
                    continue
                if site is None:
                    site = registry.add_site(s, name="demo site")
                direct = i == 0
                conn = f"demo-{dev.name}"
                if direct:
                    terms = ConnectionTerms(
                        connection_id=conn,
                        nameplate_kw=100.0,
                        schedule_export_kw=ConnectionTerms.seasonal_schedule(60.0, 80.0),
                        fallback_export_kw=40.0,
                        agreed_at=agreed,
                    )
                else:
                    terms = ConnectionTerms(
                        connection_id=conn, nameplate_kw=10.0, export_limit_kw=8.0, agreed_at=agreed
                    )
                registry.add_der(
                    s,
                    site_id=site.id,
                    der_type="pv",
                    nameplate_kw=terms.nameplate_kw,
                    actor="gridflex serve --demo",
                    name=dev.name,
                    lfdi=dev.lfdi,
                    sfdi=dev.sfdi,
                    aggregator_id=None if direct else agg_id,
                    connection_id=conn,
                )
                registry.add_terms(s, terms, actor="gridflex serve --demo")
                added.append(f"DER {dev.name} ({'direct' if direct else 'via the aggregator'})")
    finally:
        engine.dispose()
    return added
