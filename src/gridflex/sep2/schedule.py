"""Pure functions: terms → bounded control windows, and the EventStatus of a control at an instant.

A device that loses contact must keep following its agreed schedule until the published events run
out, then fall back to its DefaultDERControl (seed ``001_9847d8232b845ab9.txt``, "Real-Time Dynamic
Management & Dynamic Operating Envelopes", *Risks and Challenges*: fallback options in case of a
communication failure; issue 4). So schedules (288 month-by-hour values in the terms' local time)
and stagger phase changes are published ahead as DERControls with bounded durations: the limits
are sampled on a 15-minute UTC grid (which also aligns with the local hour of every zone whose
offset is a multiple of 15 minutes) and equal consecutive values are merged into one window, so
consecutive windows are back to back with no gap.

EventStatus follows IEEE 2030.5-2018 clause 12.1.3.1 / Table 11: Scheduled (0) before the start,
Active (1) from it, Cancelled (2) from the cancellation, Superseded (4) from the earliest start of
the superseding event; ``potentiallySuperseded`` is set while a newer overlapping event is known
but has not yet taken over.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridflex.terms import ConnectionTerms

GRID_STEP = dt.timedelta(minutes=15)
PUBLISH_HORIZON = dt.timedelta(hours=48)
"""How far ahead terms controls are published."""
MIN_COVER = dt.timedelta(hours=24)
"""Published controls always cover at least this far ahead (issue 4); topped up when less is
left than :data:`REFILL_BELOW`."""
REFILL_BELOW = dt.timedelta(hours=36)

SCHEDULED, ACTIVE, CANCELLED, CANCELLED_WITH_RANDOMIZATION, SUPERSEDED = 0, 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class LimitWindow:
    """A period over which the terms give constant limits (kW; import None = unlimited)."""

    start: dt.datetime
    end: dt.datetime
    export_limit_kw: float
    import_limit_kw: float | None

    @property
    def duration_s(self) -> int:
        return int((self.end - self.start).total_seconds())


def floor_to_grid(t: dt.datetime) -> dt.datetime:
    """``t`` rounded down to the 15-minute UTC grid."""
    t = t.astimezone(dt.UTC)
    return t.replace(minute=t.minute - t.minute % 15, second=0, microsecond=0)


def limit_windows(
    terms: ConnectionTerms, start: dt.datetime, end: dt.datetime
) -> list[LimitWindow]:
    """Windows of constant export / import limit covering ``[start, end)`` (both grid-aligned).

    Examples
    --------
    >>> t = ConnectionTerms(connection_id="c", nameplate_kw=100, export_limit_kw=80,
    ...                     agreed_at="2026-01-01T00:00:00Z")
    >>> w = limit_windows(t, dt.datetime(2026, 7, 1, tzinfo=dt.UTC),
    ...                   dt.datetime(2026, 7, 2, tzinfo=dt.UTC))
    >>> [(x.duration_s, x.export_limit_kw) for x in w]
    [(86400, 80.0)]
    """
    if end <= start:
        return []
    times = pd.date_range(start, end, freq=GRID_STEP, inclusive="left")
    exp_kw = np.asarray(terms.export_limit_kw_at(times), dtype=float)
    imp_kw = np.asarray(terms.import_limit_kw_at(times), dtype=float)
    imp_key = np.where(np.isinf(imp_kw), -1.0, imp_kw)  # inf - inf is nan: compare a stand-in
    changes = np.flatnonzero((np.diff(exp_kw) != 0) | (np.diff(imp_key) != 0)) + 1
    bounds = [0, *changes.tolist(), len(times)]
    out = []
    for a, b in itertools.pairwise(bounds):
        w_start = times[a].to_pydatetime()
        w_end = end if b == len(times) else times[b].to_pydatetime()
        imp = float(imp_kw[a])
        out.append(LimitWindow(w_start, w_end, float(exp_kw[a]), None if np.isinf(imp) else imp))
    return out


def event_status(
    start: dt.datetime,
    duration_s: int,
    now: dt.datetime,
    *,
    cancelled_at: dt.datetime | None = None,
    superseded_at: dt.datetime | None = None,
    randomized: bool = False,
) -> tuple[int, dt.datetime, bool]:
    """(currentStatus, status dateTime, potentiallySuperseded) of an event at ``now``."""
    if cancelled_at is not None and cancelled_at <= now:
        return (CANCELLED_WITH_RANDOMIZATION if randomized else CANCELLED), cancelled_at, False
    if superseded_at is not None and superseded_at <= now:
        return SUPERSEDED, superseded_at, False
    pending = superseded_at is not None
    if now >= start:
        return ACTIVE, start, pending
    return SCHEDULED, start, pending


def active_at(controls: list[dict[str, object]], when: dt.datetime) -> dict[str, object] | None:
    """The control a client executes at ``when`` among already-evaluated controls.

    Each control is a mapping with ``start`` / ``end`` (datetimes), ``status`` (EventStatus at the
    time the client last read it) and ``creation`` (datetime). Cancelled and superseded ones are
    skipped; among overlapping ones the newest creation wins (IEEE 2030.5-2018 clause 12.1.3.2).
    """
    live = [
        c
        for c in controls
        if c["status"] not in (CANCELLED, CANCELLED_WITH_RANDOMIZATION, SUPERSEDED)
        and c["start"] <= when < c["end"]  # type: ignore[operator]
    ]
    if not live:
        return None
    return max(live, key=lambda c: c["creation"])  # type: ignore[arg-type,return-value]
