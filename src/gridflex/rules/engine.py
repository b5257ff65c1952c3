"""Run rule sets against an application: the Python API behind ``gridflex check``."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from gridflex.application import Application
from gridflex.errors import InputError
from gridflex.rules.findings import Emitter, Finding, Report, Status
from gridflex.rules.inverter import check_ieee1547_der
from gridflex.rules.metering import check_btm_metering
from gridflex.rules.protection import check_sync_protection
from gridflex.rules.ruleset import RuleSet, builtin_names, load_ruleset
from gridflex.rules.screens import check_il_part466_screens

Checker = Callable[[Application, RuleSet], list[Finding]]

#: The checker that evaluates each kind of rule set (``checker:`` in the YAML).
CHECKERS: dict[str, Checker] = {
    "il_part466_screens": check_il_part466_screens,
    "btm_metering": check_btm_metering,
    "sync_protection": check_sync_protection,
    "ieee1547_der": check_ieee1547_der,
    "generic": lambda app, rs: [],
}

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _lookup(data: Any, path: str) -> tuple[bool, Any]:
    """Follow a dotted path (``resources.0.ac_kw``) through dumped application data."""
    cur = data
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list | tuple) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return False, None
    return cur is not None, cur


def check_field_rules(app: Application, rs: RuleSet) -> list[Finding]:
    """Evaluate the data-only ``field`` rules of a rule set (no code needed to add them)."""
    em = Emitter(rs)
    data = app.model_dump(mode="json")
    for rule_id, rule in rs.rules.items():
        fr = rule.field
        if fr is None:
            continue
        found, value = _lookup(data, fr.path)
        if not found:
            em.add(rule_id, Status(fr.missing), f"{fr.path} is not given", None, fr.limit)
            continue
        try:
            ok = _OPS[fr.op](value, fr.limit)
        except TypeError:
            em.add(
                rule_id,
                Status.NEEDS_REVIEW,
                f"{fr.path} = {value!r} cannot be compared with {fr.limit!r}",
                str(value),
                fr.limit,
            )
            continue
        shown = value if isinstance(value, int | float | str) else str(value)
        em.add(
            rule_id,
            Status.PASS if ok else Status.FAIL,
            f"{rule.title}: {fr.path} = {shown} (required {fr.op} {fr.limit})",
            shown if not isinstance(shown, bool) else str(shown),
            fr.limit if not isinstance(fr.limit, bool) else str(fr.limit),
        )
    return em.findings


def resolve_rulesets(names: Iterable[str | Path | RuleSet] | None) -> list[RuleSet]:
    """Rule sets by built-in name or YAML path (all built-in ones when ``names`` is empty)."""
    chosen = list(names or [])
    if not chosen:
        chosen = list(builtin_names())
    sets: list[RuleSet] = []
    for n in chosen:
        rs = n if isinstance(n, RuleSet) else load_ruleset(n)
        if any(s.ruleset == rs.ruleset for s in sets):
            raise InputError(
                f"rule set {rs.ruleset!r} is given twice ({rs.path or 'built in'})",
                "give each rule set once; a rule set of your own needs its own 'ruleset:' id",
            )
        sets.append(rs)
    return sets


def check(app: Application, rulesets: Sequence[str | Path | RuleSet] | None = None) -> Report:
    """Evaluate ``app`` against rule sets; every rule of every rule set yields a finding.

    Parameters
    ----------
    app:
        The application (see :func:`gridflex.application.read_application`).
    rulesets:
        Built-in names (``"bge_csr6"``), YAML paths or loaded :class:`RuleSet` objects; all
        built-in rule sets when omitted.

    Returns
    -------
    Report
        Findings with rule, status, value, limit, source and message; ``report.ok`` is False
        when a rule fails.

    Examples
    --------
    >>> from gridflex.application import example_application
    >>> report = check(example_application(), ["ameren_il_btm_metering"])
    >>> report.by_rule("ameren_il_btm_metering.production_meter_required")[0].status.value
    'pass'
    """
    sets = resolve_rulesets(rulesets)
    report = Report(application_id=app.application_id, rulesets=[rs.ruleset for rs in sets])
    for rs in sets:
        findings = CHECKERS[rs.checker](app, rs) + check_field_rules(app, rs)
        prefix = len(rs.ruleset) + 1
        covered = {f.rule[prefix:].split(".")[0] for f in findings}
        for rule_id in rs.rules:
            if rule_id not in covered:
                # a utility's own rule set may carry rules its checker does not know: say so
                findings.append(
                    Finding(
                        rule=f"{rs.ruleset}.{rule_id}",
                        status=Status.NEEDS_REVIEW,
                        value=None,
                        limit=None,
                        source=rs.rules[rule_id].source,
                        message=f"checker {rs.checker!r} does not evaluate this rule: review by "
                        "hand, or express it as a 'field' rule",
                        ruleset=rs.ruleset,
                    )
                )
        report.findings.extend(findings)
    return report
