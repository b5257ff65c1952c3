"""The DER lifecycle state machine, read from ``derms/data/lifecycle.yaml``.

The states and their order follow ``seeds/001_9847d8232b845ab9.txt``, "Utility Process Elements
Impacted by DER Orchestration": applied -> approved with terms -> registered -> eligible for
distribution services -> enrolled in a VPP -> operating. The transition table is data, with its
citation, not code.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import yaml

from gridflex.derms.models import LifecycleState


@dataclass(frozen=True)
class StateRule:
    """One lifecycle state: what it means, where it may go, what it needs."""

    state: LifecycleState
    description: str
    next: tuple[LifecycleState, ...]
    requires_terms: bool


@dataclass(frozen=True)
class Lifecycle:
    """The whole transition table."""

    source: str
    initial: LifecycleState
    states: dict[LifecycleState, StateRule]

    def allowed_from(self, state: str | LifecycleState) -> tuple[LifecycleState, ...]:
        """States a DER in ``state`` may move to (empty for terminal states)."""
        return self.states[LifecycleState(state)].next


@cache
def lifecycle() -> Lifecycle:
    """The lifecycle table shipped with gridflex (parsed once)."""
    text = files("gridflex.derms").joinpath("data/lifecycle.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    states: dict[LifecycleState, StateRule] = {}
    for name, spec in data["states"].items():
        state = LifecycleState(name)
        states[state] = StateRule(
            state=state,
            description=str(spec.get("description", "")).strip(),
            next=tuple(LifecycleState(n) for n in spec.get("next", [])),
            requires_terms=bool(spec.get("requires_terms", False)),
        )
    missing = set(LifecycleState) - set(states)
    if missing:  # the YAML and the enum ship together; a mismatch is a packaging bug
        raise RuntimeError(f"lifecycle.yaml lacks states {sorted(missing)}")
    return Lifecycle(
        source=str(data["source"]), initial=LifecycleState(data["initial"]), states=states
    )
