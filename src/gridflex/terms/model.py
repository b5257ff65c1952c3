"""``ConnectionTerms``: a connection's agreed operating terms, the spine of gridflex.

A study produces them, the registry keeps them (versioned, never edited in place), the envelope
engine respects them, the IEEE 2030.5 server delivers them and their fallback, and compliance checks
telemetry against them (ARCHITECTURE.md).

All limits are at the point of interconnection (POI), in kW, and non-negative: an export limit
caps power flowing *to* the grid, an import limit caps power drawn *from* it.

References
----------
.. [1] Ameren Illinois, *Flexible Interconnection and DER Orchestration Report, Phase 1*
   (Sept. 2025), ``seeds/001_9847d8232b845ab9.txt``: sections "Limited Import/Export",
   "Scheduled Import/Export Limits" (2-point seasonal up to 288 month-by-hour values),
   "Staggered Connections", "Volt/Watt", "Dynamically Managed Connections" (pure pro-rata,
   pro-rata tranches, pure LIFO) and "Real-Time Dynamic Management & Dynamic Operating
   Envelopes" (fallback limits).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    field_validator,
    model_validator,
)

MONTHS = 12
HOURS = 24

NonNegativeKw = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AllocationPolicy(StrEnum):
    """How a constrained network's available capacity is shared among dynamic connections [1]_."""

    PRO_RATA = "pro_rata"
    """Pure pro-rata: every participant is curtailed by the same share of its capacity."""
    PRO_RATA_TRANCHES = "pro_rata_tranches"
    """Pro-rata within tranches; earlier tranches are curtailed only after later ones."""
    LIFO = "lifo"
    """Pure last-in-first-out: the latest connection in the queue is curtailed first."""


class DynamicClass(_Frozen):
    """The dynamic-management class of a connection [1]_ ("Dynamically Managed Connections")."""

    policy: AllocationPolicy
    queue_position: int | None = Field(
        default=None, ge=1, description="Position in the connection queue (1 = first connected)."
    )
    tranche: int | None = Field(
        default=None, ge=1, description="Tranche number (1 = first tranche) for pro-rata tranches."
    )

    @model_validator(mode="after")
    def _policy_needs(self) -> Self:
        if self.policy is AllocationPolicy.LIFO and self.queue_position is None:
            raise ValueError(
                "dynamic.queue_position is required when dynamic.policy is 'lifo': LIFO curtails "
                "by queue order; give the connection's position in the queue (1 = first)"
            )
        if self.policy is AllocationPolicy.PRO_RATA_TRANCHES and self.tranche is None:
            raise ValueError(
                "dynamic.tranche is required when dynamic.policy is 'pro_rata_tranches'; give the "
                "tranche number (1 = first tranche)"
            )
        return self


class StaggerPhase(_Frozen):
    """One dated phase of a staggered connection: from ``start`` the given limits apply [1]_."""

    start: dt.date
    export_limit_kw: NonNegativeKw | None = None
    import_limit_kw: NonNegativeKw | None = None
    note: str = ""


class VoltWattCurve(_Frozen):
    """Piecewise-linear volt/watt curve: active power limit (% of rating) against voltage (pu).

    Below the first point the limit is the first point's value, above the last the last's
    (IEEE 1547-2018 clause 5.4.2 semantics).
    """

    v_pu: tuple[float, ...] = Field(min_length=2, description="Voltage points, per unit, rising.")
    p_pct: tuple[float, ...] = Field(
        min_length=2, description="Active power limit at each point, % of rated power."
    )

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if len(self.v_pu) != len(self.p_pct):
            raise ValueError(
                f"volt_watt_curve: v_pu has {len(self.v_pu)} points but p_pct has "
                f"{len(self.p_pct)}; give one power value per voltage point"
            )
        v = np.asarray(self.v_pu)
        p = np.asarray(self.p_pct)
        if np.any(np.diff(v) <= 0):
            raise ValueError("volt_watt_curve.v_pu must be strictly increasing")
        if np.any((v <= 0.5) | (v >= 1.5)):
            raise ValueError("volt_watt_curve.v_pu values must lie between 0.5 and 1.5 pu")
        if np.any((p < 0) | (p > 100)):
            raise ValueError("volt_watt_curve.p_pct values must lie between 0 and 100 %")
        if np.any(np.diff(p) > 0):
            raise ValueError(
                "volt_watt_curve.p_pct must not increase with voltage (volt/watt only curtails)"
            )
        return self

    def limit_pct(self, v_pu: np.ndarray | float) -> np.ndarray:
        """Active power limit (% of rating) at voltage ``v_pu`` (array in, array out)."""
        return np.interp(np.asarray(v_pu, dtype=float), self.v_pu, self.p_pct)


def _check_schedule(name: str, value: Any) -> Any:
    if value is None:
        return value
    if isinstance(value, list | tuple) and value and isinstance(value[0], list | tuple):
        sizes = [len(row) for row in value]
        if len(sizes) != MONTHS or any(n != HOURS for n in sizes):
            raise ValueError(
                f"{name} has {sum(sizes)} values in {len(sizes)} rows of {sorted(set(sizes))}; a "
                f"schedule needs {MONTHS} rows (months) of {HOURS} values (hours), local time"
            )
    arr = np.asarray(value, dtype=float)
    if arr.size != MONTHS * HOURS:
        raise ValueError(
            f"{name} has {arr.size} values; a schedule needs exactly {MONTHS * HOURS} "
            f"({MONTHS} months x {HOURS} hours, local prevailing time). A 2-point seasonal "
            "schedule is written out as 288 values too (see ConnectionTerms.seasonal_schedule)"
        )
    if arr.ndim == 1:
        arr = arr.reshape(MONTHS, HOURS)
    if arr.shape != (MONTHS, HOURS):
        raise ValueError(f"{name} must be 12 rows (months) of 24 values (hours), got {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        bad = np.argwhere(~np.isfinite(arr) | (arr < 0))[0]
        raise ValueError(
            f"{name}[month {bad[0] + 1}][hour {bad[1]}] = {arr[tuple(bad)]}: schedule values are "
            "kW at the point of interconnection and must be finite and >= 0"
        )
    return [list(map(float, row)) for row in arr]


class ConnectionTerms(_Frozen):
    """A connection's agreed operating terms (one immutable version).

    Examples
    --------
    >>> t = ConnectionTerms(connection_id="app-1", nameplate_kw=500, export_limit_kw=250,
    ...                     agreed_at="2026-01-05T00:00:00Z")
    >>> t.export_limit_kw
    250.0
    """

    connection_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    nameplate_kw: float = Field(gt=0, allow_inf_nan=False, description="AC nameplate, kW.")
    export_limit_kw: NonNegativeKw | None = Field(
        default=None, description="Static export limit at the POI, kW (None = nameplate)."
    )
    import_limit_kw: NonNegativeKw | None = Field(
        default=None, description="Static import limit at the POI, kW (None = unlimited)."
    )
    schedule_export_kw: list[list[float]] | None = Field(
        default=None, description="12 x 24 export limits (month x hour, local time), kW."
    )
    schedule_import_kw: list[list[float]] | None = Field(
        default=None, description="12 x 24 import limits (month x hour, local time), kW."
    )
    tz: str = Field(default="America/Chicago", description="IANA zone of the schedule hours.")
    stagger_phases: tuple[StaggerPhase, ...] = ()
    volt_watt_curve: VoltWattCurve | None = None
    dynamic: DynamicClass | None = None
    fallback_export_kw: NonNegativeFloat | None = Field(
        default=None, description="Export limit when communication fails, kW."
    )
    fallback_import_kw: NonNegativeFloat | None = Field(
        default=None, description="Import limit when communication fails, kW."
    )
    version: int = Field(default=1, ge=1)
    agreed_at: AwareDatetime

    @field_validator("schedule_export_kw", "schedule_import_kw", mode="before")
    @classmethod
    def _schedule(cls, value: Any, info: Any) -> Any:
        return _check_schedule(info.field_name, value)

    @field_validator("tz")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"tz {value!r} is not an IANA time zone; use e.g. 'America/Chicago'"
            ) from exc
        return value

    @field_validator("stagger_phases")
    @classmethod
    def _stagger(cls, value: tuple[StaggerPhase, ...]) -> tuple[StaggerPhase, ...]:
        starts = [p.start for p in value]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            raise ValueError(
                "stagger_phases must have strictly increasing start dates, one phase per date"
            )
        return value

    @model_validator(mode="after")
    def _consistency(self) -> Self:
        for name in ("export_limit_kw", "fallback_export_kw"):
            v = getattr(self, name)
            if v is not None and v > self.nameplate_kw:
                raise ValueError(
                    f"{name} = {v} kW exceeds nameplate_kw = {self.nameplate_kw} kW; an export "
                    "limit above nameplate is meaningless: lower it or leave it empty"
                )
        if (
            self.fallback_export_kw is not None
            and self.export_limit_kw is not None
            and self.fallback_export_kw > self.export_limit_kw
        ):
            raise ValueError(
                f"fallback_export_kw = {self.fallback_export_kw} kW is above export_limit_kw = "
                f"{self.export_limit_kw} kW; the fallback must be at least as conservative"
            )
        return self

    # ---- derived values -------------------------------------------------------------------
    @property
    def effective_fallback_export_kw(self) -> float:
        """Export limit a device applies when it loses contact, kW.

        The explicit fallback if set, else the most conservative static limit in the terms (the
        seed's "safe fallback limits"; a dynamic connection without one falls back to zero export).
        """
        if self.fallback_export_kw is not None:
            return self.fallback_export_kw
        if self.dynamic is not None:
            return 0.0
        candidates = [self.nameplate_kw]
        if self.export_limit_kw is not None:
            candidates.append(self.export_limit_kw)
        if self.schedule_export_kw is not None:
            candidates.append(float(np.min(self.schedule_export_kw)))
        candidates += [
            p.export_limit_kw for p in self.stagger_phases if p.export_limit_kw is not None
        ]
        return min(candidates)

    def export_limit_kw_at(self, times: pd.DatetimeIndex | Sequence[dt.datetime]) -> np.ndarray:
        """Export limit in force at each instant (kW): the minimum of every term that applies.

        ``times`` must be timezone-aware; schedule hours are read in :attr:`tz` local prevailing
        time. Unlimited instants are ``nameplate_kw``.
        """
        return self._limit_at(times, "export")

    def import_limit_kw_at(self, times: pd.DatetimeIndex | Sequence[dt.datetime]) -> np.ndarray:
        """Import limit in force at each instant (kW); unlimited instants are ``inf``."""
        return self._limit_at(times, "import")

    def _limit_at(
        self, times: pd.DatetimeIndex | Sequence[dt.datetime], direction: str
    ) -> np.ndarray:
        idx = times if isinstance(times, pd.DatetimeIndex) else pd.DatetimeIndex(list(times))
        if idx.tz is None:
            raise ValueError("times must be timezone-aware (UTC inside gridflex)")
        local = idx.tz_convert(self.tz)
        unlimited = self.nameplate_kw if direction == "export" else np.inf
        out = np.full(len(idx), unlimited, dtype=float)
        static = getattr(self, f"{direction}_limit_kw")
        if static is not None:
            out = np.minimum(out, static)
        schedule = getattr(self, f"schedule_{direction}_kw")
        if schedule is not None:
            table = np.asarray(schedule)
            out = np.minimum(out, table[local.month.to_numpy() - 1, local.hour.to_numpy()])
        if self.stagger_phases:
            days = local.tz_localize(None).to_numpy().astype("datetime64[D]")
            starts = [np.datetime64(p.start, "D") for p in self.stagger_phases]
            for i, phase in enumerate(self.stagger_phases):
                limit = getattr(phase, f"{direction}_limit_kw")
                if limit is None:
                    continue
                mask = days >= starts[i]
                if i + 1 < len(starts):
                    mask &= days < starts[i + 1]
                out[mask] = np.minimum(out[mask], limit)
        return out

    def restricts_more_than(self, previous: ConnectionTerms) -> list[str]:
        """Ways these terms limit the connection further than ``previous`` does.

        Returns human-readable reasons (empty when nothing is tighter). The seed's stakeholder
        recommendation is that scheduled limits are not tightened without agreement; the
        registry uses this to refuse such a change unless it is marked as agreed.
        """
        reasons: list[str] = []
        for direction in ("export", "import"):
            unlimited = np.inf
            for label, new, old in (
                (
                    "static",
                    getattr(self, f"{direction}_limit_kw"),
                    getattr(previous, f"{direction}_limit_kw"),
                ),
                (
                    "fallback",
                    getattr(self, f"fallback_{direction}_kw"),
                    getattr(previous, f"fallback_{direction}_kw"),
                ),
            ):
                n = unlimited if new is None else new
                o = unlimited if old is None else old
                if n < o:
                    reasons.append(f"{label} {direction} limit lowered from {o} to {n} kW")
            new_s = getattr(self, f"schedule_{direction}_kw")
            old_s = getattr(previous, f"schedule_{direction}_kw")
            n_arr = np.full((MONTHS, HOURS), np.inf) if new_s is None else np.asarray(new_s)
            o_arr = np.full((MONTHS, HOURS), np.inf) if old_s is None else np.asarray(old_s)
            lowered = np.argwhere(n_arr < o_arr)
            if len(lowered):
                m, h = lowered[0]
                reasons.append(
                    f"{direction} schedule lowered in {len(lowered)} month-hour cells "
                    f"(first: month {m + 1} hour {h}: {o_arr[m, h]} -> {n_arr[m, h]} kW)"
                )
        return reasons

    # ---- construction helpers -------------------------------------------------------------
    @staticmethod
    def seasonal_schedule(
        summer_kw: float, winter_kw: float, summer_months: Sequence[int] = (6, 7, 8, 9)
    ) -> list[list[float]]:
        """A 2-point seasonal schedule written out as 12 x 24 values (kW) [1]_."""
        return [
            [float(summer_kw if m in summer_months else winter_kw)] * HOURS
            for m in range(1, MONTHS + 1)
        ]

    @classmethod
    def from_file(cls, path: str | Path) -> ConnectionTerms:
        """Read terms from a JSON or YAML file (YAML needs PyYAML, a gridflex dependency)."""
        p = Path(path)
        text = p.read_text(encoding="utf-8")
        if p.suffix.lower() in {".yaml", ".yml"}:
            import yaml  # local: keeps ``terms`` importable with only pydantic and numpy

            data = yaml.safe_load(text)
            return cls.model_validate(data)
        return cls.model_validate(json.loads(text))

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON Schema of the terms (published as ``docs/schemas/connection_terms.json``)."""
        return cls.model_json_schema()
