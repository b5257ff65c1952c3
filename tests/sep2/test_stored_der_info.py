"""DER documents are read back as stored: validated when written, never refused on a GET.

A document stored before the strict check existed (or valid under an older rule) must not turn
``GET /edev/{id}/der/1/{kind}`` into a 400 for a client that did nothing wrong.
"""

from __future__ import annotations

import pytest
from envoy_schema.server.schema.sep2 import der as der_schema
from lxml import etree  # type: ignore[import-untyped]
from sqlalchemy import update

from gridflex.sep2 import xml as sepxml
from gridflex.sep2.app import stored_der_info
from gridflex.sep2.persistence import DerInfo
from tests.sep2.conftest import Server
from tests.sep2.docs import der_capability_xml, end_device_xml

# valid under no strict rule: an element the schema does not declare, and type before
# modesSupported (out of sequence order); the lenient model reads both values
LEGACY_DERCAP = (
    '<DERCapability xmlns="urn:ieee:std:2030.5:ns" xmlns:csipaus="https://csipaus.org/ns/v1.3" '
    'href="/old/place"><type>4</type><modesSupported>00500000</modesSupported>'
    "<rtgMaxW><multiplier>3</multiplier><value>500</value></rtgMaxW>"
    "<vendorNote>written by an older server</vendorNote>"
    "<csipaus:doeModesSupported>03</csipaus:doeModesSupported></DERCapability>"
)


def test_strict_parse_refuses_the_legacy_document() -> None:
    """The premise: the strict request parser would answer 400 to this stored document."""
    with pytest.raises(sepxml.XmlInvalidError):
        sepxml.parse(der_schema.DERCapability, LEGACY_DERCAP.encode())


@pytest.mark.parametrize("ns", [sepxml.CSIP_AUS_NS_V12, sepxml.CSIP_AUS_NS_V13])
def test_stored_document_is_served_at_its_href(ns: str) -> None:
    body = stored_der_info(
        der_schema.DERCapability, LEGACY_DERCAP.encode(), "/edev/7/der/1/dercap", ns
    )
    back = sepxml.validate_response(der_schema.DERCapability, body)  # strictly valid answer
    assert back.href == "/edev/7/der/1/dercap"
    assert int(back.type_) == 4
    assert back.rtgMaxW.value == 500
    assert back.rtgMaxW.multiplier == 3
    assert b"vendorNote" not in body


def test_a_document_the_model_no_longer_reads_is_served_as_stored() -> None:
    """Even a document the model library refuses today comes back (href rewritten), not 400."""
    stored = (
        b'<DERCapability xmlns="urn:ieee:std:2030.5:ns" href="/x">'
        b"<modesSupported>00500000</modesSupported><rtgMaxW><multiplier>3</multiplier>"
        b"<value>not a number</value></rtgMaxW><type>4</type></DERCapability>"
    )
    body = stored_der_info(
        der_schema.DERCapability, stored, "/edev/3/der/1/dercap", sepxml.CSIP_AUS_NS_V12
    )
    root = etree.fromstring(body)
    assert root.get("href") == "/edev/3/der/1/dercap"
    assert root.findtext("{urn:ieee:std:2030.5:ns}rtgMaxW/{urn:ieee:std:2030.5:ns}value") == (
        "not a number"
    )


def test_get_answers_a_legacy_stored_document(server: Server) -> None:
    ident = server.ids["device-1"]
    with server.client("device-1") as c:
        edev = c.post("/edev", content=end_device_xml(ident.lfdi)).headers["location"]
        assert c.put(edev + "/der/1/dercap", content=der_capability_xml()).status_code == 204
        with server.engine.begin() as conn:
            conn.execute(update(DerInfo).where(DerInfo.kind == "dercap").values(xml=LEGACY_DERCAP))
        r = c.get(edev + "/der/1/dercap")
        assert r.status_code == 200, r.text
        back = sepxml.validate_response(der_schema.DERCapability, r.content)
        assert back.href == edev + "/der/1/dercap"
        assert back.rtgMaxW.value == 500
