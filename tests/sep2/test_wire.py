"""XML on the wire: hostile documents refused (entity expansion, external entities, huge), schema
validation errors named, list paging (s, l, a; all/results), CSIP-AUS v1.2 and v1.3 namespaces,
DER information written by clients, subscriptions."""

from __future__ import annotations

import datetime as dt

import pytest
from envoy_schema.server.schema.sep2 import der as der_schema
from envoy_schema.server.schema.sep2.end_device import EndDeviceListResponse
from envoy_schema.server.schema.sep2.pub_sub import SubscriptionListResponse

from gridflex.sep2 import xml as sepxml
from gridflex.sep2.identity import lfdi_from_certificate, sfdi_from_lfdi, sfdi_is_valid
from tests.sep2.client import get
from tests.sep2.conftest import Server
from tests.sep2.docs import der_capability_xml, end_device_xml, subscription_xml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<EndDevice xmlns="urn:ieee:std:2030.5:ns"><lFDI>&lol4;</lFDI><sFDI>1</sFDI>
<changedTime>0</changedTime></EndDevice>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<EndDevice xmlns="urn:ieee:std:2030.5:ns"><lFDI>&xxe;</lFDI><sFDI>1</sFDI>
<changedTime>0</changedTime></EndDevice>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote; ]>
<EndDevice xmlns="urn:ieee:std:2030.5:ns"><sFDI>1</sFDI><changedTime>0</changedTime></EndDevice>"""


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, EXTERNAL_ENTITY, PARAMETER_ENTITY])
def test_entities_and_dtds_are_refused(server: Server, doc: bytes) -> None:
    with server.client("device-1") as c:
        r = c.post("/edev", content=doc)
    assert r.status_code == 400
    assert "DTD" in r.text
    assert "root:" not in r.text  # nothing of /etc/passwd leaked


def test_huge_documents_are_refused(server: Server) -> None:
    filler = b"<description>" + b"x" * 300_000 + b"</description>"
    big = end_device_xml(server.ids["device-1"].lfdi).replace(
        b"</EndDevice>", filler + b"</EndDevice>"
    )
    with server.client("device-1") as c:
        r = c.post("/edev", content=big)  # over the XML limit, under the body limit
        assert r.status_code == 413
        assert "byte limit" in r.text
        r = c.post("/edev", content=b"<a>" + b"y" * 2_000_000 + b"</a>")  # over the body limit
        assert r.status_code == 413


def test_oversized_header_blocks_are_refused(server: Server) -> None:
    with server.client("device-1") as c:
        r = c.get("/dcap", headers={"X-Filler": "x" * 20_000})
        assert r.status_code == 431
    with server.client("device-1") as c:  # a new connection is served normally
        assert c.get("/dcap").status_code == 200


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        (b"<EndDevice xmlns='urn:ieee:std:2030.5:ns'><sFDI>1", "malformed"),
        (b"<EndDevice><sFDI>1</sFDI><changedTime>0</changedTime></EndDevice>", "namespace"),
        (b"<Time xmlns='urn:ieee:std:2030.5:ns'/>", "expected a EndDevice"),
        (
            b"<EndDevice xmlns='urn:ieee:std:2030.5:ns'><sFDI>many</sFDI>"
            b"<changedTime>0</changedTime></EndDevice>",
            "sFDI",
        ),
        (  # unknown elements are refused, not ignored (strict validation)
            b"<EndDevice xmlns='urn:ieee:std:2030.5:ns'><sFDI>1</sFDI>"
            b"<changedTime>0</changedTime><surprise/></EndDevice>",
            "EndDevice/surprise: element not allowed here",
        ),
    ],
)
def test_invalid_documents_are_400_naming_the_problem(
    server: Server, doc: bytes, needle: str
) -> None:
    with server.client("device-1") as c:
        r = c.post("/edev", content=doc)
    assert r.status_code == 400
    assert needle in r.text


def test_xml_parser_refuses_without_the_server() -> None:
    with pytest.raises(sepxml.XmlRefusedError):
        sepxml.parse_tree(BILLION_LAUGHS)
    with pytest.raises(sepxml.XmlTooLargeError):
        sepxml.parse_tree(b"<a/>" + b" " * 100, max_bytes=50)


def test_end_device_list_paging(server: Server) -> None:
    with server.client("aggregator-1") as c:
        for name in ("device-2", "device-3"):
            assert c.post("/edev", content=end_device_xml(server.ids[name].lfdi)).status_code == 201
        lfdis = sorted(
            (server.ids[n].sfdi, server.ids[n].lfdi.upper()) for n in ("device-2", "device-3")
        )

        def page(**q: int) -> EndDeviceListResponse:
            lst = get(c, "/edev", EndDeviceListResponse, **q)
            assert isinstance(lst, EndDeviceListResponse)
            return lst

        default = page()  # l defaults to 1 (IEEE 2030.5-2018 clause 8.3.4.2)
        assert (default.all_, default.results) == (2, 1)
        first, second, beyond = page(s=0, l=1), page(s=1, l=1), page(s=2, l=1)
        assert [e.lFDI for e in first.EndDevice or []] == [lfdis[0][1]]  # ordered by sFDI
        assert [e.lFDI for e in second.EndDevice or []] == [lfdis[1][1]]
        assert (beyond.all_, beyond.results) == (2, 0)
        future = int((dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).timestamp())
        assert page(a=future, l=10).results == 0
        assert c.get("/edev", params={"l": "many"}).status_code == 400
        assert c.get("/edev", params={"s": -1}).status_code == 400


def test_derc_list_paging(server: Server) -> None:
    with server.client("aggregator-1") as c:
        r = c.post("/edev", content=end_device_xml(server.ids["device-2"].lfdi))
        href = r.headers["location"] + "/derp/1/derc"
        full = get(c, href, der_schema.DERControlListResponse, l=100)
        assert isinstance(full, der_schema.DERControlListResponse)
        n = full.all_
        assert n == len(full.DERControl or []) > 2
        starts = [d.interval.start for d in full.DERControl or []]
        assert starts == sorted(starts)  # ordered by start
        pages = [get(c, href, der_schema.DERControlListResponse, s=i, l=2) for i in range(0, n, 2)]
        joined = [d.mRID for p in pages for d in p.DERControl or []]  # type: ignore[attr-defined]
        assert joined == [d.mRID for d in full.DERControl or []]


def test_csip_aus_v12_and_v13_namespaces(server: Server) -> None:
    with server.client("device-1") as c:
        href = c.post("/edev", content=end_device_xml(server.ids["device-1"].lfdi)).headers[
            "location"
        ]
        for ns in (sepxml.CSIP_AUS_NS_V12, sepxml.CSIP_AUS_NS_V13):
            r = c.put(href + "/der/1/dercap", content=der_capability_xml(ns))
            assert r.status_code == 204, r.text
            back = c.get(href + "/der/1/dercap")
            assert back.status_code == 200
            cap = sepxml.validate_response(der_schema.DERCapability, back.content)
            assert cap.doeModesSupported == "03"
            # responses speak the deployed v1.2 namespace by default
            assert b'xmlns:csipaus="https://csipaus.org/ns"' in back.content
        derc = c.get(href + "/derp/1/derc", params={"l": 1}).content
        assert b'xmlns:csipaus="https://csipaus.org/ns"' in derc
        assert b"<csipaus:opModExpLimW>" in derc


def test_der_status_written_by_client_is_kept(server: Server) -> None:
    with server.client("device-1") as c:
        href = c.post("/edev", content=end_device_xml(server.ids["device-1"].lfdi)).headers[
            "location"
        ]
        assert c.get(href + "/der/1/ders").status_code == 404  # nothing written yet
        doc = (
            b'<DERStatus xmlns="urn:ieee:std:2030.5:ns"><genConnectStatus><dateTime>1700000000'
            b"</dateTime><value>07</value></genConnectStatus><readingTime>1700000000</readingTime>"
            b"</DERStatus>"
        )
        assert c.put(href + "/der/1/ders", content=doc).status_code == 204
        st = sepxml.validate_response(der_schema.DERStatus, c.get(href + "/der/1/ders").content)
        assert st.readingTime == 1700000000
        assert st.genConnectStatus is not None
        assert st.genConnectStatus.value == "07"
        assert c.put(href + "/der/1/nope", content=doc).status_code == 404


def test_subscriptions_and_notifications_outbox(server: Server) -> None:
    from gridflex.derms.db import session_factory
    from gridflex.sep2 import manager
    from gridflex.sep2.persistence import Notification

    with server.client("device-1") as c:
        href = c.post("/edev", content=end_device_xml(server.ids["device-1"].lfdi)).headers[
            "location"
        ]
        derc = href + "/derp/1/derc"
        r = c.post(href + "/sub", content=subscription_xml(derc))
        assert r.status_code == 201, r.text
        subs = get(c, href + "/sub", SubscriptionListResponse, l=10)
        assert isinstance(subs, SubscriptionListResponse)
        assert [s.subscribedResource for s in subs.subscriptions or []] == [derc]
        bad = c.post(href + "/sub", content=subscription_xml(derc, "http://plain.example/n"))
        assert bad.status_code == 400
    edev_id = int(href.rsplit("/", 1)[1])
    now = dt.datetime.now(dt.UTC)
    with session_factory(server.engine).begin() as s:
        manager.create_control(
            s, end_device_id=edev_id, der_program_id=1, start=now, duration_s=600, now=now,
            exp_lim_w=1000,
        )  # fmt: skip
    with session_factory(server.engine)() as s:
        queued = s.query(Notification).all()
    assert [n.resource_href for n in queued] == [derc]


def test_aggregator_subscriptions_live_on_its_own_end_device(server: Server) -> None:
    with server.client("aggregator-1") as c:
        dev = c.post("/edev", content=end_device_xml(server.ids["device-2"].lfdi)).headers[
            "location"
        ]
        agg = c.post("/edev", content=end_device_xml(server.ids["aggregator-1"].lfdi))
        assert agg.status_code == 201, agg.text
        agg_href = agg.headers["location"]
        r = c.post(agg_href + "/sub", content=subscription_xml(dev + "/derp/1/derc"))
        assert r.status_code == 201, r.text
        lst = get(c, "/edev", EndDeviceListResponse, l=10)
        assert isinstance(lst, EndDeviceListResponse)
        own = next(e for e in lst.EndDevice or [] if e.href == agg_href)
        assert own.SubscriptionListLink is not None
        assert own.SubscriptionListLink.all_ == 1
        assert own.FunctionSetAssignmentsListLink is None  # it controls nothing itself


def test_identity_known_answers(server: Server) -> None:
    # IEEE 2030.5-2018 clause 6.3.3 worked example
    assert sfdi_from_lfdi("3E4F45AB31EDFE5B67E343E5E4562E31984E23E5") == 167261211391
    assert sfdi_is_valid(167261211391)
    assert not sfdi_is_valid(167261211392)
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    ident = server.ids["device-1"]
    der = x509.load_pem_x509_certificate(ident.cert.read_bytes()).public_bytes(Encoding.DER)
    import hashlib

    assert lfdi_from_certificate(der) == hashlib.sha256(der).hexdigest()[:40] == ident.lfdi


@pytest.mark.parametrize(
    ("ns", "tag"),
    [
        (sepxml.CSIP_AUS_NS_V12, "connectionPointId"),
        (sepxml.CSIP_AUS_NS_V13, "connectionPointId"),
        (sepxml.CSIP_AUS_NS_V12, "id"),  # CSIP-AUS 1.1 clients
    ],
)
def test_csip_aus_connection_point(server: Server, ns: str, tag: str) -> None:
    from envoy_schema.server.schema.csip_aus.connection_point import ConnectionPointResponse
    from envoy_schema.server.schema.sep2.end_device import EndDeviceResponse

    with server.client("device-1") as c:
        href = c.post("/edev", content=end_device_xml(server.ids["device-1"].lfdi)).headers[
            "location"
        ]
        edev = sepxml.validate_response(EndDeviceResponse, c.get(href).content)
        assert edev.ConnectionPointLink is not None
        cp = edev.ConnectionPointLink.href
        assert c.get(cp).status_code == 404
        doc = f'<csipaus:ConnectionPoint xmlns:csipaus="{ns}"><csipaus:{tag}>NMI4407123456' \
              f"</csipaus:{tag}></csipaus:ConnectionPoint>"  # fmt: skip
        assert c.put(cp, content=doc.encode()).status_code == 204
        got = sepxml.validate_response(ConnectionPointResponse, c.get(cp).content)
        assert got.id == "NMI4407123456"
    with server.client("device-2") as c:
        assert c.get(cp).status_code == 403
