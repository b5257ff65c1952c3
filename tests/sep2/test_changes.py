"""Cached DERControlLists answered without the database stay coherent with committed changes.

On PostgreSQL the server answers a repeated poll from memory while it LISTENs for the change
notifications of migration ``0003_sep2_change_feed`` (:mod:`gridflex.sep2.changes`): these tests
check that the triggers notify exactly the committed writes that matter, that a cached poll really
reads nothing, and that a new terms version or a cancelled control is visible on the next poll in
every worker process of a two-worker server. On SQLite every poll still checks the database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from envoy_schema.server.schema.sep2 import der as der_schema
from sqlalchemy import Engine, event

from gridflex.derms import registry
from gridflex.derms.db import session_factory
from gridflex.sep2 import manager
from gridflex.sep2 import xml as sepxml
from gridflex.sep2.app import watts_of
from gridflex.sep2.certs import ClientIdentity, TlsFiles
from gridflex.sep2.changes import ChangeFeed
from gridflex.sep2.identity import DeviceScope
from gridflex.sep2.persistence import SITE_PROGRAM_KEY, EndDevice
from gridflex.terms import ConnectionTerms
from tests.sep2.conftest import TERMS, Server, seed_registry
from tests.sep2.docs import end_device_xml

POSTGRES_ONLY = pytest.mark.parametrize(
    "db_backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
T0 = dt.datetime(2026, 7, 1, 15, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def _device(engine: Engine, ids: dict[str, ClientIdentity], name: str) -> int:
    with session_factory(engine).begin() as s:
        der = registry.find_der_by_lfdi(s, ids[name].lfdi)
        assert der is not None
        scope = DeviceScope(lfdi=ids[name].lfdi, sfdi=ids[name].sfdi, der_id=der.id)
        edev, _ = manager.register_end_device(
            s, scope, manager.EndDeviceInput(lfdi=ids[name].lfdi, sfdi=ids[name].sfdi), T0
        )
        manager.publish_terms_controls(s, edev, T0)
        return edev.id


def _programs(engine: Engine, edev_id: int) -> dict[str, int]:
    with session_factory(engine).begin() as s:
        edev = s.get(EndDevice, edev_id)
        assert edev is not None
        return {p.key: p.id for p in manager.programs_for(s, edev)}


@POSTGRES_ONLY
def test_the_feed_hears_committed_changes_of_a_device_and_nothing_else(
    engine: Engine, pki: tuple[TlsFiles, dict[str, ClientIdentity]]
) -> None:
    _, ids = pki
    seed_registry(engine, ids)
    one, two = _device(engine, ids, "device-1"), _device(engine, ids, "device-2")
    ops = _programs(engine, one)[manager.OPS_PROGRAM_KEY]
    feed = ChangeFeed(engine).start()
    try:
        assert feed.wait_listening()
        token = feed.token()
        assert token is not None
        assert feed.fresh(one, token)
        assert feed.fresh(two, token)

        # rolled back: nothing happened, nothing is invalidated
        with session_factory(engine)() as s:
            manager.create_control(
                s, end_device_id=one, der_program_id=ops, start=T0 + H, duration_s=600,
                now=T0, exp_lim_w=1000,
            )  # fmt: skip
            s.rollback()
        assert feed.sync()
        assert feed.fresh(one, token)
        assert feed.fresh(two, token)

        # a committed control of device one: its answers are stale, device two's are not
        with session_factory(engine).begin() as s:
            ctrl = manager.create_control(
                s, end_device_id=one, der_program_id=ops, start=T0 + H, duration_s=600,
                now=T0, exp_lim_w=1000,
            )  # fmt: skip
            ctrl_id = ctrl.id
        assert feed.sync()
        assert not feed.fresh(one, token)
        assert feed.fresh(two, token)

        # a cancellation (an UPDATE of the control row) is a change of the device too
        token = feed.token()
        assert token is not None
        with session_factory(engine).begin() as s:
            manager.cancel_control(s, ctrl_id, T0)
        assert feed.sync()
        assert not feed.fresh(one, token)
        assert feed.fresh(two, token)

        # telemetry does not touch what lists show
        token = feed.token()
        assert token is not None
        scope = DeviceScope(lfdi=ids["device-1"].lfdi, sfdi=ids["device-1"].sfdi, der_id=None)
        reading = manager.MeterReadingInput(
            mrid="ab" * 16, description="", uom=38, kind=37, flow_direction=1, phase=None,
            data_qualifier=2, power_of_ten=0, interval_length_s=300,
            readings=(manager.ReadingInput(T0, 300, 5, None),),
        )  # fmt: skip
        with session_factory(engine).begin() as s:
            manager.upsert_mirror_usage_point(
                s, scope, device_lfdi=ids["device-1"].lfdi, mrid="cd" * 16, description="",
                role_flags="49", service_category=0, status=1, post_rate_s=300,
                meter_readings=(reading,), now=T0,
            )  # fmt: skip
        assert feed.sync()
        assert feed.fresh(one, token)
        assert feed.fresh(two, token)

        # a new terms version or an ownership change concerns every device
        for write in (
            lambda s: registry.add_terms(
                s, TERMS["c-1"].model_copy(update={"export_limit_kw": 300}), actor="t"
            ),
            lambda s: registry.add_aggregator(s, name="Agg Three", lfdi="ef" * 20),
        ):
            token = feed.token()
            assert token is not None
            with session_factory(engine).begin() as s:
                write(s)
            assert feed.sync()
            assert not feed.fresh(one, token)
            assert not feed.fresh(two, token)
    finally:
        feed.stop()
    assert feed.token() is None  # stopped: callers check the database again


def _count_statements(engine: Engine) -> tuple[list[str], Any]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    return seen, count


def test_a_repeated_poll_reads_the_database_only_where_no_notifications_come(
    server: Server,
) -> None:
    server.clock.fixed = T0
    with server.client("device-1") as c:
        r = c.post("/edev", content=end_device_xml(server.ids["device-1"].lfdi))
        assert r.status_code == 201, r.text
        edev_id = int(r.headers["location"].rsplit("/", 1)[1])
    href = f"/edev/{edev_id}/derp/{_programs(server.engine, edev_id)[SITE_PROGRAM_KEY]}/derc"
    with server.client("device-1") as c:
        assert c.get(href, params={"l": 10}).status_code == 200  # publishes the terms controls
    server.settle()
    seen, listener = _count_statements(server.engine)
    try:
        with server.client("device-1") as c:
            first = c.get(href, params={"l": 10})
            n_first = len(seen)
            second = c.get(href, params={"l": 10})
            n_second = len(seen) - n_first
    finally:
        event.remove(server.engine, "before_cursor_execute", listener)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    for header in ("content-type", "content-length"):
        assert first.headers[header] == second.headers[header], header
    assert n_first >= 1  # the counter sees the server's statements
    if server.engine.dialect.name == "postgresql":
        assert n_second == 0, seen[n_first:]  # answered from memory
    else:
        assert n_second >= 1  # SQLite: the control generation is read on every poll


def test_ownership_changes_reach_cached_lists(server: Server) -> None:
    """A DER moved to another aggregator: its old aggregator's cached list is refused at once."""
    server.clock.fixed = T0
    with server.client("aggregator-1") as c:
        r = c.post("/edev", content=end_device_xml(server.ids["device-2"].lfdi))
        assert r.status_code == 201, r.text
        edev_id = int(r.headers["location"].rsplit("/", 1)[1])
    href = f"/edev/{edev_id}/derp/{_programs(server.engine, edev_id)[SITE_PROGRAM_KEY]}/derc"
    with server.client("aggregator-1") as c:
        assert c.get(href, params={"l": 10}).status_code == 200
        assert c.get(href, params={"l": 10}).status_code == 200  # cached
    with session_factory(server.engine).begin() as s:
        der = registry.find_der_by_lfdi(s, server.ids["device-2"].lfdi)
        assert der is not None
        der.aggregator_id = server.registry.aggregator_ids["aggregator-2"]
        s.get(EndDevice, edev_id).aggregator_id = der.aggregator_id  # type: ignore[union-attr]
    with server.client("aggregator-1") as c:
        r = c.get(href, params={"l": 10})
    assert r.status_code == 403, r.text
    with server.client("aggregator-2") as c:
        assert c.get(href, params={"l": 10}).status_code == 200


# ---- two worker processes on PostgreSQL --------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_two_workers(
    engine: Engine, files: TlsFiles, ids: dict[str, ClientIdentity]
) -> Iterator[str]:
    """``gridflex serve --workers 2`` on ``engine``'s database; yields its base URL once both
    workers answer and have had a second to LISTEN and bulk-load; stops it afterwards."""
    port = _free_port()
    url = engine.url.render_as_string(hide_password=False)
    cmd = [sys.executable, "-c", "from gridflex.cli.main import main; main()", "serve"]
    cmd += ["--db", url, "--certs", str(Path(files.ca_cert).parent), "--port", str(port)]
    cmd += ["--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                with _client(base, files, ids["device-1"]) as c:
                    if c.get("/tm").status_code == 200:
                        break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start in 60 s"
            time.sleep(0.2)
        time.sleep(1.0)  # both workers LISTEN and bulk-load (a poll before that reads the database)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.fixture
def two_workers(
    engine: Engine, pki: tuple[TlsFiles, dict[str, ClientIdentity]]
) -> Iterator[tuple[str, Engine, dict[str, ClientIdentity]]]:
    files, ids = pki
    seed_registry(engine, ids)
    with serve_two_workers(engine, files, ids) as base:
        yield base, engine, ids


def _client(base: str, files: TlsFiles, ident: ClientIdentity) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(files.ca_cert))
    ctx.load_cert_chain(str(ident.cert), str(ident.key))
    return httpx.Client(base_url=base, verify=ctx, timeout=10)


NOTIFICATION_WAIT_S = 0.5
"""Margin for the notification to reach both workers (a loopback round trip; the machine may be
busy)."""


@POSTGRES_ONLY
def test_two_workers_show_new_terms_and_cancellations_on_the_next_poll(
    two_workers: tuple[str, Engine, dict[str, ClientIdentity]],
    pki: tuple[TlsFiles, dict[str, ClientIdentity]],
) -> None:
    base, engine, ids = two_workers
    files, _ = pki
    clients = [_client(base, files, ids["device-1"]) for _ in range(8)]  # kept-alive: both workers
    try:
        r = clients[0].post("/edev", content=end_device_xml(ids["device-1"].lfdi))
        assert r.status_code == 201, r.text
        edev_id = int(r.headers["location"].rsplit("/", 1)[1])
        progs = _programs(engine, edev_id)
        site = f"/edev/{edev_id}/derp/{progs[SITE_PROGRAM_KEY]}/derc"
        ops = f"/edev/{edev_id}/derp/{progs[manager.OPS_PROGRAM_KEY]}/derc"

        def lists(href: str) -> list[der_schema.DERControlListResponse]:
            out = []
            for c in clients:
                r = c.get(href, params={"l": 100})
                assert r.status_code == 200, r.text
                out.append(sepxml.validate_response(der_schema.DERControlListResponse, r.content))
            return out

        def active_export_w(lst: der_schema.DERControlListResponse) -> set[float | None]:
            return {
                watts_of(d.DERControlBase_.opModExpLimW)
                for d in lst.DERControl or []
                if d.EventStatus_.currentStatus == 1
            }

        for _ in range(2):  # the second round is answered from each worker's memory
            assert all(active_export_w(x) == {250_000} for x in lists(site))
            assert all(not x.DERControl for x in lists(ops))

        now = dt.datetime.now(dt.UTC)
        new_terms = TERMS["c-1"].model_copy(update={"export_limit_kw": 300, "agreed_at": now})
        assert isinstance(new_terms, ConnectionTerms)
        with session_factory(engine).begin() as s:
            registry.add_terms(s, new_terms, actor="test")
            ctrl = manager.create_control(
                s, end_device_id=edev_id, der_program_id=progs[manager.OPS_PROGRAM_KEY],
                start=now + H, duration_s=600, now=now, exp_lim_w=1000,
            )  # fmt: skip
            ctrl_id, ctrl_mrid = ctrl.id, ctrl.mrid
        time.sleep(NOTIFICATION_WAIT_S)
        for _ in range(2):
            assert all(active_export_w(x) == {300_000} for x in lists(site))
            assert all(
                {d.mRID: d.EventStatus_.currentStatus for d in x.DERControl or []} == {ctrl_mrid: 0}
                for x in lists(ops)
            )

        with session_factory(engine).begin() as s:
            manager.cancel_control(s, ctrl_id, dt.datetime.now(dt.UTC))
        time.sleep(NOTIFICATION_WAIT_S)
        for _ in range(2):
            assert all(
                {d.mRID: d.EventStatus_.currentStatus for d in x.DERControl or []} == {ctrl_mrid: 2}
                for x in lists(ops)
            )
    finally:
        for c in clients:
            c.close()
