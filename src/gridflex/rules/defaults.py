"""Default inverter curves and trip settings from the IEEE 1547-2018 rule set.

The solver uses these for inverter defaults; the values live in
``gridflex/rules/data/ieee1547_2018.yaml`` with their sources, never in code.

References
----------
.. [1] IEEE Std 1547-2018, clause 5.3.3 Table 8 (volt/var), clause 5.4.2 Table 10 (volt/watt),
   clauses 6.4.1 / 6.5.1 (voltage and frequency trip tables).
.. [2] seeds/001_9847d8232b845ab9.txt, "Volt/Watt" - "Proposed Path Forward", Figure 3
   (recommended volt/watt curve for Level 1 applicants).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from gridflex.errors import InputError
from gridflex.rules.ruleset import load_ruleset
from gridflex.terms import VoltWattCurve

_RULESET = "ieee1547_2018"


@dataclass(frozen=True)
class VoltVarCurve:
    """Piecewise-linear volt/var curve.

    ``q_pct`` is reactive power in % of nameplate apparent power: positive injects (capacitive,
    raises voltage), negative absorbs. Outside the first/last point the end values hold.
    """

    v_pu: tuple[float, ...]
    q_pct: tuple[float, ...]
    category: str
    source: str

    def q_pct_at(self, v_pu: np.ndarray | float) -> np.ndarray:
        """Reactive power (% of nameplate kVA) at voltage ``v_pu`` (array in, array out)."""
        return np.interp(np.asarray(v_pu, dtype=float), self.v_pu, self.q_pct)


@dataclass(frozen=True)
class TripSetting:
    """One trip element: pickup (pu or Hz), clearing time, and the allowable ranges."""

    name: str
    pickup: float
    clearing_time_s: float
    pickup_range: tuple[float, float]
    clearing_time_range_s: tuple[float, float]


def _curve(rule_id: str, y_name: str) -> tuple[tuple[float, ...], tuple[float, ...], str]:
    rs = load_ruleset(_RULESET)
    v = tuple(float(x) for x in rs.param(rule_id, "v_pu"))
    y = tuple(float(x) for x in rs.param(rule_id, y_name))
    return v, y, rs.rule(rule_id).source


@cache
def volt_watt_default() -> VoltWattCurve:
    """IEEE 1547-2018 default volt/watt curve (Table 10): 1.06 pu -> 100 %, 1.10 pu -> 20 %."""
    v, p, _ = _curve("volt_watt_default", "p_pct")
    return VoltWattCurve(v_pu=v, p_pct=p)


@cache
def seed_volt_watt_curve() -> VoltWattCurve:
    """Ameren Illinois' recommended Level 1 volt/watt curve [2]_.

    The text states curtailment starts at 1.06 pu; the figure with the end point is not in the
    public text, so the 1.10 pu -> 20 % end point is assumed (the rule is ``certainty: assumed``
    and checks that rely on it report ``needs_review``).
    """
    v, p, _ = _curve("seed_volt_watt_curve", "p_pct")
    return VoltWattCurve(v_pu=v, p_pct=p)


@cache
def volt_var_default(category: str = "B") -> VoltVarCurve:
    """IEEE 1547-2018 default volt/var curve (Table 8) for normal performance ``category``."""
    cat = category.strip().upper()
    if cat not in {"A", "B"}:
        raise InputError(
            f"volt/var category {category!r} is not defined", "use category 'A' or 'B'"
        )
    v, q, source = _curve(f"volt_var_default_cat_{cat.lower()}", "q_pct")
    return VoltVarCurve(v_pu=v, q_pct=q, category=cat, source=source)


def voltage_trip_defaults(category: str = "II") -> dict[str, TripSetting]:
    """Default voltage trip settings (pickups in pu) for abnormal performance ``category``."""
    cat = category.strip().upper()
    if cat not in {"I", "II", "III"}:
        raise InputError(f"abnormal category {category!r} is not defined", "use I, II or III")
    rs = load_ruleset(_RULESET)
    rule = rs.rule(f"voltage_trip_cat_{cat.lower()}")
    return {
        name: TripSetting(
            name=name,
            pickup=float(p["v_pu"]),
            clearing_time_s=float(p["t_s"]),
            pickup_range=(float(p["v_range_pu"][0]), float(p["v_range_pu"][1])),
            clearing_time_range_s=(float(p["t_range_s"][0]), float(p["t_range_s"][1])),
        )
        for name, p in rule.params.items()
    }


def frequency_trip_defaults() -> dict[str, TripSetting]:
    """Default frequency trip settings (pickups in Hz), all abnormal performance categories."""
    rs = load_ruleset(_RULESET)
    return {
        name: TripSetting(
            name=name,
            pickup=float(p["f_hz"]),
            clearing_time_s=float(p["t_s"]),
            pickup_range=(float(p["f_range_hz"][0]), float(p["f_range_hz"][1])),
            clearing_time_range_s=(float(p["t_range_s"][0]), float(p["t_range_s"][1])),
        )
        for name, p in rs.rule("frequency_trip").params.items()
    }
