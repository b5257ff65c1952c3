"""End to end over real mutual TLS on loopback, on SQLite and PostgreSQL (issue 4)."""

from __future__ import annotations

import datetime as dt
import itertools

from envoy_schema.server.schema.sep2.end_device import RegistrationResponse
from envoy_schema.server.schema.sep2.time import TimeResponse

from gridflex.derms.db import session_factory
from gridflex.sep2 import manager
from gridflex.sep2.identity import sfdi_from_lfdi
from tests.sep2.client import get, walk
from tests.sep2.conftest import TERMS, Server


def end_device_xml(lfdi: str, sfdi: int | None = None) -> bytes:
    sfdi = sfdi_from_lfdi(lfdi) if sfdi is None else sfdi
    return (
        '<EndDevice xmlns="urn:ieee:std:2030.5:ns">'
        f"<lFDI>{lfdi.upper()}</lFDI><sFDI>{sfdi}</sFDI><changedTime>0</changedTime>"
        "</EndDevice>"
    ).encode()


def mirror_meter_reading_xml(start: int, values: list[int], *, root: bool = True) -> bytes:
    """A MirrorMeterReading of 5-minute active power readings in kW (W x 10^3)."""
    readings = "".join(
        f"<Reading><timePeriod><duration>300</duration><start>{start + 300 * i}</start>"
        f"</timePeriod><value>{v}</value></Reading>"
        for i, v in enumerate(values)
    )
    ns = ' xmlns="urn:ieee:std:2030.5:ns"' if root else ""
    return (
        f"<MirrorMeterReading{ns}><mRID>0700006CC8000000000000000000ABCD</mRID>"
        "<description>active power</description>"
        "<MirrorReadingSet><mRID>0800006CC8000000000000000000ABCD</mRID>"
        f"<timePeriod><duration>{300 * len(values)}</duration><start>{start}</start></timePeriod>"
        f"{readings}</MirrorReadingSet>"
        "<ReadingType><accumulationBehaviour>12</accumulationBehaviour><commodity>1</commodity>"
        "<dataQualifier>2</dataQualifier><flowDirection>1</flowDirection><intervalLength>300"
        "</intervalLength><kind>37</kind><phase>0</phase><powerOfTenMultiplier>3"
        "</powerOfTenMultiplier><uom>38</uom></ReadingType>"
        "</MirrorMeterReading>"
    ).encode()


def mirror_usage_point_xml(lfdi: str, start: int, values: list[int]) -> bytes:
    return (
        b'<MirrorUsagePoint xmlns="urn:ieee:std:2030.5:ns">'
        b"<mRID>0600006CC8000000000000000000ABCD</mRID><description>site power</description>"
        b"<roleFlags>49</roleFlags><serviceCategoryKind>0</serviceCategoryKind><status>1</status>"
        + f"<deviceLFDI>{lfdi.upper()}</deviceLFDI>".encode()
        + mirror_meter_reading_xml(start, values, root=False)
        + b"</MirrorUsagePoint>"
    )


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
        assert view.export_limit_w_at(now) == TERMS["c-1"].export_limit_kw * 1000
        # the fallback (DefaultDERControl) is the terms' fallback
        assert view.default is not None
        assert view.default.DERControlBase_.opModExpLimW is not None
        assert view.default.DERControlBase_.opModExpLimW.value == 100_000
        assert view.default.DERControlBase_.opModImpLimW is not None
        assert view.default.DERControlBase_.opModImpLimW.value == 50_000
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

    with session_factory(server.engine)() as s:
        rows = manager.readings_for_der(s, server.registry.der_ids["device-1"])
    assert [(uom, t.timestamp(), v) for _, uom, t, v in rows] == [
        (38, start, 12_000.0),
        (38, start + 300, 15_000.0),
        (38, start + 600, -3_000.0),
        (38, start + 900, 7_000.0),
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
