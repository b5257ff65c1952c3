"""Identity and scope: every cross-access is 403 and logged (issue 4); LFDIs compare
case-insensitively; a client without a certificate never gets an HTTP answer."""

from __future__ import annotations

import datetime as dt
import logging
import ssl

import httpx
import pytest

from tests.sep2.conftest import Server
from tests.sep2.docs import (
    der_capability_xml,
    end_device_xml,
    mirror_usage_point_xml,
    response_xml,
    subscription_xml,
)


def register(server: Server, cert: str, device: str) -> str:
    with server.client(cert) as c:
        r = c.post("/edev", content=end_device_xml(server.ids[device].lfdi))
        assert r.status_code in (201, 204), r.text
        return str(r.headers["location"])


@pytest.fixture
def hrefs(server: Server) -> dict[str, str]:
    """EndDevice hrefs: device-1 (itself), device-2/3 (aggregator-1), device-4 (aggregator-2)."""
    return {
        "device-1": register(server, "device-1", "device-1"),
        "device-2": register(server, "aggregator-1", "device-2"),
        "device-3": register(server, "aggregator-1", "device-3"),
        "device-4": register(server, "aggregator-2", "device-4"),
    }


def _denied(r: httpx.Response) -> None:
    assert r.status_code == 403, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    assert b"<Error" in r.content


CROSS_READS = [
    # (certificate, device it must not see)
    ("device-1", "device-2"),
    ("device-2", "device-1"),
    ("device-2", "device-3"),  # a DER behind an aggregator still sees only itself
    ("aggregator-1", "device-1"),  # a direct device is not the aggregator's
    ("aggregator-1", "device-4"),  # another aggregator's device
    ("aggregator-2", "device-2"),
    ("stranger", "device-1"),  # a valid certificate the registry does not know
]
SUFFIXES = ["", "/rg", "/fsa", "/fsa/1", "/derp", "/der", "/der/1", "/der/1/ders", "/sub"]


@pytest.mark.parametrize(("cert", "target"), CROSS_READS)
def test_cross_reads_are_403_and_logged(
    server: Server,
    hrefs: dict[str, str],
    cert: str,
    target: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="gridflex.sep2.access")
    with server.client(cert) as c:
        for suffix in SUFFIXES:
            _denied(c.get(hrefs[target] + suffix))
        _denied(c.put(hrefs[target] + "/der/1/dercap", content=der_capability_xml()))
        _denied(c.post(hrefs[target] + "/sub", content=subscription_xml(hrefs[target] + "/derp")))
        listed = c.get("/edev", params={"l": 100}).text
        assert server.ids[target].lfdi.upper() not in listed
    denials = [r for r in caplog.records if r.name == "gridflex.sep2.access"]
    assert len(denials) >= len(SUFFIXES) + 2
    assert all(server.ids[cert].lfdi in r.getMessage() for r in denials)


@pytest.mark.parametrize(
    ("cert", "device"),
    [
        ("device-1", "device-2"),  # a device registers only itself
        ("aggregator-2", "device-2"),  # not aggregator-2's DER
        ("aggregator-1", "device-1"),  # a direct DER is no aggregator's
        ("aggregator-1", "stranger"),  # unknown to the registry
    ],
)
def test_cross_registration_is_403(server: Server, cert: str, device: str) -> None:
    with server.client(cert) as c:
        _denied(c.post("/edev", content=end_device_xml(server.ids[device].lfdi)))


def test_cross_telemetry_responses_and_subscriptions_are_403(
    server: Server, hrefs: dict[str, str]
) -> None:
    start = int(dt.datetime.now(dt.UTC).timestamp()) // 300 * 300
    d2 = server.ids["device-2"].lfdi
    with server.client("aggregator-1") as c:
        r = c.post("/mup", content=mirror_usage_point_xml(d2, start, [1]))
        assert r.status_code == 201, r.text
        mup = r.headers["location"]
        derc = c.get(hrefs["device-2"] + "/derp/1/derc").text
    subject = derc.split("<mRID>")[1].split("</mRID>")[0]
    with server.client("aggregator-2") as c:
        _denied(c.post("/mup", content=mirror_usage_point_xml(d2, start, [1])))
        _denied(c.get(mup))
        _denied(
            c.post(
                mup,
                content=b'<MirrorMeterReading xmlns="urn:ieee:std:2030.5:ns">'
                b"<mRID>01</mRID></MirrorMeterReading>",
            )
        )
        assert 'all="0" results="0"' in c.get("/mup", params={"l": 10}).text
        _denied(c.post("/rsps/derc/rsp", content=response_xml(d2, subject, 1, start)))
    with server.client("device-1") as c:
        _denied(c.post(hrefs["device-1"] + "/sub", content=subscription_xml(hrefs["device-2"])))
    with server.client("aggregator-1") as c:  # the rightful owner may do all of it
        r = c.post("/rsps/derc/rsp", content=response_xml(d2, subject, 1, start))
        assert r.status_code == 201, r.text


def test_lfdi_compares_case_insensitively(server: Server) -> None:
    ident = server.ids["device-1"]
    with server.client("device-1") as c:
        r1 = c.post("/edev", content=end_device_xml(ident.lfdi.upper()))
        r2 = c.post("/edev", content=end_device_xml(ident.lfdi.lower()))
        assert (r1.status_code, r2.status_code) == (201, 204)
        assert r1.headers["location"] == r2.headers["location"]
        start = int(dt.datetime.now(dt.UTC).timestamp()) // 300 * 300
        r = c.post("/mup", content=mirror_usage_point_xml(ident.lfdi.lower(), start, [3]))
        assert r.status_code == 201, r.text
        # the EndDevice is listed with the upper-case LFDI clients expect
        assert f"<lFDI>{ident.lfdi.upper()}</lFDI>" in c.get("/edev").text
    # the registry held the aggregator's LFDI upper-case; its certificate is still recognised
    with server.client("aggregator-1") as c:
        r = c.post("/edev", content=end_device_xml(server.ids["device-2"].lfdi.lower()))
        assert r.status_code == 201, r.text


def test_sfdi_must_match_the_lfdi(server: Server) -> None:
    ident = server.ids["device-1"]
    with server.client("device-1") as c:
        r = c.post("/edev", content=end_device_xml(ident.lfdi, ident.sfdi + 1))
        assert r.status_code == 400
        assert "check digit" in r.text
        other = server.ids["device-2"].sfdi
        r = c.post("/edev", content=end_device_xml(ident.lfdi, other))
        assert r.status_code == 400
        assert "does not belong" in r.text


def test_client_without_certificate_is_refused_at_tls(server: Server) -> None:
    ctx = ssl.create_default_context(cafile=str(server.files.ca_cert))
    with pytest.raises((httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError)):
        httpx.get(server.url + "/dcap", verify=ctx)


def test_certificate_from_another_ca_is_refused(server: Server, tmp_path: object) -> None:
    from pathlib import Path

    from gridflex.sep2.certs import ensure_test_pki

    _, other = ensure_test_pki(Path(str(tmp_path)) / "other", clients=(("rogue", "device"),))
    ctx = ssl.create_default_context(cafile=str(server.files.ca_cert))
    ctx.load_cert_chain(str(other[0].cert), str(other[0].key))
    with pytest.raises((httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError)):
        httpx.get(server.url + "/dcap", verify=ctx)


def test_device_and_its_aggregator_share_its_end_device(server: Server) -> None:
    """A DER behind an aggregator may register itself; its aggregator still reaches it, and the
    device registering again does not take it away from the aggregator."""
    d2 = server.ids["device-2"]
    with server.client("device-2") as c:
        r = c.post("/edev", content=end_device_xml(d2.lfdi))
        assert r.status_code == 201, r.text
        href = r.headers["location"]
    with server.client("aggregator-1") as c:
        assert c.get(href).status_code == 200
        assert c.post("/edev", content=end_device_xml(d2.lfdi)).status_code == 204
    with server.client("device-2") as c:
        assert c.post("/edev", content=end_device_xml(d2.lfdi)).status_code == 204
        assert c.get(href).status_code == 200
    with server.client("aggregator-1") as c:
        assert c.get(href).status_code == 200
    with server.client("aggregator-2") as c:
        _denied(c.get(href))
