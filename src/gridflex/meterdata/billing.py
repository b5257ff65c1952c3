"""Billing windows, enrollment effective dates and the single-billing-option rules.

Source: 003_bfb20267a3df903e.txt (Ameren, Resources for Retail Electric Suppliers: FAQ),
FAQ 1-9 and 16. Business days skip weekends and the utility's holidays; the calendar is chosen
in ``meterdata/data/utility.yaml`` (``holiday_calendar``: ``nerc`` by default, or ``us-il``) and
built from the ``holidays`` package.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import holidays

from gridflex.errors import InputError
from gridflex.meterdata import _config

Calendar = Literal["nerc", "us-il"]


@lru_cache(maxsize=64)
def _holidays_of_year(year: int, calendar: str) -> dict[date, str]:
    if calendar == "us-il":
        return dict(holidays.country_holidays("US", subdiv="IL", years=year, observed=True))
    if calendar != "nerc":
        raise InputError(
            f"holiday calendar {calendar!r} is not known", "use 'nerc' or 'us-il' (utility.yaml)"
        )
    names = set(_config.utility()["nerc_holidays"])
    out: dict[date, str] = {}
    # NERC rule: a holiday on Sunday is observed on Monday; one on Saturday is not moved.
    for day, name in holidays.country_holidays("US", years=year, observed=False).items():
        if name in names:
            observed = day + timedelta(days=1) if day.weekday() == 6 else day
            out[observed] = name
    return out


def utility_holidays(years: Iterable[int], calendar: Calendar | None = None) -> dict[date, str]:
    """Non-business holidays of the utility calendar for the given years (date -> name)."""
    cal = calendar or _config.utility()["holiday_calendar"]
    out: dict[date, str] = {}
    for year in years:
        out.update(_holidays_of_year(year, cal))
    return out


def non_business_reason(day: date, calendar: Calendar | None = None) -> str | None:
    """Why ``day`` is not a business day (``"Saturday"``, a holiday's name), or None."""
    if day.weekday() >= 5:
        return day.strftime("%A")
    return utility_holidays([day.year], calendar).get(day)


def is_business_day(day: date, calendar: Calendar | None = None) -> bool:
    """True on weekdays that are not utility holidays."""
    return non_business_reason(day, calendar) is None


def add_business_days(day: date, n: int, calendar: Calendar | None = None) -> date:
    """The business day ``n`` business days after ``day`` (before it when ``n`` < 0)."""
    step = 1 if n >= 0 else -1
    out = day
    for _ in range(abs(n)):
        out += timedelta(days=step)
        while not is_business_day(out, calendar):
            out += timedelta(days=step)
    return out


@dataclass(frozen=True)
class BillingWindow:
    """The business days on which an on-cycle read (and enrollment) can happen.

    Attributes
    ----------
    scheduled_read:
        The scheduled meter reading date.
    days:
        The business days of the window, in order (four: two before, the date, one after).
    """

    scheduled_read: date
    days: tuple[date, ...]

    @property
    def first(self) -> date:
        """First day of the window (where lighting service points usually bill, FAQ 16)."""
        return self.days[0]

    @property
    def last(self) -> date:
        """Last day of the window."""
        return self.days[-1]

    def __contains__(self, day: object) -> bool:
        return day in self.days


def billing_window(scheduled_read: date, calendar: Calendar | None = None) -> BillingWindow:
    """Billing window around a scheduled meter reading date.

    "A four business day period of time that extends from two business days prior to an
    account's scheduled meter reading date to one business day after" (003_bfb20267a3df903e.txt,
    FAQ 1; day counts in utility.yaml, ``billing_window``).

    Raises
    ------
    InputError
        When the scheduled reading date is itself not a business day.
    """
    reason = non_business_reason(scheduled_read, calendar)
    if reason is not None:
        raise InputError(
            f"scheduled meter reading date {scheduled_read.isoformat()} is not a business day "
            f"({reason})",
            "take the date from the utility's scheduled meter reading calendar, which lists "
            "business days only",
        )
    cfg = _config.utility()["billing_window"]
    before, after = int(cfg["business_days_before"]), int(cfg["business_days_after"])
    days = [add_business_days(scheduled_read, -k, calendar) for k in range(before, 0, -1)]
    days.append(scheduled_read)
    days += [add_business_days(scheduled_read, k, calendar) for k in range(1, after + 1)]
    return BillingWindow(scheduled_read, tuple(days))


class MeterKind(StrEnum):
    """How a service point is metered."""

    SCALAR = "scalar"
    INTERVAL = "interval"


class Cycle(StrEnum):
    """On-cycle (at the meter read) or off-cycle (on a requested date) enrollment."""

    ON = "on-cycle"
    OFF = "off-cycle"


@dataclass(frozen=True)
class EnrollmentEffective:
    """When an enrollment takes effect at a service point.

    Attributes
    ----------
    earliest, latest:
        Bounds of the effective instant (local aware datetimes). Equal for off-cycle
        enrollments; for on-cycle ones, the start of the window's first day and the end of its
        last day (the read, or the interval-data collection, happens on one of its days).
    possible_days:
        Days on which the enrollment can take effect.
    edi_placeholder:
        The date Ameren returns in its EDI response: the scheduled read date for on-cycle
        enrollments (FAQ 3), the requested date for off-cycle ones.
    prorated:
        True for off-cycle scalar enrollments: the first bill's usage is prorated (FAQ 2).
    rule:
        The seed rule applied, with its citation.
    """

    earliest: datetime
    latest: datetime
    possible_days: tuple[date, ...]
    edi_placeholder: date
    prorated: bool
    rule: str


def enrollment_effective(
    meter: MeterKind | str,
    cycle: Cycle | str,
    *,
    scheduled_read: date | None = None,
    requested: date | None = None,
    lighting: bool = False,
    calendar: Calendar | None = None,
    zone: str | None = None,
) -> EnrollmentEffective:
    """Enrollment effective date of a service point (003_bfb20267a3df903e.txt, FAQ 2, 3, 16).

    Parameters
    ----------
    meter:
        ``scalar`` or ``interval`` metering of the service point.
    cycle:
        ``on-cycle`` (needs ``scheduled_read``) or ``off-cycle`` (needs ``requested``).
    lighting:
        A lighting service point, which typically bills on the window's first day (FAQ 16):
        ``possible_days`` then starts with that day and ``edi_placeholder`` is unchanged.
    """
    try:
        meter = MeterKind(meter)
        cycle = Cycle(cycle)
    except ValueError as exc:
        raise InputError(
            str(exc), "meter is 'scalar' or 'interval'; cycle is 'on-cycle' or 'off-cycle'"
        ) from exc
    tz = ZoneInfo(zone or str(_config.utility()["zone"]))
    if cycle is Cycle.ON:
        if scheduled_read is None:
            raise InputError(
                "an on-cycle enrollment needs the scheduled meter reading date",
                "pass scheduled_read",
            )
        window = billing_window(scheduled_read, calendar)
        what = "the meter is read" if meter is MeterKind.SCALAR else "the meter data is collected"
        return EnrollmentEffective(
            earliest=datetime.combine(window.first, time(0, 0), tz),
            latest=datetime.combine(window.last, time(23, 59, 59), tz),
            possible_days=window.days,
            edi_placeholder=scheduled_read,
            prorated=False,
            rule=(
                f"on-cycle {meter.value}: effective when {what}, on one of the four business "
                "days of the billing window"
                + (" (lighting: usually the first)" if lighting else "")
                + " (003_bfb20267a3df903e.txt, FAQ 1-3"
                + (", 16)" if lighting else ")")
            ),
        )
    if requested is None:
        raise InputError(
            "an off-cycle enrollment needs the requested date", "pass requested=<date>"
        )
    h, m, s = (
        int(x) for x in str(_config.utility()["off_cycle_enrollment"]["effective_time"]).split(":")
    )
    at = datetime.combine(requested, time(h, m, s), tz)
    return EnrollmentEffective(
        earliest=at,
        latest=at,
        possible_days=(requested,),
        edi_placeholder=requested,
        prorated=meter is MeterKind.SCALAR,
        rule=(
            f"off-cycle {meter.value}: effective at 23:59:59 of the requested day"
            + ("; first bill's usage prorated" if meter is MeterKind.SCALAR else "")
            + " (003_bfb20267a3df903e.txt, FAQ 2)"
        ),
    )


def prorate_scalar_usage(
    usage_kwh: float, period_start: datetime, read_at: datetime, effective_at: datetime
) -> tuple[float, float]:
    """Split a scalar meter's billing-period usage at an off-cycle enrollment.

    No meter reading is taken at an off-cycle enrollment; "usage is prorated for the time
    between when the enrollment is effectuated and the date on which the meter is actually read"
    (003_bfb20267a3df903e.txt, FAQ 2). Time is elapsed time (aware datetimes), so a DST day
    counts 23 or 25 hours.

    Returns
    -------
    (before_kwh, after_kwh):
        Usage before the enrollment (previous supplier) and from it to the read (new supplier).
    """
    for name, value in (
        ("period_start", period_start),
        ("read_at", read_at),
        ("effective_at", effective_at),
    ):
        if value.tzinfo is None:
            raise InputError(f"{name} has no time zone", "pass timezone-aware datetimes")
    if not period_start <= effective_at <= read_at or period_start == read_at:
        raise InputError(
            f"enrollment effective {effective_at.isoformat()} is not inside the billing period "
            f"{period_start.isoformat()} .. {read_at.isoformat()}",
            "prorate only the first billing period that includes the enrollment",
        )
    # Aware datetimes sharing one tzinfo subtract as wall-clock times (Python semantics), which
    # would count a DST day as 24 h: subtract in UTC.
    start_u, read_u, eff_u = (v.astimezone(UTC) for v in (period_start, read_at, effective_at))
    share = (read_u - eff_u) / (read_u - start_u)
    after = usage_kwh * share
    return usage_kwh - after, after


class BillingOption(StrEnum):
    """Billing options of a RES-supplied account."""

    SBO = "single billing option"
    DUAL = "dual billing"


@dataclass(frozen=True)
class AccountState:
    """What Ameren looks at when an enrollment requests the single billing option."""

    budget_billing: bool = False
    in_arrears: bool = False
    summary_billing: bool = False
    has_gas_service_point: bool = False
    direct_pay: bool = False
    off_cycle: bool = False


@dataclass(frozen=True)
class SboDecision:
    """Outcome of an SBO enrollment request.

    Attributes
    ----------
    first_period:
        Billing option of the first billing period that includes the enrollment.
    thereafter:
        Billing option after that period (until the customer changes something).
    stays_on_budget_billing, removed_from_summary_billing, gas_split_to_new_account,
    direct_pay_moves_to_gas_account:
        What happens to the account.
    reasons:
        The rules that applied, each with its FAQ number.
    """

    first_period: BillingOption
    thereafter: BillingOption
    stays_on_budget_billing: bool
    removed_from_summary_billing: bool
    gas_split_to_new_account: bool
    direct_pay_moves_to_gas_account: bool
    reasons: tuple[str, ...]


def single_billing_option(state: AccountState) -> SboDecision:
    """Decide an enrollment that requests the single billing option (SBO).

    Rules (003_bfb20267a3df903e.txt): budget billing -> dual billing, stays on budget billing
    (FAQ 4); arrears -> dual billing (FAQ 6); summary billing -> removed from it, SBO (FAQ 7);
    electric and gas service points -> the gas service point moves to a new account, with Direct
    Pay (FAQ 8); off-cycle -> dual billing for the first billing period, SBO after (FAQ 9).

    Precedence (gridflex reading of the FAQ): budget billing and arrears refuse SBO outright, so
    the SBO-only consequences (summary billing removal, gas split) do not happen; both are
    reported. Otherwise the off-cycle rule only delays SBO by one period, and the SBO
    consequences apply.
    """
    reasons: list[str] = []
    if state.budget_billing:
        reasons.append("account is on budget billing: defaulted to dual billing (FAQ 4)")
    if state.in_arrears:
        reasons.append("account is in arrears: defaulted to dual billing (FAQ 6)")
    if reasons:
        return SboDecision(
            first_period=BillingOption.DUAL,
            thereafter=BillingOption.DUAL,
            stays_on_budget_billing=state.budget_billing,
            removed_from_summary_billing=False,
            gas_split_to_new_account=False,
            direct_pay_moves_to_gas_account=False,
            reasons=tuple(reasons),
        )
    first = BillingOption.SBO
    if state.off_cycle:
        first = BillingOption.DUAL
        reasons.append("off-cycle enrollment: dual billing for the first billing period (FAQ 9)")
    if state.summary_billing:
        reasons.append("account is on summary billing: removed from it and placed on SBO (FAQ 7)")
    if state.has_gas_service_point:
        reasons.append("gas service point split off to a new account number (FAQ 8)")
        if state.direct_pay:
            reasons.append("Direct Pay moves to the new gas account (FAQ 8)")
    if not reasons:
        reasons.append("no restriction applies: SBO")
    return SboDecision(
        first_period=first,
        thereafter=BillingOption.SBO,
        stays_on_budget_billing=False,
        removed_from_summary_billing=state.summary_billing,
        gas_split_to_new_account=state.has_gas_service_point,
        direct_pay_moves_to_gas_account=state.has_gas_service_point and state.direct_pay,
        reasons=tuple(reasons),
    )
