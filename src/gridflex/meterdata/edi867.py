"""EDI 867 (X12 004010) interval usage: read to a tidy UTC series and write it back.

Layout (PA/NJ/DE/MD 867 Interval Usage guide as the baseline, Illinois monthly-usage conventions
accepted on top; 003_bfb20267a3df903e.txt, FAQ 18-22)::

    ST*867*0001
    BPT*00*<reference>*CCYYMMDD*DD          BPT04: DD (PA baseline) or C1 (Illinois)
    N1*8S*<utility>*1*<id>  N1*SJ*<supplier>*9*<id>   (names, optional)
    REF*12*<account>   REF*SPL*<service point>
    PTD*SU                                   account / service-point summary
      DTM*150*CCYYMMDD[*HHMM*<code>]  DTM*151*...   service period start / end
      QTY*QD*<kWh>*KH                        net usage of the period (checked)
    PTD*PM***OZ*EL                           interval detail, one loop per meter
      REF*MG*<meter>  REF*JH*A|S  REF*6W*<channel>
      MEA*AA*PRQ*<kWh>*KH                    meter total of the period (optional, checked)
      QTY*QD*<kWh>*KH  DTM*582*CCYYMMDD*HHMM[*<code>]   repeated; DTM*582 stamps the END
    PTD*BC***OZ*EL                           unmetered service, meter 99999999
    SE*<count>*0001

Conventions of the tidy series (``intervals``: ``service_point``, ``meter``, ``interval_start``,
``interval_end`` (both UTC), ``kwh``): ``kwh`` is the meter's signed contribution to the service
point's usage, so a service point's usage is the plain sum over its meters.

* ``REF*JH*S`` (subtractive meter) negates the meter's values; ``REF*JH*A`` (or no REF*JH)
  keeps them (FAQ 19).
* ``QTY*87`` (quantity received: generation into the grid) is negative: generation reads
  negative (000_9d43a5ca67169be9.txt, CT specifications). ``QTY*QD`` (actual) and ``QTY*KA``
  (estimated) are delivered energy.
* A service period that starts or ends mid-interval (DTM*150/151 with a time) clips the first
  or last interval to it: the split boundary hour of FAQ 22 becomes two partial rows, one per
  transaction, that add up to the hour. Without times the two partial values land on the same
  hour and are added when both transactions are read together.
* One transaction per service point per billing (FAQ 18), whatever its meter count.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gridflex.errors import InputError
from gridflex.meterdata import _config
from gridflex.meterdata.timecodes import TimeCodeStyle, format_stamps, parse_stamp
from gridflex.meterdata.x12 import (
    Envelope,
    Segment,
    Transaction,
    now_minute,
    tokenize,
    transactions,
    write_interchange,
)

INTERVAL_COLUMNS = ["service_point", "meter", "interval_start", "interval_end", "kwh"]
METER_COLUMNS = ["service_point", "meter", "role", "channel", "unmetered"]
PERIOD_COLUMNS = ["service_point", "period_start", "period_end"]

# Loop types of PTD01 that gridflex reads; others (e.g. PL scalar register detail) are listed in
# the transactions table as ignored, never dropped silently.
_SUMMARY, _METER, _UNMETERED = "SU", "PM", "BC"
_QTY_SIGN = {"QD": 1.0, "KA": 1.0, "87": -1.0}
_ROLE_SIGN = {"A": 1.0, "S": -1.0}
_REPORT_TYPES = {"DD", "C1"}


def unmetered_meter() -> str:
    """The meter number of unmetered service (003_bfb20267a3df903e.txt, FAQ 11 and 13)."""
    return str(_config.utility()["unmetered_meter_number"])


@dataclass(frozen=True)
class Edi867Header:
    """Parties and report codes written into each 867 transaction."""

    ldc_name: str = "AMEREN ILLINOIS"
    ldc_id: str = ""
    esp_name: str = ""
    esp_id: str = ""
    report_type: str = "DD"
    purpose: str = "00"
    report_date: datetime = field(default_factory=now_minute)


@dataclass(frozen=True)
class Edi867:
    """What one 867 interchange holds.

    Attributes
    ----------
    intervals:
        Tidy series: ``service_point``, ``meter``, ``interval_start``, ``interval_end`` (UTC),
        ``kwh`` (signed contribution to the service point's usage).
    meters:
        ``service_point``, ``meter``, ``role`` (``A`` additive / ``S`` subtractive),
        ``channel`` (REF*6W), ``unmetered``.
    transactions:
        One row per ST: ``control_number``, ``service_point``, ``account``, ``period_start``,
        ``period_end`` (UTC: from DTM*150/151 when they carry a time, else the extent of the
        transaction's intervals), ``service_start_date`` / ``service_end_date`` (the DTM*150 /
        151 dates, local), ``purpose`` (BPT01),
        ``report_type`` (BPT04), ``meters``, ``intervals``, ``total_kwh``, ``estimated``
        (QTY*KA count), ``elapsed_hour_labels`` (stamps read with the elapsed-hours rule),
        ``ignored_loops``.
    """

    intervals: pd.DataFrame
    meters: pd.DataFrame
    transactions: pd.DataFrame

    @property
    def periods(self) -> pd.DataFrame:
        """Billing periods per service point (the ``periods`` argument of :func:`write_867`)."""
        return self.transactions[PERIOD_COLUMNS].reset_index(drop=True)

    def summary(self) -> pd.DataFrame:
        """Per service point and meter: first start, last end, interval count, kWh totals."""
        g = self.intervals.groupby(["service_point", "meter"], sort=True)
        out = g.agg(
            first_start=("interval_start", "min"),
            last_end=("interval_end", "max"),
            intervals=("kwh", "size"),
            kwh=("kwh", "sum"),
            kwh_min=("kwh", "min"),
            kwh_max=("kwh", "max"),
        ).reset_index()
        return out.merge(self.meters, on=["service_point", "meter"], how="left")


# --------------------------------------------------------------------------------------- read
@dataclass
class _Loop:
    kind: str
    ptd: Segment
    meter: str = ""
    meter_seg: Segment | None = None
    role: str = "A"
    channel: str = ""
    service_point: str = ""
    period: dict[str, Segment] = field(default_factory=dict)
    pairs: list[tuple[Segment, Segment]] = field(default_factory=list)
    totals: list[Segment] = field(default_factory=list)
    mea_total: Segment | None = None


def _number(seg: Segment, position: int, source: str) -> float:
    text = seg.el(position)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputError(
            f"{source}: {seg.where()}: element {position} {text!r} is not a number",
            "write quantities as plain decimals such as 12.345",
        )
    return value


def _stamp(seg: Segment, zone: str, source: str) -> tuple[datetime, bool]:
    try:
        return parse_stamp(seg.el(2), seg.el(3), seg.el(4), zone)
    except InputError as exc:
        raise InputError(f"{source}: {seg.where()}: {exc.message}", exc.fix) from exc
    except ValueError as exc:
        raise InputError(
            f"{source}: {seg.where()}: {exc}",
            "DTM needs CCYYMMDD, HHMM and an X12 time code (element 623); hourly labels run "
            "01..23 on the spring-forward day and 01..25 on the fall-back day",
        ) from exc


def _split_loops(txn: Transaction, source: str) -> tuple[list[Segment], list[_Loop]]:
    header: list[Segment] = []
    loops: list[_Loop] = []
    body = txn.segments[1:-1]
    pending: Segment | None = None

    def settle(next_seg: Segment | None) -> None:
        nonlocal pending
        if pending is None:
            return
        loop = loops[-1]
        if loop.kind == _METER:
            raise InputError(
                f"{source}: {pending.where()}: QTY without its DTM*582 interval-end stamp"
                + (f" (next is {next_seg.where()})" if next_seg else ""),
                "follow every interval QTY with DTM*582*CCYYMMDD*HHMM*<time code>",
            )
        loop.totals.append(pending)
        pending = None

    for seg in body:
        if seg.tag == "DTM" and seg.el(1) == "582":
            if pending is None:
                raise InputError(
                    f"{source}: {seg.where()}: DTM*582 interval stamp with no QTY before it",
                    "put the QTY of the interval directly before its DTM*582",
                )
            loops[-1].pairs.append((pending, seg))
            pending = None
            continue
        settle(seg)
        if seg.tag == "PTD":
            loops.append(_Loop(kind=seg.el(1), ptd=seg))
            continue
        if not loops:
            header.append(seg)
            continue
        loop = loops[-1]
        if seg.tag == "QTY":
            pending = seg
        elif seg.tag == "REF":
            qualifier, value = seg.el(1), seg.el(2)
            if qualifier == "MG":
                loop.meter, loop.meter_seg = value, seg
            elif qualifier == "JH":
                if value not in _ROLE_SIGN:
                    raise InputError(
                        f"{source}: {seg.where()}: meter role {value!r} is not known",
                        "use REF*JH*A (additive) or REF*JH*S (subtractive)",
                    )
                loop.role = value
            elif qualifier == "6W":
                loop.channel = value
            elif qualifier == "SPL":
                loop.service_point = value
        elif seg.tag == "MEA" and seg.el(2) == "PRQ":
            loop.mea_total = seg
        elif seg.tag == "DTM" and seg.el(1) in ("150", "151"):
            loop.period[seg.el(1)] = seg  # parsed once the zone is known
    settle(None)
    return header, loops


def _infer_interval(ends: list[datetime], interval_minutes: int | None) -> timedelta:
    if interval_minutes is not None:
        return timedelta(minutes=interval_minutes)
    # Hourly is Ameren's interval (FAQ 22); finer data shows itself by adjacent stamps.
    step = 60
    seconds = sorted({int(e.timestamp()) for e in ends})
    gaps = [b - a for a, b in itertools.pairwise(seconds)]
    if gaps:
        g = 0
        for d in gaps:
            g = math.gcd(g, d)
        if g % 60 == 0 and g // 60 < 60 and 60 % (g // 60) == 0:
            step = g // 60
    return timedelta(minutes=step)


def _read_transaction(
    txn: Transaction, zone: str, source: str, interval_minutes: int | None, check_totals: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    st = txn.segments[0]
    if txn.code != "867":
        raise InputError(
            f"{source}: {st.where()}: transaction set {txn.code!r} is not an 867",
            "give gridflex 867 product transfer and resale (usage) transactions only",
        )
    header, loops = _split_loops(txn, source)
    bpt = next((s for s in header if s.tag == "BPT"), None)
    if bpt is None:
        raise InputError(
            f"{source}: {st.where()}: transaction {txn.control_number} has no BPT segment",
            "begin the 867 with BPT*00*<reference>*CCYYMMDD*DD (or C1)",
        )
    if bpt.el(4) and bpt.el(4) not in _REPORT_TYPES:
        raise InputError(
            f"{source}: {bpt.where()}: BPT04 report type {bpt.el(4)!r} is not an interval "
            "usage report",
            "use DD (PA/NJ/DE/MD interval usage) or C1 (Illinois)",
        )
    refs = {s.el(1): s for s in header if s.tag == "REF"}
    sp_values = {refs["SPL"].el(2)} if "SPL" in refs else set()
    sp_values |= {lp.service_point for lp in loops if lp.service_point}
    if len(sp_values) > 1:
        raise InputError(
            f"{source}: transaction {txn.control_number} at {st.where()} names several "
            f"service points {sorted(sp_values)}",
            "send one 867 per service point (003_bfb20267a3df903e.txt, FAQ 18)",
        )
    account = refs["12"].el(2) if "12" in refs else ""
    service_point = next(iter(sp_values)) if sp_values else account
    if not service_point:
        raise InputError(
            f"{source}: transaction {txn.control_number} at {st.where()} has neither "
            "REF*SPL (service point) nor REF*12 (account)",
            "add REF*SPL*<service point> to the transaction header",
        )

    def period_of(segs: dict[str, Segment]) -> dict[str, tuple[datetime, bool, Segment]]:
        """DTM*150/151 as (UTC instant, carries a time, segment)."""
        return {
            key: (_stamp(seg, zone, source)[0], bool(seg.el(3)), seg) for key, seg in segs.items()
        }

    header_period = period_of(
        {s.el(1): s for s in header if s.tag == "DTM" and s.el(1) in ("150", "151")}
    )
    summary = next((lp for lp in loops if lp.kind == _SUMMARY), None)
    txn_period = {**header_period, **period_of(summary.period if summary else {})}

    rows: list[dict[str, Any]] = []
    meter_rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, datetime], Segment] = {}
    estimated = elapsed_labels = 0
    ignored = sorted(
        {lp.kind or "(empty)" for lp in loops if lp.kind not in (_SUMMARY, _METER, _UNMETERED)}
    )
    for loop in loops:
        if loop.kind not in (_METER, _UNMETERED):
            continue
        meter = loop.meter
        if loop.kind == _UNMETERED:
            if meter and meter != unmetered_meter():
                assert loop.meter_seg is not None
                raise InputError(
                    f"{source}: {loop.meter_seg.where()}: unmetered loop (PTD*BC at segment "
                    f"{loop.ptd.number}) names meter {meter!r}",
                    f"unmetered service carries meter number {unmetered_meter()} "
                    "(003_bfb20267a3df903e.txt, FAQ 11)",
                )
            meter = unmetered_meter()
        if not meter:
            raise InputError(
                f"{source}: {loop.ptd.where()}: interval loop has no REF*MG meter number",
                "add REF*MG*<meter number> to each PTD*PM loop",
            )
        period = {**txn_period, **period_of(loop.period)}
        role_sign = _ROLE_SIGN[loop.role]
        raw: list[float] = []
        ends: list[datetime] = []
        for qty, dtm in loop.pairs:
            qualifier = qty.el(1)
            if qualifier not in _QTY_SIGN:
                raise InputError(
                    f"{source}: {qty.where()}: quantity qualifier {qualifier!r} is not interval "
                    "usage",
                    "use QTY*QD (actual), QTY*KA (estimated) or QTY*87 (received)",
                )
            if qty.el(3) != "KH":
                raise InputError(
                    f"{source}: {qty.where()}: unit {qty.el(3) or '(empty)'} is not KH",
                    "send interval usage in kilowatt-hours (QTY03 = KH)",
                )
            estimated += qualifier == "KA"
            raw.append(_QTY_SIGN[qualifier] * _number(qty, 2, source))
            end, authoritative = _stamp(dtm, zone, source)
            elapsed_labels += not authoritative
            first = seen.get((meter, end))
            if first is not None:
                raise InputError(
                    f"{source}: {dtm.where()}: duplicate interval for meter {meter} ending "
                    f"{end.isoformat()} (first at segment {first.number})",
                    "send each interval once; on DST days label hours as the utility's "
                    "time codes or elapsed hours say, not both",
                )
            seen[(meter, end)] = dtm
            ends.append(end)
        step = _infer_interval(ends, interval_minutes)
        p_start = period.get("150")
        p_end = period.get("151")
        for value, end, (_, dtm) in zip(raw, ends, loop.pairs, strict=True):
            start = end - step
            stop = end
            if p_start is not None and p_start[1]:
                if end <= p_start[0]:
                    raise InputError(
                        f"{source}: {dtm.where()}: interval ending {end.isoformat()} is before "
                        f"the service period start ({p_start[2].where()})",
                        "drop intervals outside DTM*150..DTM*151",
                    )
                start = max(start, p_start[0])
            if p_end is not None and p_end[1]:
                if start >= p_end[0]:
                    raise InputError(
                        f"{source}: {dtm.where()}: interval ending {end.isoformat()} is after "
                        f"the service period end ({p_end[2].where()})",
                        "drop intervals outside DTM*150..DTM*151",
                    )
                stop = min(stop, p_end[0])
            rows.append(
                {
                    "service_point": service_point,
                    "meter": meter,
                    "interval_start": start,
                    "interval_end": stop,
                    "kwh": role_sign * value,
                    "_seg": dtm.number,
                }
            )
        if loop.kind == _UNMETERED and loop.totals and not loop.pairs:
            # Unmetered usage sent as one period total: one row spanning the service period.
            raw += _unmetered_total(
                loop, p_start, p_end, rows, service_point, meter, role_sign, source
            )
        if check_totals and loop.mea_total is not None:
            _check_total(loop.mea_total, 3, sum(raw), f"meter {meter}", source)
        meter_rows.append(
            {
                "service_point": service_point,
                "meter": meter,
                "role": loop.role,
                "channel": loop.channel,
                "unmetered": meter == unmetered_meter(),
                "_seg": loop.ptd.number,
            }
        )
    total = float(sum(r["kwh"] for r in rows))
    if check_totals and summary is not None and rows:
        for seg in summary.totals:
            if seg.el(1) in _QTY_SIGN:
                _check_total(seg, 2, total, f"service point {service_point}", source)
    ps, pe = txn_period.get("150"), txn_period.get("151")
    # A dated-only service period (the Illinois monthly form) says which days, not which
    # instants: the instants then come from the intervals themselves.
    start_at = ps[0] if ps and ps[1] else min((r["interval_start"] for r in rows), default=None)
    end_at = pe[0] if pe and pe[1] else max((r["interval_end"] for r in rows), default=None)
    txn_row = {
        "control_number": txn.control_number,
        "service_point": service_point,
        "account": account,
        "period_start": start_at,
        "period_end": end_at,
        "service_start_date": _date_text(ps[2]) if ps else "",
        "service_end_date": _date_text(pe[2]) if pe else "",
        "purpose": bpt.el(1),
        "report_type": bpt.el(4),
        "meters": len(meter_rows),
        "intervals": len(rows),
        "total_kwh": total,
        "estimated": estimated,
        "elapsed_hour_labels": elapsed_labels,
        "ignored_loops": ",".join(ignored),
        "_seg": st.number,
    }
    return rows, meter_rows, txn_row


def _unmetered_total(
    loop: _Loop,
    p_start: tuple[datetime, bool, Segment] | None,
    p_end: tuple[datetime, bool, Segment] | None,
    rows: list[dict[str, Any]],
    service_point: str,
    meter: str,
    role_sign: float,
    source: str,
) -> list[float]:
    """Turn an unmetered loop's period QTY into one interval row over the service period.

    A dated-only period runs from local midnight of the DTM*150 date to local midnight of the
    DTM*151 date (consecutive bills then meet without overlap).
    """
    if p_start is None or p_end is None:
        raise InputError(
            f"{source}: {loop.totals[0].where()}: unmetered usage total without a service period",
            "give DTM*150 and DTM*151 for the PTD*BC loop or the PTD*SU summary",
        )
    start, end = p_start[0], p_end[0]
    if end <= start:
        raise InputError(
            f"{source}: {p_end[2].where()}: service period ends at or before its start",
            "check DTM*150 / DTM*151",
        )
    raw = []
    for seg in loop.totals:
        if seg.el(1) not in _QTY_SIGN or seg.el(3) != "KH":
            continue  # other quantities (demand, counts) are not usage
        value = _QTY_SIGN[seg.el(1)] * _number(seg, 2, source)
        raw.append(value)
        rows.append(
            {
                "service_point": service_point,
                "meter": meter,
                "interval_start": start,
                "interval_end": end,
                "kwh": role_sign * value,
                "_seg": seg.number,
            }
        )
    return raw


def _date_text(seg: Segment) -> str:
    d = seg.el(2)
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}"


def _check_total(seg: Segment, position: int, actual: float, what: str, source: str) -> None:
    declared = _number(seg, position, source)
    if seg.tag == "QTY":
        declared *= _QTY_SIGN[seg.el(1)]
    tolerance = float(_config.utility()["edi867"]["total_tolerance_kwh"])
    if abs(declared - actual) > tolerance + 1e-9 * abs(actual):
        raise InputError(
            f"{source}: {seg.where()}: {what} total {declared:g} kWh does not match the sum "
            f"of its intervals {actual:.6g} kWh",
            "correct the total or the intervals, or read with check_totals=False",
        )


def read_867(
    data: bytes | str | Path,
    zone: str | None = None,
    interval_minutes: int | None = None,
    check_totals: bool = True,
) -> Edi867:
    """Read an X12 867 interval usage interchange.

    Parameters
    ----------
    data:
        The interchange: a path, or its bytes.
    zone:
        IANA zone of stamps that carry no authoritative time code (default: the utility's zone
        in ``meterdata/data/utility.yaml``, America/Chicago for Ameren Illinois).
    interval_minutes:
        Interval length; default: hourly (003_bfb20267a3df903e.txt, FAQ 22) unless adjacent
        stamps show a finer interval that divides the hour.
    check_totals:
        Check PTD*SU QTY and MEA*AA*PRQ totals against the interval sums.

    Returns
    -------
    Edi867
        ``intervals``, ``meters`` and ``transactions`` tables.

    Raises
    ------
    InputError
        Broken envelopes (SE/GE/IEA counts, control numbers), a QTY without its DTM*582, a
        label that does not fit its day (24 hours on a spring-forward day), duplicate
        intervals, unknown codes; each message names the segment number.

    References
    ----------
    003_bfb20267a3df903e.txt (Ameren RES FAQ), FAQ 18-22; 000_9d43a5ca67169be9.txt (sign).
    """
    if isinstance(data, str | Path):
        path = Path(data)
        try:
            payload = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}", "check the path") from exc
        source = str(path)
    else:
        payload, source = data, "X12 input"
    zone = zone or str(_config.utility()["zone"])
    sets = transactions(tokenize(payload, source), source)
    if not sets:
        raise InputError(
            f"{source}: the interchange holds no transaction sets", "send at least one ST*867"
        )
    rows: list[dict[str, Any]] = []
    meter_rows: list[dict[str, Any]] = []
    txn_rows: list[dict[str, Any]] = []
    for k, txn in enumerate(sets):
        r, m, t = _read_transaction(txn, zone, source, interval_minutes, check_totals)
        for row in r:
            row["_txn"] = k
        rows += r
        meter_rows += m
        txn_rows.append(t)
    intervals = _merge_boundaries(
        pd.DataFrame(rows, columns=[*INTERVAL_COLUMNS, "_seg", "_txn"]), source
    )
    meters = pd.DataFrame(meter_rows, columns=[*METER_COLUMNS, "_seg"])
    meters = _one_meter_row(meters, source)
    txns = pd.DataFrame(txn_rows).drop(columns="_seg")
    for col in ("period_start", "period_end"):
        txns[col] = pd.to_datetime(txns[col], utc=True)
    return Edi867(intervals=intervals, meters=meters, transactions=txns)


def _one_meter_row(meters: pd.DataFrame, source: str) -> pd.DataFrame:
    """A meter read in several transactions must keep its role (A/S) throughout."""
    for (sp, meter), group in meters.groupby(["service_point", "meter"]):
        if group["role"].nunique() > 1:
            segs = ", ".join(str(s) for s in group["_seg"])
            raise InputError(
                f"{source}: meter {meter} of service point {sp} is both additive and "
                f"subtractive (PTD loops at segments {segs})",
                "keep REF*JH the same for a meter in every transaction",
            )
    out = meters.drop_duplicates(["service_point", "meter"]).drop(columns="_seg")
    return out.sort_values(["service_point", "meter"]).reset_index(drop=True)


def _merge_boundaries(frame: pd.DataFrame, source: str, part: str = "segment") -> pd.DataFrame:
    """Add the two partial values of a split billing-boundary hour; refuse other duplicates.

    ``frame`` holds the interval columns plus ``_txn`` (which bill a row comes from) and
    ``_seg`` (where it is, for messages: a segment number, or a reading number).
    """
    if frame.empty:
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in INTERVAL_COLUMNS})
        for c in ("interval_start", "interval_end"):
            empty[c] = pd.to_datetime(empty[c], utc=True)
        empty["kwh"] = empty["kwh"].astype(float)
        return empty
    frame = frame.copy()
    frame["interval_start"] = pd.to_datetime(frame["interval_start"], utc=True)
    frame["interval_end"] = pd.to_datetime(frame["interval_end"], utc=True)
    key = ["service_point", "meter", "interval_start", "interval_end"]
    dup = frame.duplicated(key, keep=False)
    if dup.any():
        for _, group in frame[dup].groupby(key):
            bills = group["_txn"].tolist()
            ok = len(bills) == 2 and bills[0] != bills[1]
            if ok:
                # The split hour closes one bill and opens the next (FAQ 22): it is the last
                # interval of one and the first of the other, for this meter.
                at = group["interval_start"].iloc[0]
                mine = frame[
                    (frame["service_point"] == group["service_point"].iloc[0])
                    & (frame["meter"] == group["meter"].iloc[0])
                ]
                a = mine.loc[mine["_txn"] == bills[0], "interval_start"]
                b = mine.loc[mine["_txn"] == bills[1], "interval_start"]
                ok = (at == a.max() and at == b.min()) or (at == b.max() and at == a.min())
            if not ok:
                where = ", ".join(str(s) for s in group["_seg"])
                raise InputError(
                    f"{source}: duplicate interval for meter {group['meter'].iloc[0]} starting "
                    f"{group['interval_start'].iloc[0].isoformat()} at {part}s {where}",
                    "send each interval once; only a billing period's split boundary hour may "
                    "appear in two consecutive bills",
                )
        frame = frame.groupby(key, as_index=False, sort=False).agg(kwh=("kwh", "sum"))
    frame = frame[INTERVAL_COLUMNS].sort_values(["service_point", "meter", "interval_start"])
    frame["service_point"] = frame["service_point"].astype(str)
    frame["meter"] = frame["meter"].astype(str)
    frame["kwh"] = frame["kwh"].astype(float)
    return frame.reset_index(drop=True)


# -------------------------------------------------------------------------------------- write
def _fmt(value: float) -> str:
    """Shortest decimal that reads back to the same float, never in exponent form (X12 R)."""
    if value == 0:
        return "0"
    return str(np.format_float_positional(value, trim="-"))


def check_intervals(intervals: pd.DataFrame, what: str = "intervals") -> pd.DataFrame:
    """Validate a tidy interval table and return it normalised (UTC, str ids, float kWh).

    Raises
    ------
    InputError
        Missing columns, naive or unparsable timestamps, ``interval_end <= interval_start``,
        non-finite kWh or duplicate intervals, naming the column and the first bad row.
    """
    missing = [c for c in INTERVAL_COLUMNS if c not in intervals.columns]
    if missing:
        raise InputError(
            f"{what}: missing column(s) {', '.join(missing)}",
            f"give the columns {', '.join(INTERVAL_COLUMNS)}",
        )
    out = intervals[INTERVAL_COLUMNS].copy()
    for col in ("interval_start", "interval_end"):
        values = out[col]
        if not isinstance(values.dtype, pd.DatetimeTZDtype):
            try:
                parsed = pd.to_datetime(values, utc=False, format="ISO8601")
            except (ValueError, TypeError) as exc:
                raise InputError(
                    f"{what}: column {col} is not a timestamp ({exc})",
                    "write ISO 8601 timestamps with a UTC offset, e.g. 2026-03-08T07:00:00Z",
                ) from exc
            if not isinstance(parsed.dtype, pd.DatetimeTZDtype):
                raise InputError(
                    f"{what}: column {col} has timestamps without a time zone",
                    "give UTC timestamps (suffix Z or +00:00)",
                )
            values = parsed
        out[col] = values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    out["service_point"] = out["service_point"].astype(str)
    out["meter"] = out["meter"].astype(str)
    out["kwh"] = pd.to_numeric(out["kwh"], errors="coerce").astype(float)
    bad = ~np.isfinite(out["kwh"].to_numpy())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{what}: row {i}: kwh is not a finite number", "fill in the kWh value")
    bad = (out["interval_end"] <= out["interval_start"]).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{what}: row {i}: interval_end is not after interval_start", "swap or fix them"
        )
    dup = out.duplicated(["service_point", "meter", "interval_start"]).to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise InputError(
            f"{what}: row {i}: duplicate interval for service point {out['service_point'].iloc[i]}"
            f" meter {out['meter'].iloc[i]} starting {out['interval_start'].iloc[i].isoformat()}",
            "keep one row per service point, meter and interval",
        )
    return out.sort_values(["service_point", "meter", "interval_start"]).reset_index(drop=True)


def _default_meters(intervals: pd.DataFrame) -> pd.DataFrame:
    pairs = intervals[["service_point", "meter"]].drop_duplicates()
    return pairs.assign(role="A", channel="1", unmetered=pairs["meter"] == unmetered_meter())


def _default_periods(intervals: pd.DataFrame) -> pd.DataFrame:
    g = intervals.groupby("service_point", sort=True)
    return pd.DataFrame(
        {
            "period_start": g["interval_start"].min(),
            "period_end": g["interval_end"].max(),
        }
    ).reset_index()


def write_867(
    intervals: pd.DataFrame,
    meters: pd.DataFrame | None = None,
    periods: pd.DataFrame | None = None,
    *,
    header: Edi867Header | None = None,
    envelope: Envelope | None = None,
    time_codes: TimeCodeStyle = "daylight-standard",
    zone: str | None = None,
    accounts: dict[str, str] | None = None,
) -> bytes:
    """Write a tidy interval series as an X12 867 interval usage interchange.

    Parameters
    ----------
    intervals:
        ``service_point``, ``meter``, ``interval_start``, ``interval_end`` (UTC), ``kwh``
        (signed contribution: a subtractive meter's values are negative here).
    meters:
        ``service_point``, ``meter``, ``role`` (``A``/``S``), ``channel``; default: every
        meter additive, channel 1; meter 99999999 is written as unmetered (PTD*BC).
    periods:
        ``service_point``, ``period_start``, ``period_end``: one transaction per row (one 867
        per service point per billing). Default: one period per service point spanning its
        data. Intervals must not straddle a period boundary: split the hour into two partial
        rows, as the utility does (003_bfb20267a3df903e.txt, FAQ 22).
    time_codes:
        ``daylight-standard`` (CD/CS, authoritative) or ``elapsed`` (elapsed-hours labels with
        the bare zone code, the FAQ 21 convention).
    accounts:
        Account number (REF*12) per service point; default: the service point id.
    """
    header = header or Edi867Header()
    envelope = envelope or Envelope()
    zone = zone or str(_config.utility()["zone"])
    data = check_intervals(intervals)
    meters = _default_meters(data) if meters is None else meters.copy()
    for col, default in (("role", "A"), ("channel", "1")):
        if col not in meters:
            meters[col] = default
    meters["service_point"] = meters["service_point"].astype(str)
    meters["meter"] = meters["meter"].astype(str)
    periods = _default_periods(data) if periods is None else periods.copy()
    missing = [c for c in PERIOD_COLUMNS if c not in periods.columns]
    if missing:
        raise InputError(
            f"periods: missing column(s) {', '.join(missing)}", f"give {', '.join(PERIOD_COLUMNS)}"
        )
    periods["service_point"] = periods["service_point"].astype(str)
    for col in ("period_start", "period_end"):
        periods[col] = pd.to_datetime(periods[col], utc=True)
    role_of = {
        (str(sp_), str(m)): (str(role), str(channel))
        for sp_, m, role, channel in zip(
            meters["service_point"],
            meters["meter"],
            meters["role"],
            meters["channel"],
            strict=True,
        )
    }
    bodies: list[list[list[str]]] = []
    covered = np.zeros(len(data), dtype=bool)
    ordered = periods.sort_values(["service_point", "period_start"])
    for k, (sp_value, p0, p1) in enumerate(
        zip(ordered["service_point"], ordered["period_start"], ordered["period_end"], strict=True)
    ):
        sp = str(sp_value)
        in_sp = (data["service_point"] == sp).to_numpy()
        inside = (
            in_sp
            & (data["interval_start"] >= p0).to_numpy()
            & (data["interval_end"] <= p1).to_numpy()
        )
        straddle = (
            in_sp
            & ~inside
            & (data["interval_start"] < p1).to_numpy()
            & (data["interval_end"] > p0).to_numpy()
        )
        if straddle.any():
            i = int(np.flatnonzero(straddle)[0])
            raise InputError(
                f"intervals: row {i} ({data['interval_start'].iloc[i].isoformat()} to "
                f"{data['interval_end'].iloc[i].isoformat()}) straddles the billing-period "
                f"boundary of service point {sp}",
                "split the interval at the boundary into two partial rows (FAQ 22)",
            )
        covered |= inside
        part = data[inside]
        body = _transaction_body(
            part, sp, p0, p1, role_of, header, zone, time_codes, (accounts or {}).get(sp, sp), k + 1
        )
        bodies.append(body)
    if not covered.all():
        i = int(np.flatnonzero(~covered)[0])
        raise InputError(
            f"intervals: row {i} (service point {data['service_point'].iloc[i]}, "
            f"{data['interval_start'].iloc[i].isoformat()}) is in no billing period",
            "add a periods row covering it, or leave periods out",
        )
    return write_interchange(bodies, envelope)


def _stamp_elements(
    qualifier: str, times: pd.DatetimeIndex, zone: str, style: TimeCodeStyle
) -> list[list[str]]:
    # A period stamp is an instant, written like an interval end whose "interval" is empty.
    dates, clock, codes = format_stamps(times, times, zone, style)
    return [["DTM", qualifier, d, t, c] for d, t, c in zip(dates, clock, codes, strict=True)]


def _transaction_body(
    part: pd.DataFrame,
    sp: str,
    p0: pd.Timestamp,
    p1: pd.Timestamp,
    role_of: dict[tuple[str, str], tuple[str, str]],
    header: Edi867Header,
    zone: str,
    style: TimeCodeStyle,
    account: str,
    number: int,
) -> list[list[str]]:
    body: list[list[str]] = [
        [
            "BPT",
            header.purpose,
            f"{header.report_date:%Y%m%d}{number:06d}",
            f"{header.report_date:%Y%m%d}",
            header.report_type,
        ],
        ["N1", "8S", header.ldc_name, "1" if header.ldc_id else "", header.ldc_id],
    ]
    if header.esp_name or header.esp_id:
        body.append(["N1", "SJ", header.esp_name, "9" if header.esp_id else "", header.esp_id])
    body += [["REF", "12", account], ["REF", "SPL", sp]]
    period_stamps = pd.DatetimeIndex([p0, p1])
    d150 = _stamp_elements("150", period_stamps[:1], zone, style)
    d151 = _stamp_elements("151", period_stamps[1:], zone, style)
    body += [["PTD", "SU"], *d150, *d151, ["QTY", "QD", _fmt(float(part["kwh"].sum())), "KH"]]
    for meter, rows in part.groupby("meter", sort=True):
        role, channel = role_of.get((sp, str(meter)), ("A", "1"))
        if role not in _ROLE_SIGN:
            raise InputError(
                f"meters: meter {meter} of service point {sp} has role {role!r}",
                "use A (additive) or S (subtractive)",
            )
        unmetered = str(meter) == unmetered_meter()
        body.append(["PTD", _UNMETERED if unmetered else _METER, "", "", "OZ", "EL"])
        body += [["REF", "MG", str(meter)], ["REF", "JH", role]]
        if channel:
            body.append(["REF", "6W", channel])
        raw = rows["kwh"].to_numpy() * _ROLE_SIGN[role]
        body.append(["MEA", "AA", "PRQ", _fmt(float(raw.sum())), "KH"])
        whole_period = (
            len(rows) == 1
            and rows["interval_start"].iloc[0] == p0
            and rows["interval_end"].iloc[0] == p1
            and p1 - p0 > pd.Timedelta(hours=1)
        )
        if unmetered and whole_period:
            # Unmetered usage known only for the period: a period QTY, no interval stamps.
            value = float(raw[0])
            body.append(["QTY", "87" if value < 0 else "QD", _fmt(abs(value)), "KH"])
            continue
        stamps = _nominal_ends(rows, p0, p1, sp, str(meter))
        starts = pd.DatetimeIndex(rows["interval_start"])
        dates, clock, codes = format_stamps(starts, stamps, zone, style)
        for value, d, t, c in zip(raw, dates, clock, codes, strict=True):
            qualifier = "87" if value < 0 else "QD"
            body.append(["QTY", qualifier, _fmt(abs(float(value))), "KH"])
            body.append(["DTM", "582", d, t, c])
    return body


def _nominal_ends(
    rows: pd.DataFrame, p0: pd.Timestamp, p1: pd.Timestamp, sp: str, meter: str
) -> pd.DatetimeIndex:
    """DTM*582 stamps: the end of each interval; a partial last interval keeps its full end."""
    starts = pd.DatetimeIndex(rows["interval_start"])
    ends = pd.DatetimeIndex(rows["interval_end"])
    lengths = ends - starts
    step = pd.Timedelta(lengths.max())
    if step > pd.Timedelta(hours=1) or (pd.Timedelta(hours=1) % step) != pd.Timedelta(0):
        raise InputError(
            f"intervals: meter {meter} of service point {sp} has {step} intervals",
            "867 interval data needs an interval length that divides the hour (60, 30, 15 min)",
        )
    stamps = ends.to_numpy().copy()
    partial = np.asarray(lengths < step)
    for i in (int(j) for j in np.flatnonzero(partial)):
        if starts[i] == p0 and i == 0:
            continue  # first interval starts mid-hour: its stamp is its real end
        if ends[i] == p1 and i == len(ends) - 1:
            stamps[i] = (starts[i] + step).to_datetime64()
            continue
        raise InputError(
            f"intervals: meter {meter} of service point {sp}: the interval starting "
            f"{starts[i].isoformat()} is {lengths[i]} long, shorter than the {step} interval "
            "and not at a billing-period boundary",
            "only the first and last interval of a billing period may be partial",
        )
    return pd.DatetimeIndex(stamps, tz="UTC")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read an intervals / meters / periods table from Parquet or CSV."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file", "check the path")
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, dtype={"service_point": str, "meter": str, "channel": str})
    raise InputError(f"{path}: unknown table format {path.suffix!r}", "use .parquet or .csv")


def combine_867(results: Iterable[Edi867]) -> Edi867:
    """Combine several 867 readings (e.g. consecutive billing periods) into one.

    The split boundary hour of two consecutive bills, when both carry it on the same hour
    (service periods without times), is added into one row (003_bfb20267a3df903e.txt, FAQ 22).
    Any other overlap - the same bill read twice, overlapping periods - is an error rather than
    double-counted usage.
    """
    items = list(results)
    if not items:
        raise InputError("no 867 readings to combine", "pass at least one")
    rows = pd.concat(
        [r.intervals.assign(_txn=k, _seg=k + 1) for k, r in enumerate(items)], ignore_index=True
    )
    merged = _merge_boundaries(rows, "combined 867 readings", part="reading")
    meters = pd.concat([r.meters for r in items]).drop_duplicates(["service_point", "meter"])
    txns = pd.concat([r.transactions for r in items], ignore_index=True)
    return Edi867(merged, meters.reset_index(drop=True), txns)
