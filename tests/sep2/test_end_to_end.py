"""End to end over real mutual TLS on loopback, on SQLite and PostgreSQL (issue 4)."""

from __future__ import annotations

import datetime as dt
import itertools

from envoy_schema.server.schema.sep2.end_device import RegistrationResponse
from envoy_schema.server.schema.sep2.time import TimeResponse

from gridflex.derms.db import session_factory
from gridflex.sep2 import manager
from gridflex.sep2.app import watts_of
from tests.sep2.client import get, walk
from tests.sep2.conftest import TERMS, Server
from tests.sep2.docs import end_device_xml, mirror_meter_reading_xml, mirror_usage_point_xml


def test_device_registers_walks_reads_limits_and_posts_telemetry(server: Server) -> None:
    ident = server.ids["device-1"]
    with server.client("device-1") as c:
        tm = get(c, "/tm", TimeResponse)
        assert isinstance(tm, TimeResponse)
        assert abs(tm.currentTime - dt.datetime.now(dt.UTC).timestamp()) < 5

        r = c.post("/edev", content=end_device_xml(ident.lfdi))
        assert r.status_code == 201, r.text
        href = r.headers["location"]
        reg = get(c, href + "/rg", RegistrationResponse)
        assert isinstance(reg, RegistrationResponse)

        edev, view = walk(c, lfdi=ident.lfdi)
        assert edev.href == href
        assert edev.sFDI == ident.sfdi
        now = dt.datetime.now(dt.UTC)
        # the limit the device reads is the registry's terms: 250 kW static export limit
        static_kw = TERMS["c-1"].export_limit_kw
        assert static_kw is not None
        assert view.export_limit_w_at(now) == static_kw * 1000
        # the fallback (DefaultDERControl) is the terms' fallback
        assert view.default is not None
        assert view.default.DERControlBase_.opModExpLimW is not None
        assert watts_of(view.default.DERControlBase_.opModExpLimW) == 100_000
        assert view.default.DERControlBase_.opModImpLimW is not None
        assert watts_of(view.default.DERControlBase_.opModImpLimW) == 50_000
        # published controls cover at least the next 24 h, back to back
        ends = sorted(
            (x.interval.start, x.interval.start + x.interval.duration) for x in view.controls
        )
        assert ends[0][0] <= now.timestamp()
        assert ends[-1][1] >= now.timestamp() + 24 * 3600
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ends))

        start = int(now.timestamp()) // 300 * 300 - 900
        r = c.post("/mup", content=mirror_usage_point_xml(ident.lfdi, start, [12, 15, -3]))
        assert r.status_code == 201, r.text
        mup_href = r.headers["location"]
        # posting the same readings again is idempotent; a new one is added
        r = c.post(mup_href, content=mirror_meter_reading_xml(start + 600, [-3, 7]))
        assert r.status_code == 201, r.text
        # routine posts (same reading type) and one that changes the multiplier (kW -> W)
        r = c.post(mup_href, content=mirror_meter_reading_xml(start + 1200, [9]))
        assert r.status_code == 201, r.text
        in_watts = mirror_meter_reading_xml(start + 1500, [4500]).replace(
            b"<powerOfTenMultiplier>3", b"<powerOfTenMultiplier>0"
        )
        r = c.post(mup_href, content=in_watts)
        assert r.status_code == 201, r.text
        r = c.post(mup_href, content=mirror_meter_reading_xml(start + 1800, [5]))
        assert r.status_code == 201, r.text

    with session_factory(server.engine)() as s:
        rows = manager.readings_for_der(s, server.registry.der_ids["device-1"])
    assert [(uom, t.timestamp(), v) for _, uom, t, v in rows] == [
        (38, start, 12_000.0),
        (38, start + 300, 15_000.0),
        (38, start + 600, -3_000.0),
        (38, start + 900, 7_000.0),
        (38, start + 1200, 9_000.0),
        (38, start + 1500, 4_500.0),
        (38, start + 1800, 5_000.0),
    ]


def test_aggregator_registers_its_devices_and_reads_their_schedule(server: Server) -> None:
    d2 = server.ids["device-2"]
    with server.client("aggregator-1") as c:
        for name in ("device-2", "device-3"):
            r = c.post("/edev", content=end_device_xml(server.ids[name].lfdi))
            assert r.status_code == 201, r.text
        _, view = walk(c, lfdi=d2.lfdi)
    # c-2's schedule: 120 kW from 10:00 to 18:00 local (America/Chicago), 200 kW otherwise
    terms = TERMS["c-2"]
    now = dt.datetime.now(dt.UTC)
    for h in range(0, 24, 1):
        t = now + dt.timedelta(hours=h)
        assert view.export_limit_w_at(t) == float(terms.export_limit_kw_at([t])[0]) * 1000
