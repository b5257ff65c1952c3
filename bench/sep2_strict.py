"""Per-body cost of the strict IEEE 2030.5 check, side by side with the model parse it precedes.

For each document: the hardened lxml parse (:func:`gridflex.sep2.xml.parse_tree`), the strict
walk (:func:`gridflex.sep2.strict.check`) and envoy-schema's pydantic-xml model build
(``model.from_xml_tree``, what :func:`gridflex.sep2.xml.model_from_tree` did before the strict
check existed). The ratio printed is strict / model build: the share the check adds to the
validation a request body already paid. Documents: the 5-minute MirrorMeterReading the fleet
benchmark posts (``bench/sep2_load.py``, ~1,000 of them per second expected), a 3-reading one,
a day of 5-minute readings (288) as a MirrorMeterReadingList, an EndDevice and a DERSettings.

Run: ``python bench/sep2_strict.py [--repeats 7] [--min-time 0.2]``. Single process; timings
are per call (best and median of the repeats, each repeat looping for at least ``--min-time``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from envoy_schema.server.schema.sep2 import der as der_schema
from envoy_schema.server.schema.sep2.end_device import EndDeviceRequest
from envoy_schema.server.schema.sep2.metering_mirror import (
    MirrorMeterReadingListRequest,
    MirrorMeterReadingRequest,
)
from pydantic_xml import BaseXmlModel

from gridflex.sep2 import strict
from gridflex.sep2 import xml as sepxml

NS = 'xmlns="urn:ieee:std:2030.5:ns"'
READING_TYPE = (
    "<ReadingType><accumulationBehaviour>12</accumulationBehaviour><commodity>1</commodity>"
    "<dataQualifier>2</dataQualifier><flowDirection>1</flowDirection><intervalLength>300"
    "</intervalLength><kind>37</kind><phase>0</phase><powerOfTenMultiplier>0"
    "</powerOfTenMultiplier><uom>38</uom></ReadingType>"
)


def _fleet_post() -> bytes:  # as bench/sep2_load.py's reading_doc
    return (
        f"<MirrorMeterReading {NS}><mRID>0700006CC8000000000000000000ABCD</mRID><Reading>"
        "<timePeriod><duration>300</duration><start>1700000000</start></timePeriod><value>1234"
        "</value></Reading><ReadingType><dataQualifier>2</dataQualifier><flowDirection>1"
        "</flowDirection><intervalLength>300</intervalLength><kind>37</kind>"
        "<powerOfTenMultiplier>0</powerOfTenMultiplier><uom>38</uom></ReadingType>"
        "</MirrorMeterReading>"
    ).encode()


def _mmr(n: int, ns: str = NS) -> str:
    readings = "".join(
        f"<Reading><timePeriod><duration>300</duration><start>{1_700_000_000 + 300 * i}</start>"
        f"</timePeriod><value>{i * 7 % 5000}</value></Reading>"
        for i in range(n)
    )
    return (
        f"<MirrorMeterReading{' ' + ns if ns else ''}><mRID>0700006CC8000000000000000000ABCD"
        "</mRID><description>active power</description><MirrorReadingSet><mRID>"
        "0800006CC8000000000000000000ABCD</mRID><timePeriod><duration>"
        f"{300 * n}</duration><start>1700000000</start></timePeriod>{readings}"
        f"</MirrorReadingSet>{READING_TYPE}</MirrorMeterReading>"
    )


DOCS: list[tuple[str, type[BaseXmlModel], bytes]] = [
    ("MirrorMeterReading, fleet post (1 reading)", MirrorMeterReadingRequest, _fleet_post()),
    ("MirrorMeterReading, 3 readings", MirrorMeterReadingRequest, _mmr(3).encode()),
    (
        "MirrorMeterReadingList, 288 readings",
        MirrorMeterReadingListRequest,
        f"<MirrorMeterReadingList {NS}>{_mmr(288, '')}</MirrorMeterReadingList>".encode(),
    ),
    (
        "EndDevice",
        EndDeviceRequest,
        f"<EndDevice {NS}><lFDI>3E4F45AB31EDFE5B67E343E5E4562E31984E23E5</lFDI>"
        "<sFDI>167261211391</sFDI><changedTime>0</changedTime></EndDevice>".encode(),
    ),
    (
        "DERSettings",
        der_schema.DERSettings,
        f'<DERSettings {NS} xmlns:csipaus="https://csipaus.org/ns"><modesEnabled>00500000'
        "</modesEnabled><setGradW>100</setGradW><setMaxW><multiplier>3</multiplier><value>500"
        "</value></setMaxW><updatedTime>1700000000</updatedTime><csipaus:doeModesEnabled>03"
        "</csipaus:doeModesEnabled></DERSettings>".encode(),
    ),
]


def _per_call_s(fn: Callable[[], object], repeats: int, min_time: float) -> tuple[float, float]:
    n = 1
    while True:  # calibrate a loop count that runs at least min_time
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t0 >= min_time:
            break
        n *= 2
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n)
    return min(samples), statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--min-time", type=float, default=0.2)
    args = ap.parse_args()
    print(f"{'document':44s} {'bytes':>6s} {'parse µs':>10s} {'strict µs':>10s} "
          f"{'model µs':>10s} {'strict/model':>12s}")  # fmt: skip
    for name, model, body in DOCS:
        root = sepxml.parse_tree(body)
        strict.check(model, root)  # compiles and caches the structure once
        model.from_xml_tree(root)
        parse = _per_call_s(lambda b=body: sepxml.parse_tree(b), args.repeats, args.min_time)
        check = _per_call_s(lambda m=model, r=root: strict.check(m, r), args.repeats, args.min_time)
        build = _per_call_s(lambda m=model, r=root: m.from_xml_tree(r), args.repeats, args.min_time)
        print(
            f"{name:44s} {len(body):6d} {parse[0] * 1e6:10.1f} {check[0] * 1e6:10.1f} "
            f"{build[0] * 1e6:10.1f} {check[0] / build[0]:12.2f}"
            f"   (medians {parse[1] * 1e6:.1f} / {check[1] * 1e6:.1f} / {build[1] * 1e6:.1f})"
        )


if __name__ == "__main__":
    main()
