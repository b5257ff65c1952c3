"""Write -> read is the identity for any valid tidy series, DST days included (hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridflex.errors import InputError
from gridflex.meterdata import Edi867Header, Envelope, read_867, write_867

ZONES = ["America/Chicago", "America/New_York", "America/Denver"]
UTC_NS = "datetime64[ns, UTC]"


def _utc(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({"interval_start": UTC_NS, "interval_end": UTC_NS})


def _second_sunday_of_march(year: int) -> date:
    d = date(year, 3, 8)
    return d + timedelta(days=(6 - d.weekday()) % 7)


def _first_sunday_of_november(year: int) -> date:
    d = date(year, 11, 1)
    return d + timedelta(days=(6 - d.weekday()) % 7)


@st.composite
def series(draw):
    zone = draw(st.sampled_from(ZONES))
    year = draw(st.integers(2008, 2035))
    anchor = draw(
        st.sampled_from(
            [_second_sunday_of_march(year), _first_sunday_of_november(year), date(year, 7, 1)]
        )
    )
    step_min = draw(st.sampled_from([60, 60, 15]))
    start_local = pd.Timestamp(anchor - timedelta(days=draw(st.integers(0, 1)))).tz_localize(zone)
    offset_steps = draw(st.integers(0, 24 * 60 // step_min))
    start = start_local.tz_convert("UTC") + pd.Timedelta(minutes=step_min * offset_steps)
    n = draw(st.integers(2, 60 * 60 // step_min))
    starts = start + pd.to_timedelta(np.arange(n) * step_min, unit="min")
    values = st.floats(-5000, 5000, allow_nan=False, allow_subnormal=False).map(
        lambda v: round(v, 4)
    )
    meters_n = draw(st.integers(1, 3))
    rows, meters = [], []
    for sp in draw(st.sets(st.sampled_from(["SP1", "SP2", "7001"]), min_size=1, max_size=2)):
        names = draw(
            st.lists(
                st.sampled_from(["M1", "M2", "99999999", "123"]),
                min_size=1,
                max_size=meters_n,
                unique=True,
            )
        )
        for m in names:
            role = draw(st.sampled_from(["A", "S"]))
            meters.append({"service_point": sp, "meter": m, "role": role, "channel": "1"})
            keep = draw(st.lists(st.booleans(), min_size=n, max_size=n))
            # Two adjacent stamps show the interval length; gaps elsewhere are multiples of it.
            keep[0] = keep[1] = True
            for k in range(n):
                if keep[k]:
                    rows.append(
                        {
                            "service_point": sp,
                            "meter": m,
                            "interval_start": starts[k],
                            "interval_end": starts[k] + pd.Timedelta(minutes=step_min),
                            "kwh": draw(values),
                        }
                    )
    frame = pd.DataFrame(rows)
    frame = frame.sort_values(["service_point", "meter", "interval_start"]).reset_index(drop=True)
    style = draw(st.sampled_from(["daylight-standard", "elapsed"]))
    return frame, pd.DataFrame(meters), zone, style


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(series())
def test_write_then_read_is_identity(case):
    frame, meters, zone, style = case
    payload = write_867(frame, meters, time_codes=style, zone=zone)
    result = read_867(payload, zone=zone)
    got = result.intervals
    want = frame.astype(
        {"interval_start": "datetime64[ns, UTC]", "interval_end": "datetime64[ns, UTC]"}
    )
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_exact=True)
    roles = result.meters.set_index(["service_point", "meter"])["role"].to_dict()
    assert roles == meters.set_index(["service_point", "meter"])["role"].to_dict()
    assert len(result.transactions) == frame["service_point"].nunique()


@settings(max_examples=25, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    year=st.integers(2010, 2035),
    split_minutes=st.integers(1, 59),
    style=st.sampled_from(["daylight-standard", "elapsed"]),
    kwh=st.lists(
        st.floats(0, 100, allow_nan=False).map(lambda v: round(v, 3)), min_size=8, max_size=8
    ),
)
def test_split_billing_boundary_round_trips(zone, year, split_minutes, style, kwh):
    # Two billing periods of one service point meet mid-hour on the fall-back day.
    day = _first_sunday_of_november(year)
    start = pd.Timestamp(day).tz_localize(zone).tz_convert("UTC")
    hours = start + pd.to_timedelta(np.arange(7), unit="h")
    cut = hours[3] + pd.Timedelta(minutes=split_minutes)
    starts = [*hours[:3], hours[3], cut, *hours[4:]]
    ends = [*hours[1:4], cut, hours[4], *(h + pd.Timedelta(hours=1) for h in hours[4:])]
    frame = pd.DataFrame(
        {
            "service_point": "SP1",
            "meter": "M1",
            "interval_start": starts,
            "interval_end": ends,
            "kwh": kwh,
        }
    )
    periods = pd.DataFrame(
        {
            "service_point": ["SP1", "SP1"],
            "period_start": [hours[0], cut],
            "period_end": [cut, ends[-1]],
        }
    )
    payload = write_867(frame, periods=periods, time_codes=style, zone=zone)
    assert payload.count(b"ST*867*") == 2
    result = read_867(payload, zone=zone)
    want = frame.astype(
        {"interval_start": "datetime64[ns, UTC]", "interval_end": "datetime64[ns, UTC]"}
    )
    pd.testing.assert_frame_equal(result.intervals, want, check_exact=True)
    pd.testing.assert_frame_equal(
        result.periods,
        periods.astype(
            {"period_start": "datetime64[ns, UTC]", "period_end": "datetime64[ns, UTC]"}
        ),
    )


def test_writer_output_is_readable_by_the_envelope_parser_of_ansi_x12():
    # A second, independent check of our envelopes: ansi-x12's own parser accepts them.
    from x12 import parse_x12_interchange, tokenize_x12

    idx = pd.date_range("2026-03-07T06:00Z", periods=48, freq="h")
    frame = pd.DataFrame(
        {
            "service_point": "SP1",
            "meter": "M1",
            "interval_start": idx,
            "interval_end": idx + pd.Timedelta(hours=1),
            "kwh": 1.5,
        }
    )
    payload = write_867(
        frame,
        header=Edi867Header(report_type="C1"),
        envelope=Envelope(sender_id="006936017", receiver_id="RES01", interchange_control_number=7),
    )
    interchange = parse_x12_interchange(tokenize_x12(payload))
    assert interchange.actual_group_count == 1
    assert payload.startswith(b"ISA*")
    assert len(payload.split(b"~")[0]) == 105


def test_writer_refuses_an_interval_straddling_a_billing_boundary():
    idx = pd.date_range("2026-04-15T17:00Z", periods=4, freq="h")
    frame = pd.DataFrame(
        {
            "service_point": "SP1",
            "meter": "M1",
            "interval_start": idx,
            "interval_end": idx + pd.Timedelta(hours=1),
            "kwh": 1.0,
        }
    )
    periods = pd.DataFrame(
        {
            "service_point": ["SP1", "SP1"],
            "period_start": [idx[0], idx[1] + pd.Timedelta(minutes=30)],
            "period_end": [idx[1] + pd.Timedelta(minutes=30), idx[-1] + pd.Timedelta(hours=1)],
        }
    )
    with pytest.raises(InputError, match=r"row 1 .* straddles the billing-period boundary"):
        write_867(frame, periods=periods)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="kwh"), r"missing column\(s\) kwh"),
        (
            lambda f: f.assign(interval_start=f["interval_start"].dt.tz_localize(None)),
            r"column interval_start has timestamps without a time zone",
        ),
        (lambda f: f.assign(kwh=np.nan), r"row 0: kwh is not a finite number"),
        (lambda f: f.assign(interval_end=f["interval_start"]), r"interval_end is not after"),
        (lambda f: pd.concat([f, f.iloc[:1]]), r"duplicate interval for service point SP1"),
    ],
)
def test_writer_input_errors(change, message):
    idx = pd.date_range("2026-04-15T17:00Z", periods=3, freq="h")
    frame = pd.DataFrame(
        {
            "service_point": "SP1",
            "meter": "M1",
            "interval_start": idx,
            "interval_end": idx + pd.Timedelta(hours=1),
            "kwh": 1.0,
        }
    )
    with pytest.raises(InputError, match=message):
        write_867(change(frame))
