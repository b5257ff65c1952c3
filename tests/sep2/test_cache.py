"""The rendered-DERControlList cache never shows a stale or foreign list: a new control, a
cancellation, a new terms version and the clock passing an event boundary are all visible on the
next poll at the same instant; a list cached for one certificate is not served to another."""

from __future__ import annotations

import datetime as dt

from envoy_schema.server.schema.sep2 import der as der_schema
from sqlalchemy import Engine

from gridflex.derms import registry
from gridflex.derms.db import session_factory
from gridflex.sep2 import manager
from gridflex.sep2 import xml as sepxml
from gridflex.sep2.persistence import SITE_PROGRAM_KEY, EndDevice
from gridflex.terms import ConnectionTerms
from tests.sep2.client import get
from tests.sep2.conftest import Server
from tests.sep2.docs import end_device_xml

T0 = dt.datetime(2026, 7, 1, 15, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def _register(server: Server, cert: str, device: str) -> int:
    with server.client(cert) as c:
        r = c.post("/edev", content=end_device_xml(server.ids[device].lfdi))
        assert r.status_code == 201, r.text
        return int(r.headers["location"].rsplit("/", 1)[1])


def _derp(server: Server, edev_id: int, *, site: bool) -> int:
    with session_factory(server.engine).begin() as s:  # programs_for may create the rows
        edev = s.get(EndDevice, edev_id)
        assert edev is not None
        progs = manager.programs_for(s, edev)
        key = SITE_PROGRAM_KEY if site else manager.OPS_PROGRAM_KEY  # the polling hot path's
        return next(p.id for p in progs if p.key == key)


def _poll(server: Server, cert: str, href: str) -> der_schema.DERControlListResponse:
    with server.client(cert) as c:
        lst = get(c, href, der_schema.DERControlListResponse, l=100)
    assert isinstance(lst, der_schema.DERControlListResponse)
    return lst


def _status(lst: der_schema.DERControlListResponse) -> dict[str, int]:
    return {d.mRID: d.EventStatus_.currentStatus for d in lst.DERControl or []}


def test_repeated_polls_are_identical(server: Server) -> None:
    server.clock.fixed = T0
    edev_id = _register(server, "device-1", "device-1")
    href = f"/edev/{edev_id}/derp/{_derp(server, edev_id, site=True)}/derc"
    with server.client("device-1") as c:
        first = c.get(href, params={"l": 100})
        second = c.get(href, params={"l": 100})
        none = c.get(href, params={"l": 0})
    assert first.status_code == second.status_code == none.status_code == 200
    assert first.content == second.content
    full = sepxml.validate_response(der_schema.DERControlListResponse, first.content)
    empty = sepxml.validate_response(der_schema.DERControlListResponse, none.content)
    assert full.results >= 1
    assert (empty.all_, empty.results) == (full.all_, 0)  # the query is part of the key


def test_new_and_cancelled_controls_are_visible_on_the_next_poll(server: Server) -> None:
    server.clock.fixed = T0
    edev_id = _register(server, "device-1", "device-1")
    derp_id = _derp(server, edev_id, site=False)
    href = f"/edev/{edev_id}/derp/{derp_id}/derc"
    assert _status(_poll(server, "device-1", href)) == {}
    with session_factory(server.engine).begin() as s:
        a = manager.create_control(
            s, end_device_id=edev_id, der_program_id=derp_id, start=T0 + H, duration_s=3600,
            now=T0, exp_lim_w=50_000,
        )  # fmt: skip
        a_id, a_mrid = a.id, a.mrid
    assert _status(_poll(server, "device-1", href)) == {a_mrid: 0}  # same instant: Scheduled
    with session_factory(server.engine).begin() as s:
        manager.cancel_control(s, a_id, T0)
    assert _status(_poll(server, "device-1", href)) == {a_mrid: 2}  # Cancelled


def test_event_boundaries_end_a_cached_list(server: Server) -> None:
    server.clock.fixed = T0
    edev_id = _register(server, "device-1", "device-1")
    derp_id = _derp(server, edev_id, site=False)
    href = f"/edev/{edev_id}/derp/{derp_id}/derc"
    with session_factory(server.engine).begin() as s:
        a = manager.create_control(
            s, end_device_id=edev_id, der_program_id=derp_id, start=T0 + H, duration_s=3600,
            now=T0, exp_lim_w=50_000,
        )  # fmt: skip
        a_mrid = a.mrid
    assert _status(_poll(server, "device-1", href)) == {a_mrid: 0}
    server.clock.fixed = T0 + H - dt.timedelta(seconds=1)
    assert _status(_poll(server, "device-1", href)) == {a_mrid: 0}
    server.clock.fixed = T0 + H  # the start: Active
    assert _status(_poll(server, "device-1", href)) == {a_mrid: 1}
    server.clock.fixed = T0 + 2 * H  # the end: no longer listed
    assert _status(_poll(server, "device-1", href)) == {}


def test_new_terms_version_is_visible_on_the_next_poll(server: Server) -> None:
    server.clock.fixed = T0
    edev_id = _register(server, "device-1", "device-1")
    href = f"/edev/{edev_id}/derp/{_derp(server, edev_id, site=True)}/derc"

    def active_limits_w() -> set[float]:
        lst = _poll(server, "device-1", href)
        return {
            d.DERControlBase_.opModExpLimW.value * 10.0**d.DERControlBase_.opModExpLimW.multiplier
            for d in lst.DERControl or []
            if d.EventStatus_.currentStatus == 1 and d.DERControlBase_.opModExpLimW is not None
        }

    assert active_limits_w() == {250_000}
    assert active_limits_w() == {250_000}  # served again (cached)
    new_terms = ConnectionTerms(
        connection_id="c-1", nameplate_kw=500, export_limit_kw=300, fallback_export_kw=100,
        fallback_import_kw=50, agreed_at="2026-06-30T00:00:00Z",
    )  # fmt: skip
    with session_factory(server.engine).begin() as s:
        registry.add_terms(s, new_terms, actor="test")
    assert active_limits_w() == {300_000}  # same instant, new version
    assert active_limits_w() == {300_000}


def test_a_cached_list_is_not_served_to_another_certificate(server: Server) -> None:
    server.clock.fixed = T0
    edev_id = _register(server, "aggregator-1", "device-2")
    href = f"/edev/{edev_id}/derp/{_derp(server, edev_id, site=True)}/derc"
    with server.client("aggregator-1") as c:
        assert c.get(href, params={"l": 100}).status_code == 200
        owner = c.get(href, params={"l": 100})  # served from the cache
    assert owner.status_code == 200
    # the closing tag: the opening one carries attributes, so "<DERControl>" never occurs
    assert b"</DERControl>" in owner.content
    for other in ("aggregator-2", "device-1", "stranger"):
        with server.client(other) as c:
            r = c.get(href, params={"l": 100})
        assert r.status_code in (403, 404), (other, r.status_code)
        assert b"</DERControl>" not in r.content


def test_program_rows_known_to_an_engine_are_known_to_its_copies(engine: Engine) -> None:
    """The polling hot path reads through the engine's autocommit copy on PostgreSQL; it must
    see the programs the full path loaded, or every poll falls back to the full path."""
    with session_factory(engine).begin() as s:
        site = manager._site_program(s)
    copy = engine.execution_options(logging_token="copy")
    with session_factory(copy)() as s:
        assert site in manager.cached_programs(s)


def test_hot_path_rows_are_the_listed_controls(server: Server) -> None:
    """:func:`manager.listed_control_rows` (prebuilt Core statement) lists exactly the controls
    :func:`manager.listed_controls` (ORM) lists, in the same order, with and without
    ``active_only``: ended ones dropped, cancelled and superseded ones kept until their end."""
    server.clock.fixed = T0
    edev_id = _register(server, "device-1", "device-1")
    derp_id = _derp(server, edev_id, site=False)
    with session_factory(server.engine).begin() as s:
        for k, (start, dur) in enumerate(
            [(T0 - 3 * H, 3600), (T0 - H, 7200), (T0 + H, 600), (T0 + H, 900), (T0 - H, 60)]
        ):
            c = manager.create_control(
                s, end_device_id=edev_id, der_program_id=derp_id, start=start, duration_s=dur,
                now=T0 - 4 * H, exp_lim_w=1000.0 * (k + 1),
            )  # fmt: skip
            if k == 2:
                manager.cancel_control(s, c.id, T0)
    for now in (T0, T0 + H + dt.timedelta(seconds=1), T0 + 3 * H):
        for active_only in (False, True):
            with session_factory(server.engine).begin() as s:
                edev = s.get(EndDevice, edev_id)
                assert edev is not None
                prog = next(p for p in manager.programs_for(s, edev) if p.id == derp_id)
                orm = manager.listed_controls(s, edev, prog, now, active_only=active_only)
                core = manager.listed_control_rows(
                    s, edev_id, derp_id, now, active_only=active_only
                )
                assert [c.id for c in core] == [c.id for c in orm], (now, active_only)
                assert [(c.start, c.cancelled_at, c.superseded_at) for c in core] == [
                    (c.start, c.cancelled_at, c.superseded_at) for c in orm
                ]
    with session_factory(server.engine).begin() as s:
        assert len(manager.listed_control_rows(s, edev_id, derp_id, T0)) >= 3
