"""Bulk-loaded access facts (PostgreSQL): a worker's first telemetry POST needs no lookup, and a
change committed after the bulk load is seen on the next request, in every worker."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, event

from gridflex.derms import registry
from gridflex.derms.db import session_factory
from gridflex.sep2 import manager
from gridflex.sep2.certs import ClientIdentity, TlsFiles
from gridflex.sep2.identity import AggregatorScope, CertificateScope
from gridflex.sep2.persistence import SITE_PROGRAM_KEY, EndDevice
from tests.sep2.conftest import Server, seed_registry
from tests.sep2.docs import end_device_xml, mirror_meter_reading_xml, mirror_usage_point_xml
from tests.sep2.test_changes import (
    NOTIFICATION_WAIT_S,
    T0,
    H,
    _client,
    _device,
    _programs,
    serve_two_workers,
)

POSTGRES_ONLY = pytest.mark.parametrize(
    "db_backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
START = int(T0.timestamp())


def _move_der(engine: Engine, lfdi: str, aggregator_id: int) -> None:
    """The registry moves a DER to another aggregator (as an operator does)."""
    with session_factory(engine).begin() as s:
        der = registry.find_der_by_lfdi(s, lfdi)
        assert der is not None
        der.aggregator_id = aggregator_id
        for edev in s.query(EndDevice).filter(EndDevice.der_id == der.id):
            edev.aggregator_id = aggregator_id


def _wait_startup_load(server: Server) -> None:
    """Until the worker's start-up bulk load has run (so it does not run during a count)."""
    deadline = time.monotonic() + 10
    while server.app.preloads < 1:
        assert time.monotonic() < deadline, "no bulk load within 10 s of listening"
        time.sleep(0.05)


@POSTGRES_ONLY
def test_first_post_after_a_bulk_load_reads_nothing_and_changes_still_apply(
    server: Server,
) -> None:
    _wait_startup_load(server)
    lfdi = server.ids["device-2"].lfdi
    with server.client("aggregator-1") as c:
        assert c.post("/edev", content=end_device_xml(lfdi)).status_code == 201
        r = c.post("/mup", content=mirror_usage_point_xml(lfdi, START, [1]))
        assert r.status_code == 201, r.text
        mup = r.headers["location"]
    app = server.app
    for cache in (app._scopes, app._mup_owners, app._mmr_refs):
        cache.clear()  # as in a worker that just started
    assert app.preload_access() >= 3  # a scope, an owner and a reading type at least
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(server.engine, "before_cursor_execute", count)
    try:
        with server.client("aggregator-1") as c:
            r = c.post(mup, content=mirror_meter_reading_xml(START + 300, [2]))
    finally:
        event.remove(server.engine, "before_cursor_execute", count)
    assert r.status_code == 201, r.text
    # the pg_notify of settle() and the writer's upsert; no owner or reading-type lookup
    lookups = [s for s in seen if "sep2_mirror_usage_point" in s or "aggregator" in s.lower()]
    assert lookups == [], lookups
    assert any("sep2_reading" in s for s in seen)

    _move_der(server.engine, lfdi, server.registry.aggregator_ids["aggregator-2"])
    with server.client("aggregator-1") as c:  # settles: the notifications have arrived
        r = c.post(mup, content=mirror_meter_reading_xml(START + 600, [3]))
    assert r.status_code == 403, r.text
    with server.client("aggregator-2") as c:
        r = c.post(mup, content=mirror_meter_reading_xml(START + 600, [3]))
    assert r.status_code == 201, r.text


def test_bulk_load_lists_what_single_lookups_give(server: Server) -> None:
    """Every bulk-loaded fact equals the one-by-one lookup (scopes, owners, reading types)."""
    lfdi = server.ids["device-3"].lfdi
    with server.client("aggregator-1") as c:
        assert c.post("/edev", content=end_device_xml(lfdi)).status_code == 201
        assert c.post("/mup", content=mirror_usage_point_xml(lfdi, START, [1])).status_code == 201
    with session_factory(server.engine).begin() as s:
        scopes = manager.all_scopes(s, 1000)
        known = {
            i.lfdi
            for i in server.ids.values()
            if not isinstance(manager.resolve_scope(s, i.lfdi), CertificateScope)
        }
        assert len(known) >= 3  # aggregators and devices of the test registry
        assert {k for k, _ in scopes} == known
        for key, scope in scopes:
            assert manager.resolve_scope(s, key) == scope
        owners = manager.all_mup_owners(s, 1000)
        assert owners
        for o in owners:
            assert tuple(manager.mirror_usage_point_owner(s, o.id)) == tuple(o)
        refs = manager.all_meter_reading_refs(s, 1000)
        assert refs
        for mup_id, mrid, ref in refs:
            assert manager.meter_reading_ref(s, mup_id, mrid) == ref
        assert len(manager.all_mup_owners(s, 0)) == 0  # the bound holds


# ---- two worker processes, started after the fleet exists -------------------------------------
@pytest.fixture
def fleet_then_two_workers(
    engine: Engine, pki: tuple[TlsFiles, dict[str, ClientIdentity]]
) -> Iterator[tuple[str, Engine, dict[str, ClientIdentity], int]]:
    """device-2 registered behind aggregator-1 with its MirrorUsagePoint before the server
    starts, so each worker bulk-loads its facts at start."""
    files, ids = pki
    reg = seed_registry(engine, ids)
    agg = ids["aggregator-1"]
    scope = AggregatorScope(
        lfdi=agg.lfdi, sfdi=agg.sfdi, aggregator_id=reg.aggregator_ids["aggregator-1"]
    )
    lfdi = ids["device-2"].lfdi
    reading = manager.MeterReadingInput(
        mrid="0700006CC8000000000000000000ABCD", description="active power", uom=38, kind=37,
        flow_direction=1, phase=0, data_qualifier=2, power_of_ten=3, interval_length_s=300,
        readings=(),
    )  # fmt: skip
    with session_factory(engine).begin() as s:
        manager.register_end_device(
            s, scope, manager.EndDeviceInput(lfdi=lfdi, sfdi=ids["device-2"].sfdi), T0
        )
        mup, _ = manager.upsert_mirror_usage_point(
            s, scope, device_lfdi=lfdi, mrid="0600006CC8000000000000000000ABCD",
            description="site power", role_flags="49", service_category=0, status=1,
            post_rate_s=300, meter_readings=(reading,), now=T0,
        )  # fmt: skip
        mup_id = mup.id
    with serve_two_workers(engine, files, ids) as base:
        yield base, engine, ids, mup_id


@POSTGRES_ONLY
def test_two_workers_apply_an_ownership_change_made_after_their_bulk_load(
    fleet_then_two_workers: tuple[str, Engine, dict[str, ClientIdentity], int],
    pki: tuple[TlsFiles, dict[str, ClientIdentity]],
) -> None:
    base, engine, ids, mup_id = fleet_then_two_workers
    files, _ = pki
    old = [_client(base, files, ids["aggregator-1"]) for _ in range(8)]  # both workers
    new = [_client(base, files, ids["aggregator-2"]) for _ in range(8)]
    try:
        for i, c in enumerate(old):
            r = c.post(f"/mup/{mup_id}", content=mirror_meter_reading_xml(START + 300 * i, [i]))
            assert r.status_code == 201, r.text
        for c in new:
            r = c.post(f"/mup/{mup_id}", content=mirror_meter_reading_xml(START, [9]))
            assert r.status_code == 403, r.text
        with session_factory(engine).begin() as s:
            agg2 = registry.find_aggregator_by_lfdi(s, ids["aggregator-2"].lfdi)
            assert agg2 is not None
            agg2_id = agg2.id
        _move_der(engine, ids["device-2"].lfdi, agg2_id)
        time.sleep(NOTIFICATION_WAIT_S)
        for c in old:
            r = c.post(f"/mup/{mup_id}", content=mirror_meter_reading_xml(START, [9]))
            assert r.status_code == 403, r.text
        for i, c in enumerate(new):
            r = c.post(f"/mup/{mup_id}", content=mirror_meter_reading_xml(START + 300 * i, [i]))
            assert r.status_code == 201, r.text
    finally:
        for c in old + new:
            c.close()


@POSTGRES_ONLY
def test_first_poll_after_a_bulk_load_reads_nothing_and_changes_still_apply(
    server: Server,
) -> None:
    """A first DERControlList poll answered from the bulk-loaded rows is byte for byte the
    database's answer, runs no statement, and a control added after the load shows at once."""
    _wait_startup_load(server)
    server.clock.fixed = T0
    edev_id = _device(server.engine, server.ids, "device-2")
    progs = _programs(server.engine, edev_id)
    site = f"/edev/{edev_id}/derp/{progs[SITE_PROGRAM_KEY]}/derc"
    ops = f"/edev/{edev_id}/derp/{progs[manager.OPS_PROGRAM_KEY]}/derc"
    app = server.app
    with server.client("aggregator-1") as c:
        from_db = {h: c.get(h, params={"l": 10}).content for h in (site, ops)}
    app._derc_hot.clear()
    app._derc_cache.clear()
    assert app.preload_access() > 0
    assert (edev_id, progs[SITE_PROGRAM_KEY]) in app._derc_pre
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    with server.client("aggregator-1") as c:  # settles before the count starts
        event.listen(server.engine, "before_cursor_execute", count)
        try:
            first = {h: c.get(h, params={"l": 10}).content for h in (site, ops)}
        finally:
            event.remove(server.engine, "before_cursor_execute", count)
    assert first == from_db
    assert seen == []
    with session_factory(server.engine).begin() as s:
        ctrl = manager.create_control(
            s, end_device_id=edev_id, der_program_id=progs[manager.OPS_PROGRAM_KEY],
            start=T0 + H, duration_s=600, now=T0, exp_lim_w=1000,
        )  # fmt: skip
        mrid = ctrl.mrid
    app._derc_hot.clear()  # as for a first poll: only the bulk-loaded rows are left
    with server.client("aggregator-1") as c:
        r = c.get(ops, params={"l": 10})
    assert r.status_code == 200
    assert mrid in r.text
    with server.client("aggregator-3" if "aggregator-3" in server.ids else "device-1") as c:
        assert c.get(site, params={"l": 10}).status_code == 403
