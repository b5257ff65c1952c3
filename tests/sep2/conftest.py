"""Fixtures of the 2030.5 tests: a test PKI, a seeded registry, the real server over mutual TLS."""

from __future__ import annotations

import datetime as dt
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from gridflex.derms import registry
from gridflex.derms.db import session_factory
from gridflex.sep2.app import Sep2App, Sep2Settings, create_app
from gridflex.sep2.certs import ClientIdentity, TlsFiles, ensure_test_pki
from gridflex.sep2.server import ServerThread
from gridflex.terms import ConnectionTerms
from tests.dbfixtures import _migrated_templates, db_backend, db_url, engine, session  # noqa: F401

CLIENTS = (
    ("aggregator-1", "aggregator"),
    ("aggregator-2", "aggregator"),
    ("device-1", "device"),
    ("device-2", "device"),
    ("device-3", "device"),
    ("device-4", "device"),
    ("stranger", "device"),
)

# device-1: direct, connection c-1 (static 250 kW export limit, fallback 100 kW)
# device-2, device-3: behind aggregator-1 (c-2 with a 288 schedule, c-3 static)
# device-4: behind aggregator-2 (c-4)
# stranger: a valid certificate the registry does not know
TERMS = {
    "c-1": ConnectionTerms(
        connection_id="c-1",
        nameplate_kw=500,
        export_limit_kw=250,
        fallback_export_kw=100,
        fallback_import_kw=50,
        agreed_at="2026-01-05T00:00:00Z",
    ),
    "c-2": ConnectionTerms(
        connection_id="c-2",
        nameplate_kw=300,
        schedule_export_kw=[[200.0] * 10 + [120.0] * 8 + [200.0] * 6 for _ in range(12)],
        tz="America/Chicago",
        fallback_export_kw=80,
        agreed_at="2026-01-05T00:00:00Z",
    ),
    "c-3": ConnectionTerms(
        connection_id="c-3", nameplate_kw=50, export_limit_kw=40, agreed_at="2026-01-05T00:00:00Z"
    ),
    "c-4": ConnectionTerms(
        connection_id="c-4", nameplate_kw=80, export_limit_kw=60, agreed_at="2026-01-05T00:00:00Z"
    ),
}


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[TlsFiles, dict[str, ClientIdentity]]:
    files, ids = ensure_test_pki(tmp_path_factory.mktemp("pki"), clients=CLIENTS)
    return files, {c.name: c for c in ids}


@dataclass
class Registry:
    der_ids: dict[str, int]
    aggregator_ids: dict[str, int]
    program_id: int


def seed_registry(eng: Engine, ids: dict[str, ClientIdentity]) -> Registry:
    """The registry the tests run against (see the comment above ``TERMS``)."""
    with session_factory(eng).begin() as s:
        agg1 = registry.add_aggregator(s, name="Agg One", lfdi=ids["aggregator-1"].lfdi.upper())
        agg2 = registry.add_aggregator(s, name="Agg Two", lfdi=ids["aggregator-2"].lfdi)
        site = registry.add_site(s, name="Site A")
        ders = {}
        for name, conn, agg in (
            ("device-1", "c-1", None),
            ("device-2", "c-2", agg1.id),
            ("device-3", "c-3", agg1.id),
            ("device-4", "c-4", agg2.id),
        ):
            der = registry.add_der(
                s,
                site_id=site.id,
                der_type="pv",
                nameplate_kw=TERMS[conn].nameplate_kw,
                actor="test",
                name=name,
                lfdi=ids[name].lfdi,
                sfdi=ids[name].sfdi,
                aggregator_id=agg,
                connection_id=conn,
            )
            registry.add_terms(s, TERMS[conn], actor="test")
            ders[name] = der.id
        prog = registry.add_program(
            s, name="Feeder 12 constraint", constraint_kind="feeder", constraint_element="F12"
        )
        registry.add_program_member(s, prog.id, ders["device-1"], actor="test")
        return Registry(ders, {"aggregator-1": agg1.id, "aggregator-2": agg2.id}, prog.id)


class Clock:
    """A settable clock for the server (real time unless set)."""

    def __init__(self) -> None:
        self.fixed: dt.datetime | None = None

    def __call__(self) -> dt.datetime:
        return self.fixed or dt.datetime.now(dt.UTC)


@dataclass
class Server:
    url: str
    files: TlsFiles
    ids: dict[str, ClientIdentity]
    registry: Registry
    engine: Engine
    clock: Clock
    app: Sep2App

    def settle(self) -> None:
        """Wait until the server has applied every change committed so far (PostgreSQL's
        notifications reach it a loopback round trip after the commit; nothing to wait for on
        SQLite, where every poll checks the database)."""
        if self.app.changes is not None and self.app.changes.listening:
            assert self.app.changes.sync(), "the change notifications did not arrive in 10 s"

    def client(self, name: str) -> httpx.Client:
        """An HTTPS client presenting certificate ``name`` (after :meth:`settle`)."""
        self.settle()
        ctx = ssl.create_default_context(cafile=str(self.files.ca_cert))
        ident = self.ids[name]
        ctx.load_cert_chain(str(ident.cert), str(ident.key))
        return httpx.Client(
            base_url=self.url, verify=ctx, headers={"Accept": "application/sep+xml"}, timeout=10
        )


@pytest.fixture
def server(engine: Engine, pki: tuple[TlsFiles, dict[str, ClientIdentity]]) -> Iterator[Server]:  # noqa: F811
    files, ids = pki
    reg = seed_registry(engine, ids)
    clock = Clock()
    app = create_app(engine, Sep2Settings(clock=clock), with_admin=False)
    srv = ServerThread(app, files).start()
    if app.sep2.changes is not None:  # PostgreSQL: cached polls are answered from memory
        assert app.sep2.changes.wait_listening(), "the server did not LISTEN within 10 s"
        # and has run its start-up bulk load, which would otherwise run during a test's count
        deadline = time.monotonic() + 10
        while app.sep2.preloads < 1:
            assert time.monotonic() < deadline, "no bulk load within 10 s of listening"
            time.sleep(0.02)
    try:
        yield Server(srv.url, files, ids, reg, engine, clock, app.sep2)
    finally:
        srv.stop()


@pytest.fixture
def tmp_certs(tmp_path: Path) -> Path:
    return tmp_path / "certs"
