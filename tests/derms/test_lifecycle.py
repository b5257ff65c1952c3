"""DER lifecycle: the seed's order, optional stages, refusals naming the allowed next states."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gridflex.derms import registry as reg
from gridflex.derms.db import session_factory
from gridflex.derms.lifecycle import lifecycle
from gridflex.derms.models import LifecycleState
from gridflex.errors import ConflictError, InputError
from tests.derms.conftest import Seeded, make_terms

SEED_PATH = ["approved", "registered", "eligible", "enrolled", "operating"]


def test_table_follows_the_seed_order() -> None:
    table = lifecycle()
    assert table.initial is LifecycleState.APPLIED
    assert "001_9847d8232b845ab9" in table.source
    state = table.initial
    for nxt in SEED_PATH:  # each seed stage is reachable from the one before it
        assert LifecycleState(nxt) in table.allowed_from(state)
        state = LifecycleState(nxt)
    assert table.allowed_from("withdrawn") == ()
    assert table.allowed_from("decommissioned") == ()


def test_full_path_is_recorded_with_who_and_when(session: Session, seeded: Seeded) -> None:
    at = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    for i, state in enumerate(SEED_PATH):
        reg.transition(session, seeded.der_a, state, actor=f"op{i}", at=at + dt.timedelta(days=i))
    session.commit()
    events = reg.lifecycle_history(session, seeded.der_a)
    assert [(e.from_state, e.to_state) for e in events] == [
        (None, "applied"), ("applied", "approved"), ("approved", "registered"),
        ("registered", "eligible"), ("eligible", "enrolled"), ("enrolled", "operating"),
    ]  # fmt: skip
    assert [e.actor for e in events[1:]] == ["op0", "op1", "op2", "op3", "op4"]
    assert events[-1].at == at + dt.timedelta(days=4)
    assert reg.get_der(session, seeded.der_a).lifecycle_state == "operating"


def test_optional_stages_can_be_skipped(session: Session, seeded: Seeded) -> None:
    for state in ("approved", "registered", "operating"):
        reg.transition(session, seeded.der_b, state, actor="op")
    assert reg.get_der(session, seeded.der_b).lifecycle_state == "operating"


def test_illegal_transition_names_allowed_states(engine: Engine, seeded: Seeded) -> None:
    factory = session_factory(engine)
    with pytest.raises(ConflictError) as info, factory.begin() as s:
        reg.transition(s, seeded.der_a, "operating", actor="op")
    assert str(info.value) == (
        f"DER {seeded.der_a} is 'applied' and cannot move to 'operating'; allowed next states: "
        "approved, withdrawn"
    )
    with factory.begin() as s:
        reg.transition(s, seeded.der_a, "withdrawn", actor="op")
    with pytest.raises(ConflictError, match=r"none \(terminal state\)"), factory.begin() as s:
        reg.transition(s, seeded.der_a, "approved", actor="op")
    with factory() as s:
        assert reg.get_der(s, seeded.der_a).lifecycle_state == "withdrawn"
        assert len(reg.lifecycle_history(s, seeded.der_a)) == 2


def test_approval_needs_terms(session: Session, seeded: Seeded) -> None:
    with pytest.raises(ConflictError, match="has no connection_id"):
        reg.transition(session, seeded.der_free, "approved", actor="op")
    reg.update_der(session, seeded.der_free, actor="op", connection_id="app-free")
    with pytest.raises(ConflictError, match="connection 'app-free' has no terms yet"):
        reg.transition(session, seeded.der_free, "approved", actor="op")
    reg.add_terms(session, make_terms("app-free", nameplate_kw=50, export_limit_kw=40), actor="p")
    event = reg.transition(session, seeded.der_free, "approved", actor="op")
    assert (event.from_state, event.to_state) == ("applied", "approved")


def test_unknown_state_and_missing_actor(session: Session, seeded: Seeded) -> None:
    with pytest.raises(InputError, match="to_state 'live' is not known"):
        reg.transition(session, seeded.der_a, "live", actor="op")
    with pytest.raises(InputError, match="actor is empty"):
        reg.transition(session, seeded.der_a, "approved", actor="")
