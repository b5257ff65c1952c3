"""A small real 2030.5 client for the tests: walks the resource tree, validates every response
against the envoy-schema models, and evaluates what a device executes at a given instant from the
XML it last read (IEEE 2030.5-2018 clause 12.1.3.2 event rules; DefaultDERControl when no event
is active)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import httpx
from envoy_schema.server.schema.sep2 import der as der_schema
from envoy_schema.server.schema.sep2.device_capability import DeviceCapabilityResponse
from envoy_schema.server.schema.sep2.end_device import EndDeviceListResponse, EndDeviceResponse
from envoy_schema.server.schema.sep2.function_set_assignments import (
    FunctionSetAssignmentsListResponse,
)
from pydantic_xml import BaseXmlModel

from gridflex.sep2.app import watts_of
from gridflex.sep2.xml import CONTENT_TYPE, validate_response

CANCELLED_OR_SUPERSEDED = {2, 3, 4}


def get(client: httpx.Client, href: str, model: type[BaseXmlModel], **params: int) -> BaseXmlModel:
    """GET ``href`` and validate it as ``model`` (fails the test otherwise)."""
    r = client.get(href, params=params)
    assert r.status_code == 200, f"GET {href}: {r.status_code} {r.text}"
    assert r.headers["content-type"].startswith(CONTENT_TYPE)
    return validate_response(model, r.content)


@dataclass
class DeviceView:
    """What a device knows after its last successful poll."""

    controls: list[der_schema.DERControlResponse] = field(default_factory=list)
    """The site program's controls (the terms windows)."""
    default: der_schema.DefaultDERControl | None = None
    others: list[tuple[int, list[der_schema.DERControlResponse]]] = field(default_factory=list)
    """(primacy, controls) of the device's other programs."""

    def export_limit_w_at(self, when: dt.datetime) -> float | None:
        """The export limit the device applies at ``when`` with no further contact: the newest
        live event of the highest-priority program that has one, else the default."""
        t = int(when.timestamp())
        site_primacy = 10
        for _, controls in sorted(
            [*self.others, (site_primacy, self.controls)], key=lambda x: x[0]
        ):
            live = [
                c
                for c in controls
                if c.EventStatus_.currentStatus not in CANCELLED_OR_SUPERSEDED
                and c.interval.start <= t < c.interval.start + c.interval.duration
                and c.DERControlBase_.opModExpLimW is not None
            ]
            if live:
                newest = max(live, key=lambda c: c.creationTime)
                return watts_of(newest.DERControlBase_.opModExpLimW)
        if self.default is not None:
            return watts_of(self.default.DERControlBase_.opModExpLimW)
        return None


def walk(client: httpx.Client, *, lfdi: str | None = None) -> tuple[EndDeviceResponse, DeviceView]:
    """DeviceCapability → EndDevice → FSA → DERProgram → DERControl / DefaultDERControl.

    Picks the EndDevice with ``lfdi`` (an aggregator sees several), and the site program (the one
    whose description is "connection terms").
    """
    dcap = get(client, "/dcap", DeviceCapabilityResponse)
    assert isinstance(dcap, DeviceCapabilityResponse)
    assert dcap.EndDeviceListLink is not None
    edevs = get(client, dcap.EndDeviceListLink.href, EndDeviceListResponse, l=100)
    assert isinstance(edevs, EndDeviceListResponse)
    chosen = [e for e in edevs.EndDevice or [] if lfdi is None or (e.lFDI or "").lower() == lfdi]
    assert chosen, f"EndDevice {lfdi} not in the list"
    edev = chosen[0]
    assert edev.FunctionSetAssignmentsListLink is not None
    fsa_href = edev.FunctionSetAssignmentsListLink.href
    fsas = get(client, fsa_href, FunctionSetAssignmentsListResponse, l=10)
    assert isinstance(fsas, FunctionSetAssignmentsListResponse)
    fsa = (fsas.FunctionSetAssignments or [])[0]
    assert fsa.DERProgramListLink is not None
    progs = get(client, fsa.DERProgramListLink.href, der_schema.DERProgramListResponse, l=10)
    assert isinstance(progs, der_schema.DERProgramListResponse)
    site = next(p for p in progs.DERProgram or [] if p.description == "connection terms")
    view = DeviceView()
    assert site.DERControlListLink is not None
    assert site.DefaultDERControlLink is not None
    lst = get(client, site.DERControlListLink.href, der_schema.DERControlListResponse, l=255)
    assert isinstance(lst, der_schema.DERControlListResponse)
    view.controls = list(lst.DERControl or [])
    for p in progs.DERProgram or []:
        if p is site or p.DERControlListLink is None:
            continue
        other = get(client, p.DERControlListLink.href, der_schema.DERControlListResponse, l=255)
        assert isinstance(other, der_schema.DERControlListResponse)
        view.others.append((p.primacy, list(other.DERControl or [])))
    dd = get(client, site.DefaultDERControlLink.href, der_schema.DefaultDERControl)
    assert isinstance(dd, der_schema.DefaultDERControl)
    view.default = dd
    return edev, view
