"""Broken 867 input: each error names the segment number and says how to fix it."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridflex.errors import InputError
from gridflex.meterdata import read_867
from tests.meterdata.conftest import FIXTURES


def _read(text: str):
    return read_867(text.encode())


def _segment_number(text: str, startswith: str, occurrence: int = 1) -> int:
    """1-based number of the segment starting with ``startswith`` (one segment a line here)."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if line.startswith(startswith)]
    return hits[occurrence - 1]


def test_wrong_se_count_names_the_se_segment(fixture_text):
    text = fixture_text("spring_forward_elapsed.x12").replace("SE*61*0001", "SE*60*0001")
    n = _segment_number(text, "SE*")
    with pytest.raises(InputError, match=rf"segment {n} \(SE\*60\): SE01 says 60 .* has 61"):
        _read(text)


def test_wrong_ge_count_names_the_ge_segment(fixture_text):
    text = fixture_text("split_boundary.x12").replace("GE*2*303", "GE*3*303")
    n = _segment_number(text, "GE*")
    with pytest.raises(InputError, match=rf"segment {n} \(GE\*3\): GE01 says 3 .* has 2"):
        _read(text)


def test_wrong_iea_count_names_the_iea_segment(fixture_text):
    text = fixture_text("split_boundary.x12").replace("IEA*1*", "IEA*2*")
    n = _segment_number(text, "IEA*")
    with pytest.raises(InputError, match=rf"segment {n} \(IEA\*2\): IEA01 says 2 functional"):
        _read(text)


def test_mismatched_control_numbers(fixture_text):
    text = fixture_text("split_boundary.x12")
    with pytest.raises(InputError, match=r"SE02 control number '0009' does not match ST02 '0001'"):
        _read(text.replace("SE*19*0001", "SE*19*0009"))
    with pytest.raises(InputError, match=r"GE02 control number '999'"):
        _read(text.replace("GE*2*303", "GE*2*999"))
    with pytest.raises(InputError, match=r"IEA02 control number '000000999'"):
        _read(text.replace("IEA*1*000000303", "IEA*1*000000999"))


def test_missing_se_trailer(fixture_text):
    text = fixture_text("spring_forward_elapsed.x12").replace("SE*61*0001~\n", "")
    with pytest.raises(InputError, match=r"opened at segment 3 has no SE trailer"):
        _read(text)


def test_qty_without_its_dtm(fixture_text):
    text = fixture_text("spring_forward_elapsed.x12")
    # Drop the stamp of the fifth interval: its QTY is followed by the next QTY.
    text = text.replace("DTM*582*20260308*0500*CT~\n", "")
    text = text.replace("SE*61*0001", "SE*60*0001")
    n = _segment_number(text, "QTY*QD*1.05")
    with pytest.raises(InputError, match=rf"segment {n} \(QTY\*QD\): QTY without its DTM\*582"):
        _read(text)


def test_dtm_without_qty(fixture_text):
    text = fixture_text("spring_forward_elapsed.x12").replace("QTY*QD*1.05*KH~\n", "")
    text = text.replace("SE*61*0001", "SE*60*0001")
    n = _segment_number(text, "DTM*582*20260308*0500")
    with pytest.raises(InputError, match=rf"segment {n} \(DTM\*582\): DTM\*582 .* no QTY"):
        _read(text)


def test_24_hour_labels_on_the_spring_forward_day_do_not_fit(fixture_text):
    # A sender that ignores DST sends 24 values 01..24: the day only has 23 hours.
    text = fixture_text("spring_forward_elapsed.x12").replace(
        "SE*61*0001", "QTY*QD*1.24*KH~\nDTM*582*20260308*2400*CT~\nSE*63*0001"
    )
    text = text.replace("QTY*QD*25.76*KH", "QTY*QD*27*KH")
    n = _segment_number(text, "DTM*582*20260308*2400")
    with pytest.raises(
        InputError,
        match=rf"segment {n} \(DTM\*582\): label 2400 is past the end of 2026-03-08, which has "
        r"23 hours \(spring-forward day\)",
    ):
        _read(text)


def test_25_hour_labels_on_an_ordinary_day_do_not_fit(fixture_text):
    text = fixture_text("fall_back_elapsed.x12").replace("20261101*", "20261108*")
    text = text.replace("DTM*582*20261102*0000~", "DTM*582*20261108*2500~")
    n = _segment_number(text, "DTM*582*20261108*2500")
    with pytest.raises(InputError, match=rf"segment {n} .*which has 24 hours in America/Chicago"):
        _read(text)


def test_duplicate_interval_names_both_segments(fixture_text):
    text = fixture_text("fall_back_codes.x12")
    # Label the second 01:00 (CST) as daylight time too: the hour is sent twice.
    text = text.replace("DTM*582*20261101*0100*CS", "DTM*582*20261101*0100*CD")
    first = _segment_number(text, "DTM*582*20261101*0100*CD", 1)
    second = _segment_number(text, "DTM*582*20261101*0100*CD", 2)
    with pytest.raises(
        InputError,
        match=rf"segment {second} \(DTM\*582\): duplicate interval for meter 123456 ending "
        rf"2026-11-01T06:00:00\+00:00 \(first at segment {first}\)",
    ):
        _read(text)


def test_duplicate_across_transactions_that_is_not_a_boundary(fixture_text):
    text = fixture_text("split_boundary_dates_only.x12")
    # The second bill repeats the first bill's first hour (13:00 end), not the boundary hour.
    text = text.replace(
        "QTY*QD*2.5*KH~\nDTM*582*20260415*1600*CD", "QTY*QD*2.5*KH~\nDTM*582*20260415*1300*CD"
    )
    text = text.replace("QTY*QD*6.8*KH", "QTY*QD*6.8*KH")
    with pytest.raises(
        InputError,
        match=r"duplicate interval for meter 555 starting "
        r"2026-04-15T1[79]:00:00\+00:00 at segments \d+, \d+",
    ):
        _read(text)


def test_totals_are_checked_against_the_intervals(fixture_text):
    text = fixture_text("subtractive_unmetered.x12").replace("QTY*QD*8.5*KH", "QTY*QD*12*KH")
    n = _segment_number(text, "QTY*QD*12*KH")
    with pytest.raises(
        InputError,
        match=rf"segment {n} \(QTY\*QD\): service point SP2001 total "
        r"12 kWh does not match the sum of its intervals 8.5 kWh",
    ):
        _read(text)
    assert len(read_867(text.encode(), check_totals=False).intervals) == 12
    text = fixture_text("subtractive_unmetered.x12").replace("MEA*AA*PRQ*4.5", "MEA*AA*PRQ*6")
    with pytest.raises(InputError, match=r"meter SUB01 total 6 kWh"):
        _read(text)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("DTM*582*20260308*0500*CT", "DTM*582*20260308*0500*XX", r"unknown X12 time code 'XX'"),
        ("DTM*582*20260308*0500*CT", "DTM*582*2026030*0500*CT", r"date '2026030' is not CCYYMMDD"),
        ("DTM*582*20260308*0500*CT", "DTM*582*20260308*0560*CT", r"minutes or seconds above 59"),
        ("QTY*QD*1.05*KH", "QTY*QD*1,05*KH", r"element 2 '1,05' is not a number"),
        ("QTY*QD*1.05*KH", "QTY*QD*1.05*K1", r"unit K1 is not KH"),
        ("QTY*QD*1.05*KH", "QTY*ZZ*1.05*KH", r"quantity qualifier 'ZZ' is not interval usage"),
        ("REF*JH*A", "REF*JH*X", r"meter role 'X' is not known"),
        ("REF*MG*123456~\n", "", r"interval loop has no REF\*MG meter number"),
        ("BPT*00*AIC20260310SF01*20260310*C1", "BPT*00*X*20260310*ZZ", r"BPT04 report type 'ZZ'"),
    ],
)
def test_bad_elements_name_their_segment(fixture_text, old, new, message):
    text = fixture_text("spring_forward_elapsed.x12")
    assert old in text
    text = text.replace(old, new, 1)
    if not new:
        text = text.replace("SE*61*0001", "SE*60*0001")
    with pytest.raises(InputError, match=r"segment \d+ \(.*\): .*" + message):
        _read(text)


def test_dst_time_code_stamp_past_midnight_is_refused(fixture_text):
    text = fixture_text("fall_back_codes.x12").replace(
        "DTM*582*20261102*0000*CS", "DTM*582*20261101*2400*CS"
    )
    with pytest.raises(InputError, match=r"time '2400' with time code CS is past 23:59"):
        _read(text)


def test_unmetered_loop_with_a_real_meter_number(fixture_text):
    text = fixture_text("subtractive_unmetered.x12").replace("REF*MG*99999999", "REF*MG*4444")
    with pytest.raises(InputError, match=r"unmetered loop .* names meter '4444'.*99999999"):
        _read(text)


def test_two_service_points_in_one_transaction(fixture_text):
    text = fixture_text("subtractive_unmetered.x12").replace(
        "REF*6W*2~", "REF*6W*2~\nREF*SPL*SP9999~"
    )
    text = text.replace("SE*42*0001", "SE*43*0001")
    with pytest.raises(InputError, match=r"names several service points.*one 867 per service"):
        _read(text)


def test_not_an_interchange():
    with pytest.raises(InputError, match=r"not a readable X12 interchange"):
        read_867(b"hello world, this is not X12")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=re.escape(str(tmp_path / "nope.x12"))):
        read_867(tmp_path / "nope.x12")


def test_empty_interchange(fixture_text):
    text = fixture_text("spring_forward_elapsed.x12")
    lines = text.splitlines(keepends=True)
    empty = "".join([lines[0], lines[1], "GE*0*101~\n", "IEA*1*000000101~\n"])
    with pytest.raises(InputError, match=r"holds no transaction sets"):
        _read(empty)


def test_unterminated_last_segment(fixture_text):
    text = fixture_text("spring_forward_elapsed.x12").rstrip().removesuffix("~")
    with pytest.raises(InputError, match=r"last segment \('IEA\*1\*000000101'.*has no terminator"):
        _read(text)


def test_doubled_terminator_is_an_empty_segment(fixture_text):
    text = fixture_text("spring_forward_elapsed.x12").replace("REF*6W*1~", "REF*6W*1~~")
    with pytest.raises(InputError, match=r"segment 17 has no tag"):
        _read(text)


def _recount(lines: list[str]) -> list[str]:
    """Fix SE01 after a segment was added or removed (one segment per line)."""
    out, start = [], None
    for line in lines:
        if line.startswith("ST*"):
            start = len(out)
        if line.startswith("SE*") and start is not None:
            parts = line.split("*")
            parts[1] = str(len(out) - start + 1)
            line = "*".join(parts)
        out.append(line)
    return out


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_any_damaged_file_reads_or_fails_with_an_input_error(data):
    # Robustness: deleting, duplicating or editing one segment never crashes the reader.
    name = data.draw(
        st.sampled_from(["subtractive_unmetered.x12", "split_boundary.x12", "fall_back_codes.x12"])
    )
    lines = (FIXTURES / name).read_text().splitlines(keepends=True)
    i = data.draw(st.integers(1, len(lines) - 1))
    action = data.draw(st.sampled_from(["delete", "duplicate", "edit"]))
    if action == "delete":
        del lines[i]
    elif action == "duplicate":
        lines.insert(i, lines[i])
    else:
        parts = lines[i].rstrip("~\n").split("*")
        k = data.draw(st.integers(0, len(parts) - 1))
        parts[k] = data.draw(st.text("0123456789ABCDSXQ.-", max_size=9))
        lines[i] = "*".join(parts) + "~\n"
    if data.draw(st.booleans()):
        lines = _recount(lines)  # get past the SE01 check into the loop reader
    try:
        result = read_867("".join(lines).encode())
    except InputError:
        return
    else:
        assert list(result.intervals.columns) == [
            "service_point",
            "meter",
            "interval_start",
            "interval_end",
            "kwh",
        ]
