"""Findings: one evaluated rule with its value, limit, source and status; and the report."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from gridflex.rules.ruleset import RuleSet

#: Comparisons treat values within this of the limit as equal (floating-point input noise only).
EPS = 1e-9


class Status(StrEnum):
    """Outcome of one rule."""

    PASS = "pass"
    FAIL = "fail"
    NEEDS_REVIEW = "needs_review"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class Option:
    """A way forward the applicant may choose (e.g. upgrade or the volt/watt pilot)."""

    id: str
    title: str
    detail: str


@dataclass(frozen=True)
class Finding:
    """One evaluated rule.

    ``rule`` is ``<ruleset>.<rule id>`` (plus ``.<part>`` where a rule has several parts);
    ``value`` is what the application has, ``limit`` what the rule requires, both in ``unit``.
    """

    rule: str
    status: Status
    value: float | str | None
    limit: float | str | None
    source: str
    message: str
    unit: str = ""
    ruleset: str = ""
    options: tuple[Option, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping: rule, status, value, limit, source, message (and extras)."""
        value = self.value
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        return {
            "rule": self.rule,
            "status": self.status.value,
            "value": value,
            "limit": self.limit,
            "source": self.source,
            "message": self.message,
            "unit": self.unit,
            "ruleset": self.ruleset,
            "options": [o.__dict__ for o in self.options],
        }


@dataclass
class Report:
    """All findings of one check run, in rule-set order."""

    application_id: str
    rulesets: list[str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def failed(self) -> list[Finding]:
        """Findings with status ``fail``."""
        return [f for f in self.findings if f.status is Status.FAIL]

    @property
    def ok(self) -> bool:
        """True when no rule fails (needs-review items do not fail a check)."""
        return not self.failed

    def counts(self) -> dict[str, int]:
        """Number of findings per status."""
        out = {s.value: 0 for s in Status}
        for f in self.findings:
            out[f.status.value] += 1
        return out

    def by_rule(self, rule: str) -> list[Finding]:
        """Findings whose rule is ``rule`` or starts with ``rule + '.'``."""
        return [f for f in self.findings if f.rule == rule or f.rule.startswith(rule + ".")]

    def to_dict(self) -> dict[str, Any]:
        """``{"findings": [...]}`` plus the application id, rule sets and status counts."""
        return {
            "application_id": self.application_id,
            "rulesets": self.rulesets,
            "counts": self.counts(),
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_frame(self) -> pd.DataFrame:
        """The findings as a table (one row per finding)."""
        import pandas as pd

        rows = [f.to_dict() for f in self.findings]
        for r in rows:
            r["options"] = "; ".join(o["title"] for o in r["options"])
        return pd.DataFrame(
            rows,
            columns=["rule", "status", "value", "limit", "unit", "source", "message", "ruleset"],
        )


class Emitter:
    """Collects findings for one rule set, filling in each rule's source."""

    def __init__(self, rs: RuleSet) -> None:
        self.rs = rs
        self.findings: list[Finding] = []

    def add(
        self,
        rule_id: str,
        status: Status,
        message: str,
        value: float | str | None = None,
        limit: float | str | None = None,
        *,
        part: str | None = None,
        unit: str = "",
        options: tuple[Option, ...] = (),
    ) -> Finding:
        """Record a finding for ``rule_id`` (``part`` names a sub-check of the rule)."""
        rule = self.rs.rule(rule_id)
        name = f"{self.rs.ruleset}.{rule_id}" + (f".{part}" if part else "")
        source = rule.source
        if rule.certainty != "stated":
            source += f" [certainty: {rule.certainty}]"
        finding = Finding(
            rule=name,
            status=status,
            value=_round(value),
            limit=_round(limit),
            source=source,
            message=message,
            unit=unit,
            ruleset=self.rs.ruleset,
            options=options,
        )
        self.findings.append(finding)
        return finding

    def not_applicable(self, rule_id: str, message: str, *, part: str | None = None) -> None:
        """Record that ``rule_id`` does not apply, and why."""
        self.add(rule_id, Status.NOT_APPLICABLE, message, part=part)

    def covered(self) -> set[str]:
        """Rule ids that have at least one finding."""
        prefix = len(self.rs.ruleset) + 1
        return {f.rule[prefix:].split(".")[0] for f in self.findings}


def _round(x: float | str | None) -> float | str | None:
    if isinstance(x, float) and math.isfinite(x):
        return round(x, 6)
    return x


def at_most(value: float, limit: float) -> bool:
    """``value <= limit`` within floating-point noise."""
    return value <= limit + EPS * max(1.0, abs(limit))


def at_least(value: float, limit: float) -> bool:
    """``value >= limit`` within floating-point noise."""
    return value >= limit - EPS * max(1.0, abs(limit))


def verdict(ok: bool) -> Status:
    """``pass`` when ``ok`` else ``fail``."""
    return Status.PASS if ok else Status.FAIL


def tri(flag: bool | None) -> Status:
    """``pass`` for True, ``fail`` for False, ``needs_review`` for None (not given)."""
    if flag is None:
        return Status.NEEDS_REVIEW
    return verdict(flag)
