"""Event lifecycle as field clients expect it (IEEE 2030.5-2018 clause 12.1.3; issue 4):
supersede and cancel statuses, retention until the original end, recorded Responses, terms
published as bounded controls, and a silent client that runs out of events applying its default."""

from __future__ import annotations

import datetime as dt
import itertools

from envoy_schema.server.schema.sep2 import der as der_schema

from gridflex.derms import registry
from gridflex.derms.db import session_factory
from gridflex.sep2 import manager
from gridflex.sep2.persistence import EndDevice
from gridflex.terms import ConnectionTerms
from tests.sep2.client import get, walk
from tests.sep2.conftest import TERMS, Server
from tests.sep2.docs import end_device_xml, response_xml

T0 = dt.datetime(2026, 7, 1, 15, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def _register(server: Server, cert: str, device: str) -> int:
    with server.client(cert) as c:
        r = c.post("/edev", content=end_device_xml(server.ids[device].lfdi))
        assert r.status_code == 201, r.text
        return int(r.headers["location"].rsplit("/", 1)[1])


def _statuses(server: Server, cert: str, href: str) -> dict[str, tuple[int, bool]]:
    """mRID -> (currentStatus, potentiallySuperseded) of every listed control."""
    with server.client(cert) as c:
        lst = get(c, href, der_schema.DERControlListResponse, l=100)
    assert isinstance(lst, der_schema.DERControlListResponse)
    return {
        d.mRID: (d.EventStatus_.currentStatus, d.EventStatus_.potentiallySuperseded)
        for d in lst.DERControl or []
    }


def test_supersede_cancel_and_retention(server: Server) -> None:
    server.clock.fixed = T0
    edev_id = _register(server, "device-1", "device-1")
    with session_factory(server.engine).begin() as s:
        edev = s.get(EndDevice, edev_id)
        assert edev is not None
        progs = manager.programs_for(s, edev)
        derp_id = next(p.id for p in progs if p.program_id == server.registry.program_id)
        a = manager.create_control(
            s, end_device_id=edev_id, der_program_id=derp_id, start=T0 + H, duration_s=7200,
            now=T0, exp_lim_w=50_000,
        )  # fmt: skip
        a_mrid = a.mrid
    href = f"/edev/{edev_id}/derp/{derp_id}/derc"
    assert _statuses(server, "device-1", href) == {a_mrid: (0, False)}  # Scheduled

    with session_factory(server.engine).begin() as s:
        b = manager.create_control(
            s, end_device_id=edev_id, der_program_id=derp_id, start=T0 + 2 * H, duration_s=7200,
            now=T0 + dt.timedelta(minutes=5), exp_lim_w=30_000,
        )  # fmt: skip
        b_id, b_mrid = b.id, b.mrid
        # a different control (connect) overlapping does not supersede the export limits
        manager.create_control(
            s, end_device_id=edev_id, der_program_id=derp_id, start=T0 + 2 * H, duration_s=600,
            now=T0 + dt.timedelta(minutes=5), connect=True,
        )  # fmt: skip
    server.clock.fixed = T0 + 90 * dt.timedelta(minutes=1)
    st = _statuses(server, "device-1", href)
    assert st[a_mrid] == (1, True)  # Active, potentially superseded
    assert st[b_mrid] == (0, False)

    server.clock.fixed = T0 + 2 * H + dt.timedelta(seconds=1)
    st = _statuses(server, "device-1", href)
    assert st[a_mrid] == (4, False)  # Superseded from B's start, still listed
    assert st[b_mrid] == (1, False)

    with session_factory(server.engine).begin() as s:
        manager.cancel_control(s, b_id, T0 + 150 * dt.timedelta(minutes=1))
    server.clock.fixed = T0 + 170 * dt.timedelta(minutes=1)
    st = _statuses(server, "device-1", href)
    assert st[b_mrid] == (2, False)  # Cancelled, listed until its original end
    assert st[a_mrid] == (4, False)
    with server.client("device-1") as c:
        act = get(c, f"/edev/{edev_id}/derp/{derp_id}/actderc", der_schema.DERControlListResponse)
    assert isinstance(act, der_schema.DERControlListResponse)
    assert act.all_ == 0

    server.clock.fixed = T0 + 4 * H + dt.timedelta(seconds=1)
    assert _statuses(server, "device-1", href) == {}  # both past their original end

    # a Response to B is recorded against it
    with server.client("device-1") as c:
        r = c.post(
            "/rsps/derc/rsp",
            content=response_xml(server.ids["device-1"].lfdi.upper(), b_mrid.upper(), 6, 1),
        )
        assert r.status_code == 201, r.text
    with session_factory(server.engine)() as s:
        got = manager.responses_for_control(s, b_id)
    assert [(x.status, x.end_device_lfdi) for x in got] == [(6, server.ids["device-1"].lfdi)]


def test_back_to_back_controls_leave_no_gap(server: Server) -> None:
    server.clock.fixed = T0
    _register(server, "aggregator-1", "device-2")
    with server.client("aggregator-1") as c:
        _, view = walk(c, lfdi=server.ids["device-2"].lfdi)
    spans = sorted(
        (d.interval.start, d.interval.start + d.interval.duration) for d in view.controls
    )
    assert len(spans) > 2  # the schedule changes at 10:00 and 18:00 local
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert spans[0][0] <= T0.timestamp()
    assert spans[-1][1] >= (T0 + 24 * H).timestamp()


def test_silent_client_follows_schedule_then_default(server: Server) -> None:
    """The device reads once at T0 and then loses contact: it follows the published schedule
    until the events run out, then applies DefaultDERControl (the terms' fallback)."""
    server.clock.fixed = T0
    _register(server, "aggregator-1", "device-2")
    with server.client("aggregator-1") as c:
        _, view = walk(c, lfdi=server.ids["device-2"].lfdi)
    terms = TERMS["c-2"]
    last_end = max(d.interval.start + d.interval.duration for d in view.controls)
    last = dt.datetime.fromtimestamp(last_end, dt.UTC)
    assert last - T0 >= 24 * H
    for t in [T0 + k * dt.timedelta(minutes=30) for k in range(int((last - T0) / H) * 2)]:
        assert view.export_limit_w_at(t) == terms.export_limit_kw_at([t])[0] * 1000, t
    after = last + dt.timedelta(seconds=1)
    # the terms' fallback (80 kW) is below every schedule value: the switch is visible
    assert view.export_limit_w_at(after) == 80_000
    assert view.export_limit_w_at(after - dt.timedelta(seconds=2)) in (120_000, 200_000)


def test_terms_change_cancels_future_and_supersedes_running(server: Server) -> None:
    server.clock.fixed = T0
    edev_id = _register(server, "device-1", "device-1")
    with server.client("device-1") as c:
        _, before = walk(c, lfdi=server.ids["device-1"].lfdi)
    old = {d.mRID for d in before.controls}
    new_terms = ConnectionTerms(
        connection_id="c-1", nameplate_kw=500, export_limit_kw=300, fallback_export_kw=100,
        fallback_import_kw=50, agreed_at="2026-06-30T00:00:00Z",
    )  # fmt: skip
    with session_factory(server.engine).begin() as s:
        registry.add_terms(s, new_terms, actor="test")
    server.clock.fixed = T0 + H
    with server.client("device-1") as c:
        _, after = walk(c, lfdi=server.ids["device-1"].lfdi)
    by_mrid = {d.mRID: d for d in after.controls}
    running = [by_mrid[m] for m in old if m in by_mrid]
    assert running
    assert all(d.EventStatus_.currentStatus in (2, 4) for d in running)
    now = T0 + H + dt.timedelta(seconds=1)
    assert after.export_limit_w_at(now) == 300_000
    assert edev_id > 0


def test_control_bounds_are_checked(server: Server) -> None:
    import pytest

    from gridflex.errors import InputError

    edev_id = _register(server, "device-1", "device-1")
    bad = [
        {"duration_s": 0, "exp_lim_w": 1.0},
        {"duration_s": 8 * 86400, "exp_lim_w": 1.0},
        {"duration_s": 60, "exp_lim_w": -5.0},
        {"duration_s": 60},
        {"duration_s": 60, "exp_lim_w": 1.0, "randomize_start_s": 7200},
    ]
    for kwargs in bad:
        with session_factory(server.engine).begin() as s, pytest.raises(InputError):
            manager.create_control(
                s, end_device_id=edev_id, der_program_id=1, start=T0, now=T0,
                **kwargs,  # type: ignore[arg-type]
            )  # fmt: skip
