"""Requirement checks that cite their rule (issue 3).

Layer: data-driven rule sets (``gridflex/rules/data/*.yaml``, every value with its source) and
the checkers that evaluate an :class:`gridflex.application.Application` against them: Illinois
Part 466 screens, Ameren BTM production metering design, BGE CSR-6 synchronous generator
protection and IEEE 1547-2018 inverter settings. No power flow runs here; rules may import only
``application`` and ``terms``.
"""

from __future__ import annotations

from gridflex.rules.defaults import (
    TripSetting,
    VoltVarCurve,
    frequency_trip_defaults,
    seed_volt_watt_curve,
    volt_var_default,
    volt_watt_default,
    voltage_trip_defaults,
)
from gridflex.rules.engine import CHECKERS, check, resolve_rulesets
from gridflex.rules.findings import Finding, Option, Report, Status
from gridflex.rules.ruleset import Rule, RuleSet, builtin_names, load_ruleset

__all__ = [
    "CHECKERS",
    "Finding",
    "Option",
    "Report",
    "Rule",
    "RuleSet",
    "Status",
    "TripSetting",
    "VoltVarCurve",
    "builtin_names",
    "check",
    "frequency_trip_defaults",
    "load_ruleset",
    "resolve_rulesets",
    "seed_volt_watt_curve",
    "volt_var_default",
    "volt_watt_default",
    "voltage_trip_defaults",
]
