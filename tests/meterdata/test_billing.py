"""Billing windows, enrollment effective dates, prorating and the SBO decision.

Seed: 003_bfb20267a3df903e.txt, FAQ 1-9 and 16. Expected dates are worked out on a calendar.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from gridflex.errors import InputError
from gridflex.meterdata.billing import (
    AccountState,
    BillingOption,
    billing_window,
    enrollment_effective,
    is_business_day,
    prorate_scalar_usage,
    single_billing_option,
    utility_holidays,
)

CHICAGO = ZoneInfo("America/Chicago")


@pytest.mark.parametrize(
    ("scheduled", "calendar", "days"),
    [
        # Plain week: Mon..Thu around a Wednesday.
        ("2026-06-03", None, ["2026-06-01", "2026-06-02", "2026-06-03", "2026-06-04"]),
        # Monday read: the two days before are last Thursday and Friday (weekend skipped).
        ("2026-06-01", None, ["2026-05-28", "2026-05-29", "2026-06-01", "2026-06-02"]),
        # Thanksgiving (Thu 26 Nov 2026) is skipped after a Wednesday read.
        ("2026-11-25", None, ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-27"]),
        # Christmas 2022 fell on Sunday: NERC observes it on Monday 26 Dec.
        ("2022-12-23", "nerc", ["2022-12-21", "2022-12-22", "2022-12-23", "2022-12-27"]),
        # Independence Day 2026 is a Saturday: NERC does not move it, so Fri 3 Jul is a
        # business day; the Illinois state calendar observes it on Friday.
        ("2026-07-06", "nerc", ["2026-07-02", "2026-07-03", "2026-07-06", "2026-07-07"]),
        ("2026-07-06", "us-il", ["2026-07-01", "2026-07-02", "2026-07-06", "2026-07-07"]),
        # Lincoln's Birthday (Thu 12 Feb) and Washington's Birthday (Mon 16 Feb) are Illinois
        # holidays but not NERC ones.
        ("2026-02-13", "us-il", ["2026-02-10", "2026-02-11", "2026-02-13", "2026-02-17"]),
        ("2026-02-13", "nerc", ["2026-02-11", "2026-02-12", "2026-02-13", "2026-02-16"]),
    ],
)
def test_billing_window(scheduled, calendar, days):
    window = billing_window(date.fromisoformat(scheduled), calendar)
    assert [d.isoformat() for d in window.days] == days
    assert window.first == date.fromisoformat(days[0])
    assert window.last == date.fromisoformat(days[-1])
    assert date.fromisoformat(scheduled) in window


@pytest.mark.parametrize(
    ("day", "reason"),
    [
        ("2026-11-28", "Saturday"),
        ("2026-11-26", "Thanksgiving Day"),
        ("2027-07-05", "Independence"),
    ],
)
def test_scheduled_read_on_a_non_business_day_is_refused(day, reason):
    with pytest.raises(InputError, match=rf"{day} is not a business day \({reason}"):
        billing_window(date.fromisoformat(day))


def test_nerc_calendar_has_six_holidays_a_year():
    hol = utility_holidays([2027], "nerc")
    assert len(hol) == 6
    assert date(2027, 12, 25) in hol  # Saturday: not moved to Friday under NERC
    assert date(2027, 12, 24) not in hol
    assert not is_business_day(date(2027, 7, 5))  # Sunday 4 July observed Monday


def test_unknown_calendar():
    with pytest.raises(InputError, match=r"holiday calendar 'uk'"):
        billing_window(date(2026, 6, 3), "uk")  # type: ignore[arg-type]


def test_on_cycle_enrollment_spans_the_window():
    got = enrollment_effective("scalar", "on-cycle", scheduled_read=date(2026, 11, 25))
    assert got.earliest == datetime(2026, 11, 23, 0, 0, tzinfo=CHICAGO)
    assert got.latest == datetime(2026, 11, 27, 23, 59, 59, tzinfo=CHICAGO)
    assert got.possible_days == billing_window(date(2026, 11, 25)).days
    assert got.edi_placeholder == date(2026, 11, 25)  # FAQ 3
    assert not got.prorated
    assert "meter is read" in got.rule
    interval = enrollment_effective("interval", "on-cycle", scheduled_read=date(2026, 11, 25))
    assert "meter data is collected" in interval.rule
    lighting = enrollment_effective(
        "scalar", "on-cycle", scheduled_read=date(2026, 11, 25), lighting=True
    )
    assert "FAQ 1-3, 16" in lighting.rule


def test_off_cycle_enrollment_is_23_59_59_of_the_requested_day():
    got = enrollment_effective("interval", "off-cycle", requested=date(2026, 3, 8))
    assert got.earliest == got.latest
    # The spring-forward day: 23:59:59 CDT = 04:59:59Z the next day.
    assert got.earliest.astimezone(UTC) == datetime(2026, 3, 9, 4, 59, 59, tzinfo=UTC)
    assert not got.prorated
    scalar = enrollment_effective("scalar", "off-cycle", requested=date(2026, 3, 8))
    assert scalar.prorated
    assert "prorated" in scalar.rule


def test_enrollment_input_errors():
    with pytest.raises(InputError, match=r"needs the scheduled meter reading date"):
        enrollment_effective("scalar", "on-cycle")
    with pytest.raises(InputError, match=r"needs the requested date"):
        enrollment_effective("scalar", "off-cycle")
    with pytest.raises(InputError, match=r"'smart' is not a valid MeterKind"):
        enrollment_effective("smart", "off-cycle", requested=date(2026, 3, 8))


def test_scalar_off_cycle_usage_is_prorated_by_elapsed_time():
    start = datetime(2026, 3, 1, 0, 0, tzinfo=CHICAGO)
    read = datetime(2026, 3, 31, 0, 0, tzinfo=CHICAGO)
    effective = enrollment_effective("scalar", "off-cycle", requested=date(2026, 3, 10)).earliest
    before, after = prorate_scalar_usage(719.0, start, read, effective)
    # 30 calendar days minus the spring-forward hour = 719 h; from 10 Mar 23:59:59 CDT to
    # 31 Mar 00:00 CDT = 480 h + 1 s.
    assert after == pytest.approx(719.0 * (480 * 3600 + 1) / (719 * 3600))
    assert before + after == pytest.approx(719.0)
    with pytest.raises(InputError, match=r"not inside the billing period"):
        prorate_scalar_usage(10.0, start, read, datetime(2026, 4, 2, tzinfo=CHICAGO))
    with pytest.raises(InputError, match=r"effective_at has no time zone"):
        prorate_scalar_usage(10.0, start, read, datetime(2026, 3, 2))


SBO, DUAL = BillingOption.SBO, BillingOption.DUAL


@pytest.mark.parametrize(
    ("state", "first", "then", "flags", "reason"),
    [
        (AccountState(), SBO, SBO, {}, "no restriction"),
        (AccountState(budget_billing=True), DUAL, DUAL, {"stays_on_budget_billing"}, "FAQ 4"),
        (AccountState(in_arrears=True), DUAL, DUAL, set(), "FAQ 6"),
        (AccountState(summary_billing=True), SBO, SBO, {"removed_from_summary_billing"}, "FAQ 7"),
        (AccountState(has_gas_service_point=True), SBO, SBO, {"gas_split_to_new_account"}, "FAQ 8"),
        (
            AccountState(has_gas_service_point=True, direct_pay=True),
            SBO,
            SBO,
            {"gas_split_to_new_account", "direct_pay_moves_to_gas_account"},
            "Direct Pay",
        ),
        (AccountState(off_cycle=True), DUAL, SBO, set(), "FAQ 9"),
        (
            AccountState(budget_billing=True, summary_billing=True, off_cycle=True),
            DUAL,
            DUAL,
            {"stays_on_budget_billing"},
            "FAQ 4",
        ),
        (
            AccountState(off_cycle=True, summary_billing=True),
            DUAL,
            SBO,
            {"removed_from_summary_billing"},
            "FAQ 7",
        ),
    ],
)
def test_single_billing_option_outcomes(state, first, then, flags, reason):
    got = single_billing_option(state)
    assert got.first_period is first
    assert got.thereafter is then
    all_flags = {
        "stays_on_budget_billing",
        "removed_from_summary_billing",
        "gas_split_to_new_account",
        "direct_pay_moves_to_gas_account",
    }
    assert {f for f in all_flags if getattr(got, f)} == set(flags)
    assert any(reason in r for r in got.reasons)
