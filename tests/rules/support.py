"""Helpers for the rule-check tests: example applications as editable mappings."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from importlib import resources
from typing import Any

import yaml

from gridflex.application import parse_application
from gridflex.rules import Report, check

DELETE = object()


def example(name: str) -> dict[str, Any]:
    text = (resources.files("gridflex.application") / "data" / name).read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def edit(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with dotted paths (``metering.cts.0.rating_factor``) set."""
    out = copy.deepcopy(dict(base))
    for path, value in changes.items():
        parts = path.split(".")
        cur: Any = out
        for p in parts[:-1]:
            cur = cur[int(p)] if isinstance(cur, list) else cur.setdefault(p, {})
        last: Any = int(parts[-1]) if isinstance(cur, list) else parts[-1]
        if value is DELETE:
            del cur[last]
        else:
            cur[last] = value
    return out


def run(data: Mapping[str, Any], ruleset: str) -> Report:
    """Check ``data`` against one built-in rule set."""
    return check(parse_application(dict(data), "test"), [ruleset])


def statuses(report: Report, rule: str) -> set[str]:
    """Statuses of the findings of ``rule`` (exact name or its parts)."""
    found = report.by_rule(rule)
    assert found, f"no finding for {rule}; have {[f.rule for f in report.findings]}"
    return {f.status.value for f in found}
