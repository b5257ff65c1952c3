"""Known answers: hand-written 867 files whose UTC intervals were worked out by hand.

Seed: 003_bfb20267a3df903e.txt, FAQ 18-22 (DST days, split boundary hour, subtractive meters,
unmetered 99999999); 000_9d43a5ca67169be9.txt (generation reads negative).
"""

from __future__ import annotations

import pandas as pd
import pytest

from gridflex.errors import InputError
from gridflex.meterdata import combine_867, read_867, write_867
from tests.meterdata.conftest import FIXTURES


@pytest.mark.parametrize("name", ["spring_forward_elapsed.x12", "spring_forward_codes.x12"])
def test_spring_forward_day_has_23_values_at_known_utc(name, expected):
    result = read_867(FIXTURES / name)
    got = result.intervals
    want = expected("spring_forward_expected.csv")
    assert len(got) == 23
    pd.testing.assert_frame_equal(
        got[["interval_start", "interval_end", "kwh"]], want, check_exact=False, atol=1e-12
    )
    # The value labelled 02:00 is really the hour ending 03:00 CDT = 08:00Z (FAQ 21).
    row = got[got["kwh"] == 1.02].iloc[0]
    assert row["interval_end"] == pd.Timestamp("2026-03-08T08:00Z")
    assert set(got["service_point"]) == {"SP1001"}
    assert set(got["meter"]) == {"123456"}


@pytest.mark.parametrize("name", ["fall_back_elapsed.x12", "fall_back_codes.x12"])
def test_fall_back_day_has_25_values_at_known_utc(name, expected):
    got = read_867(FIXTURES / name).intervals
    want = expected("fall_back_expected.csv")
    assert len(got) == 25
    pd.testing.assert_frame_equal(
        got[["interval_start", "interval_end", "kwh"]], want, check_exact=False, atol=1e-12
    )
    # The second 2:00 read is reported as 3:00 (FAQ 21): it ends 02:00 CST = 08:00Z.
    assert got.loc[got["kwh"] == 2.03, "interval_end"].iloc[0] == pd.Timestamp("2026-11-01T08:00Z")


def test_elapsed_labels_are_counted_and_codes_are_not():
    elapsed = read_867(FIXTURES / "fall_back_elapsed.x12").transactions
    coded = read_867(FIXTURES / "fall_back_codes.x12").transactions
    assert elapsed["elapsed_hour_labels"].iloc[0] == 25
    assert coded["elapsed_hour_labels"].iloc[0] == 0


def test_a_different_zone_moves_elapsed_labels_but_not_coded_ones():
    # Eastern time is one hour ahead of Central: elapsed labels move, CD/CS stamps do not.
    eastern = read_867(FIXTURES / "spring_forward_elapsed.x12", zone="America/New_York")
    assert eastern.intervals["interval_start"].iloc[0] == pd.Timestamp("2026-03-08T06:00Z")
    bare_free = (FIXTURES / "fall_back_elapsed.x12").read_bytes()
    moved = read_867(bare_free, zone="America/New_York").intervals
    assert moved["interval_start"].iloc[0] == pd.Timestamp("2026-11-01T04:00Z")
    coded = read_867(FIXTURES / "fall_back_codes.x12", zone="America/New_York").intervals
    assert coded["interval_start"].iloc[0] == pd.Timestamp("2026-11-01T05:00Z")


def test_split_boundary_hour_is_two_partial_rows_that_add_up():
    result = read_867(FIXTURES / "split_boundary.x12")
    got = result.intervals.set_index("interval_start")
    # Read at 14:30 CDT = 19:30Z: 14:00-14:30 in the first bill, 14:30-15:00 in the second.
    first = got.loc[pd.Timestamp("2026-04-15T19:00Z")]
    second = got.loc[pd.Timestamp("2026-04-15T19:30Z")]
    assert first["interval_end"] == pd.Timestamp("2026-04-15T19:30Z")
    assert first["kwh"] == pytest.approx(1.2)
    assert second["interval_end"] == pd.Timestamp("2026-04-15T20:00Z")
    assert second["kwh"] == pytest.approx(1.8)
    assert first["kwh"] + second["kwh"] == pytest.approx(3.0)
    assert list(result.transactions["period_end"]) == [
        pd.Timestamp("2026-04-15T19:30Z"),
        pd.Timestamp("2026-04-15T22:00Z"),
    ]
    # One service point, two billings: two transactions, one meter.
    assert len(result.transactions) == 2
    assert len(result.meters) == 1
    assert result.intervals["kwh"].sum() == pytest.approx(14.0)


def test_split_boundary_without_times_adds_the_two_partial_values():
    result = read_867(FIXTURES / "split_boundary_dates_only.x12")
    hour = result.intervals[result.intervals["interval_start"] == pd.Timestamp("2026-04-15T19:00Z")]
    assert len(hour) == 1
    assert hour["interval_end"].iloc[0] == pd.Timestamp("2026-04-15T20:00Z")
    assert hour["kwh"].iloc[0] == pytest.approx(3.0)
    assert list(result.transactions["service_end_date"]) == ["2026-04-15", "2026-04-15"]


def test_split_boundary_across_two_files_combines(fixture_text):
    text = fixture_text("split_boundary_dates_only.x12")
    lines = text.splitlines(keepends=True)
    # Cut the interchange into two interchanges of one transaction each (hand-edited envelope).
    se1 = next(i for i, line in enumerate(lines) if line.startswith("SE*19*0001"))
    head, first, second = lines[:2], lines[2 : se1 + 1], lines[se1 + 1 : -2]
    tail = ["GE*1*303~\n", "IEA*1*000000303~\n"]
    a = read_867("".join(head + first + tail).encode())
    b = read_867("".join(head + second + tail).encode())
    both = combine_867([a, b]).intervals
    hour = both[both["interval_start"] == pd.Timestamp("2026-04-15T19:00Z")]
    assert hour["kwh"].tolist() == pytest.approx([3.0])
    assert len(both) == 5


def test_subtractive_meter_subtracts_and_generation_reads_negative():
    result = read_867(FIXTURES / "subtractive_unmetered.x12")
    iv = result.intervals
    sp = iv[iv["service_point"] == "SP2001"]
    by_meter = sp.groupby("meter")["kwh"].sum()
    assert by_meter["MAIN01"] == pytest.approx(18.0)
    assert by_meter["SUB01"] == pytest.approx(-4.5)  # REF*JH*S (FAQ 19)
    assert by_meter["PRD01"] == pytest.approx(-5.0)  # QTY*87 received: generation negative
    # The service point's usage is the plain sum, and matches PTD*SU QTY*QD*8.5.
    assert sp["kwh"].sum() == pytest.approx(8.5)
    roles = result.meters.set_index("meter")["role"]
    assert roles["SUB01"] == "S"
    assert roles["MAIN01"] == "A"


def test_unmetered_service_point_carries_meter_99999999():
    result = read_867(FIXTURES / "subtractive_unmetered.x12")
    unmetered = result.meters[result.meters["unmetered"]]
    assert unmetered[["service_point", "meter"]].values.tolist() == [["SP2002", "99999999"]]
    iv = result.intervals[result.intervals["service_point"] == "SP2002"]
    assert iv["kwh"].tolist() == pytest.approx([0.8, 0.8, 0.8])


def test_one_transaction_per_service_point_whatever_the_meter_count():
    result = read_867(FIXTURES / "subtractive_unmetered.x12")
    txns = result.transactions.set_index("service_point")
    assert txns.loc["SP2001", "meters"] == 3
    assert txns.loc["SP2002", "meters"] == 1
    assert result.summary().shape[0] == 4


@pytest.mark.parametrize("layout", ["one line", "crlf"])
def test_segment_layout_does_not_matter(fixture_text, layout, expected):
    text = fixture_text("spring_forward_codes.x12")
    text = text.replace("\n", "") if layout == "one line" else text.replace("\n", "\r\n")
    got = read_867(text.encode()).intervals
    want = expected("spring_forward_expected.csv")
    assert got["interval_end"].tolist() == want["interval_end"].tolist()


def test_combining_the_same_bill_twice_is_refused():
    bill = read_867(FIXTURES / "subtractive_unmetered.x12")
    with pytest.raises(InputError, match=r"duplicate interval for meter MAIN01 .* readings 1, 2"):
        combine_867([bill, bill])


def test_unmetered_period_total_is_one_row_over_the_service_period(fixture_text):
    # Lighting usage sent as a monthly total in PTD*BC (no interval stamps).
    text = fixture_text("subtractive_unmetered.x12")
    head, _, _ = text.partition("ST*867*0002~\n")
    text = head + (
        "ST*867*0002~\nBPT*00*AIC20260602SU02*20260602*C1~\nREF*12*7711112222~\n"
        "REF*SPL*SP2002~\nPTD*SU~\nDTM*150*20260501~\nDTM*151*20260601~\nQTY*QD*96.5*KH~\n"
        "PTD*BC***OZ*EL~\nREF*MG*99999999~\nQTY*QD*96.5*KH~\nSE*12*0002~\nGE*2*404~\n"
        "IEA*1*000000404~\n"
    )
    result = read_867(text.encode())
    row = result.intervals[result.intervals["service_point"] == "SP2002"]
    assert len(row) == 1
    # Local midnight 1 May (CDT) to local midnight 1 June (CDT).
    assert row["interval_start"].iloc[0] == pd.Timestamp("2026-05-01T05:00Z")
    assert row["interval_end"].iloc[0] == pd.Timestamp("2026-06-01T05:00Z")
    assert row["kwh"].iloc[0] == pytest.approx(96.5)
    again = read_867(write_867(result.intervals, result.meters, result.periods))
    pd.testing.assert_frame_equal(again.intervals, result.intervals)
