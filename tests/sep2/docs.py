"""IEEE 2030.5 request documents the test clients send (as field clients write them)."""

from __future__ import annotations

from gridflex.sep2.identity import sfdi_from_lfdi


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


def response_xml(lfdi: str, subject: str, status: int, created: int) -> bytes:
    """A DERControl Response (IEEE 2030.5-2018 clause 12.2)."""
    return (
        '<DERControlResponse xmlns="urn:ieee:std:2030.5:ns">'
        f"<createdDateTime>{created}</createdDateTime><endDeviceLFDI>{lfdi}</endDeviceLFDI>"
        f"<status>{status}</status><subject>{subject}</subject></DERControlResponse>"
    ).encode()


def subscription_xml(resource: str, uri: str = "https://client.example:8443/ntfy") -> bytes:
    return (
        '<Subscription xmlns="urn:ieee:std:2030.5:ns">'
        f"<subscribedResource>{resource}</subscribedResource><encoding>0</encoding>"
        f"<level>-S1</level><limit>10</limit><notificationURI>{uri}</notificationURI>"
        "</Subscription>"
    ).encode()


def der_capability_xml(csip_ns: str = "https://csipaus.org/ns") -> bytes:
    return (
        f'<DERCapability xmlns="urn:ieee:std:2030.5:ns" xmlns:csipaus="{csip_ns}">'
        "<modesSupported>00500000</modesSupported>"
        "<rtgMaxW><multiplier>3</multiplier><value>500</value></rtgMaxW>"
        "<type>4</type><csipaus:doeModesSupported>03</csipaus:doeModesSupported>"
        "</DERCapability>"
    ).encode()
