"""X12 date/time stamps (``CCYYMMDD``, ``HHMM``, time code) to UTC and back.

Two conventions meet in EDI 867 data:

* A time code that tells daylight from standard time (``CD`` / ``CS``, ``ED`` / ``ES``, ...,
  ``UT``, or a numeric ISO offset code) fixes the offset: the stamp is local clock time at that
  offset. Such codes are authoritative.
* Without a time code, with a bare region code (``CT``, ``ET``, ...) or ``LT``, the stamp is
  labelled by *elapsed hours since local midnight* (003_bfb20267a3df903e.txt, FAQ 21): on the
  spring-forward day 23 hourly values are sent and every label after 2:00 is one hour behind the
  new clock; on the fall-back day 25 values are sent, the second 2:00 is reported as 3:00 and
  later labels run one hour ahead (up to ``2500``). So ``label = local midnight + HH:MM of
  elapsed time``, which is exact on every day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from gridflex.errors import InputError
from gridflex.meterdata import _config

TimeCodeStyle = Literal["daylight-standard", "elapsed"]


@dataclass(frozen=True)
class TimeCode:
    """Meaning of one X12 element 623 time code."""

    code: str
    utc_offset_hours: float | None
    zone: str | None

    @property
    def authoritative(self) -> bool:
        """True when the code fixes the UTC offset (tells daylight from standard)."""
        return self.utc_offset_hours is not None


def time_code(code: str, zone: str) -> TimeCode:
    """Look up a time code (``""`` for none); ``zone`` stands in for ``LT`` and a missing code."""
    table = _config.load("x12_time_codes")
    code = code.strip().upper()
    if not code:
        return TimeCode("", None, zone)
    if code.isdigit() and table.get("numeric_codes") and 1 <= int(code) <= 24:
        n = int(code)
        return TimeCode(code, float(n if n <= 12 else n - 25), None)
    entry = table["codes"].get(code)
    if entry is None:
        known = ", ".join(sorted(table["codes"]))
        raise InputError(
            f"unknown X12 time code {code!r}",
            f"use one of {known} or a numeric ISO offset code 01-24 (X12 element 623)",
        )
    if "utc_offset_hours" in entry:
        return TimeCode(code, float(entry["utc_offset_hours"]), None)
    return TimeCode(code, None, entry.get("zone") or zone)


@lru_cache(maxsize=4096)
def _midnight(day: date, zone: str) -> tuple[datetime, int]:
    """UTC instant of local midnight starting ``day`` and the day's length in minutes."""
    tz = ZoneInfo(zone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).astimezone(UTC)
    return start, int((end - start).total_seconds() // 60)


def day_length_minutes(day: date, zone: str) -> int:
    """Length of a local calendar day in minutes (1380 / 1440 / 1500 in US zones)."""
    return _midnight(day, zone)[1]


@lru_cache(maxsize=256)
def _time_code_cached(code: str, zone: str) -> TimeCode:
    return time_code(code, zone)


def parse_stamp(date_text: str, time_text: str, code: str, zone: str) -> tuple[datetime, bool]:
    """One X12 stamp to an aware UTC datetime; returns ``(utc, authoritative)``.

    ``time_text`` is ``HHMM`` or ``HHMMSS`` (empty: midnight). Raises ``ValueError`` with a
    plain reason (``InputError`` for an unknown time code); callers add the segment number.
    """
    if len(date_text) != 8 or not date_text.isdigit():
        raise ValueError(f"date {date_text!r} is not CCYYMMDD")
    time_text = time_text or "0000"
    if len(time_text) not in (4, 6) or not time_text.isdigit():
        raise ValueError(f"time {time_text!r} is not HHMM or HHMMSS")
    try:
        day = date(int(date_text[:4]), int(date_text[4:6]), int(date_text[6:8]))
    except ValueError as exc:
        raise ValueError(f"date {date_text!r} is not a calendar date") from exc
    hh, mm = int(time_text[:2]), int(time_text[2:4])
    ss = int(time_text[4:6]) if len(time_text) == 6 else 0
    if mm > 59 or ss > 59:
        raise ValueError(f"time {time_text!r} has minutes or seconds above 59")
    tc = _time_code_cached(code, zone)
    elapsed = timedelta(hours=hh, minutes=mm, seconds=ss)
    if tc.authoritative:
        if hh > 23:
            raise ValueError(
                f"time {time_text!r} with time code {tc.code} is past 23:59 (only stamps "
                "labelled in elapsed hours may run past midnight)"
            )
        assert tc.utc_offset_hours is not None
        naive = datetime(day.year, day.month, day.day) + elapsed
        return (naive - timedelta(hours=tc.utc_offset_hours)).replace(tzinfo=UTC), True
    local_zone = tc.zone or zone
    midnight, length = _midnight(day, local_zone)
    if elapsed > timedelta(minutes=length):
        kind = {1380: " (spring-forward day)", 1500: " (fall-back day)"}.get(length, "")
        raise ValueError(
            f"label {time_text} is past the end of {day.isoformat()}, which has "
            f"{length // 60} hours{kind} in {local_zone}"
        )
    return midnight + elapsed, False


def _zone_codes(zone: str) -> tuple[str, str, str] | None:
    """(bare, daylight, standard) X12 codes of an IANA zone, or None when X12 has none."""
    for code, entry in _config.load("x12_time_codes")["codes"].items():
        if entry.get("zone") == zone:
            return code, code[0] + "D", code[0] + "S"
    return None


def format_stamps(
    start_utc: pd.DatetimeIndex, end_utc: pd.DatetimeIndex, zone: str, style: TimeCodeStyle
) -> tuple[list[str], list[str], list[str]]:
    """UTC interval ends as X12 ``(dates, times, codes)``.

    ``daylight-standard`` writes local clock time with the daylight or standard code (``UT`` in
    UTC for a zone X12 has no code for). ``elapsed`` writes the elapsed-hours label of the
    interval's local day (the day of its start) with the zone's bare code, the convention of
    003_bfb20267a3df903e.txt, FAQ 21.
    """
    codes = _zone_codes(zone)
    if style == "daylight-standard":
        if codes is None:
            utc = end_utc.tz_convert("UTC")
            n = len(utc)
            return list(utc.strftime("%Y%m%d")), list(utc.strftime("%H%M%S")), ["UT"] * n
        local = end_utc.tz_convert(zone)
        dst = np.array([bool(t.dst()) for t in local])
        tcodes = np.where(dst, codes[1], codes[2]).tolist()
        return list(local.strftime("%Y%m%d")), _hhmm(local.strftime("%H%M%S")), tcodes
    if style != "elapsed":
        raise InputError(
            f"time-code style {style!r} is not known", "use 'daylight-standard' or 'elapsed'"
        )
    local_start = start_utc.tz_convert(zone)
    days = local_start.normalize()
    # Only the local date is taken from normalize(); midnight itself comes from the zone rules.
    midnights = pd.DatetimeIndex([_midnight(d.date(), zone)[0] for d in days])
    elapsed_s = ((end_utc - midnights) / pd.Timedelta(seconds=1)).astype(np.int64)
    times = [f"{s // 3600:02d}{(s % 3600) // 60:02d}{s % 60:02d}" for s in elapsed_s]
    bare = codes[0] if codes else ""
    return list(days.strftime("%Y%m%d")), _hhmm(times), [bare] * len(times)


def _hhmm(times: list[str] | pd.Index) -> list[str]:
    """Drop zero seconds: HHMMSS -> HHMM, the usual 867 form."""
    return [t[:4] if t.endswith("00") else t for t in times]
