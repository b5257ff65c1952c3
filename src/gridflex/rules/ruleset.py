"""Rule sets as data: versioned YAML files whose every rule carries its source.

A rule set file names the checker that evaluates it (``checker:``) and holds one entry per rule
with its parameters (the thresholds), a ``source`` (document + section) and a ``certainty``
(``stated`` when the public text gives the value, ``uncertain`` when it is transcribed or the text
is ambiguous, ``assumed`` when gridflex had to assume it). A utility adds its own rule set by
writing such a file: the same rule ids with its own values, or ``field`` rules that compare any
application field with a limit (see ``docs/rules.md``).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gridflex.errors import InputError, validation_problems

#: Checkers a rule set may name; ``generic`` rule sets hold only ``field`` rules.
CHECKERS = ("il_part466_screens", "btm_metering", "sync_protection", "ieee1547_der", "generic")

Certainty = Literal["stated", "uncertain", "assumed"]


class FieldRule(BaseModel):
    """A data-only rule: compare one application field (dotted path) with a limit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(
        min_length=1, description="Dotted path into the application, e.g. 'service.voltage_v'."
    )
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    limit: float | str | bool
    missing: Literal["needs_review", "not_applicable", "fail"] = "needs_review"


class Rule(BaseModel):
    """One rule of a rule set: parameters with their source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = Field(min_length=1)
    source: str = Field(min_length=8, description="Document + section the values come from.")
    certainty: Certainty = "stated"
    params: dict[str, Any] = Field(default_factory=dict)
    field: FieldRule | None = None
    note: str = ""


class RuleSet(BaseModel):
    """A versioned rule set (one YAML file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ruleset: str = Field(pattern=r"^[a-z0-9_\-]+$", min_length=1)
    title: str
    version: str
    checker: Literal[
        "il_part466_screens", "btm_metering", "sync_protection", "ieee1547_der", "generic"
    ]
    documents: dict[str, str] = Field(default_factory=dict)
    rules: dict[str, Rule]
    path: str = Field(default="", exclude=True)

    def rule(self, rule_id: str) -> Rule:
        """The rule ``rule_id``; an :class:`InputError` naming the file when it is missing."""
        try:
            return self.rules[rule_id]
        except KeyError:
            raise InputError(
                f"rule set {self.ruleset!r} ({self.path or 'built in'}) has no rule {rule_id!r}, "
                f"which checker {self.checker!r} evaluates",
                f"add a '{rule_id}:' entry with its params and source (see docs/rules.md)",
            ) from None

    def param(self, rule_id: str, name: str) -> Any:
        """Parameter ``name`` of rule ``rule_id`` (error naming both when absent)."""
        params = self.rule(rule_id).params
        if name not in params:
            raise InputError(
                f"rule set {self.ruleset!r}: rule {rule_id!r} has no parameter {name!r}",
                f"add '{name}:' under rules.{rule_id}.params",
            )
        return params[name]


def builtin_names() -> list[str]:
    """Names of the rule sets shipped with gridflex."""
    return list(_builtin_names())


@cache
def _builtin_names() -> tuple[str, ...]:
    data = resources.files("gridflex.rules") / "data"
    return tuple(
        sorted(p.name.removesuffix(".yaml") for p in data.iterdir() if p.name.endswith(".yaml"))
    )


def _parse(text: str, origin: str) -> RuleSet:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{origin}: not valid YAML ({exc})", "fix the YAML syntax") from exc
    if not isinstance(raw, dict):
        raise InputError(f"{origin}: a rule set must be a YAML mapping", "see docs/rules.md")
    try:
        rs = RuleSet.model_validate(raw)
    except ValidationError as exc:
        raise InputError(
            f"rule set {origin}: {validation_problems(exc)}", "correct the named fields"
        ) from exc
    return rs.model_copy(update={"path": origin})


@cache
def _load_builtin(name: str) -> RuleSet:
    res = resources.files("gridflex.rules") / "data" / f"{name}.yaml"
    return _parse(res.read_text(encoding="utf-8"), f"gridflex/rules/data/{name}.yaml")


def load_ruleset(name_or_path: str | Path) -> RuleSet:
    """Load a rule set by built-in name (``bge_csr6``) or from a YAML file path.

    Raises
    ------
    InputError
        Unknown name, unreadable file, or a file that does not follow the rule-set schema.
    """
    text = str(name_or_path)
    if text in builtin_names():
        return _load_builtin(text)
    path = Path(text)
    if path.suffix.lower() in {".yaml", ".yml"} or path.exists():
        if not path.is_file():
            raise InputError(f"rule set file {path} does not exist", "give an existing YAML path")
        return _parse(path.read_text(encoding="utf-8"), str(path))
    raise InputError(
        f"unknown rule set {text!r}",
        f"use one of {', '.join(builtin_names())} or the path of a rule-set YAML file",
    )
