"""Connection terms: versioned, never edited in place, further limiting refused unless agreed.

Seed: ``seeds/001_9847d8232b845ab9.txt``, "Scheduled", *Stakeholder Feedback & Discussion Focus
Areas*: "the agreement specify that the schedule will not be updated to further limit customer
system operations".
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gridflex.derms import registry as reg
from gridflex.derms.db import session_factory
from gridflex.derms.models import ConnectionTermsRow
from gridflex.errors import ConflictError, InputError
from gridflex.terms import ConnectionTerms
from tests.derms.conftest import make_terms

SEASONAL = ConnectionTerms.seasonal_schedule(summer_kw=500.0, winter_kw=250.0)


def _count(engine: Engine) -> int:
    with session_factory(engine)() as s:
        return int(s.scalar(select(func.count()).select_from(ConnectionTermsRow)) or 0)


def test_versions_are_numbered_and_history_kept(session: Session) -> None:
    first = reg.add_terms(session, make_terms(schedule_export_kw=SEASONAL), actor="planner")
    looser = make_terms(schedule_export_kw=ConnectionTerms.seasonal_schedule(500.0, 300.0))
    second = reg.add_terms(session, looser, actor="planner")
    session.commit()
    assert (first.version, second.version) == (1, 2)
    history = reg.terms_history(session, "app-1")
    assert [t.version for t in history] == [1, 2]
    assert history[0].schedule_export_kw == SEASONAL
    current = reg.current_terms(session, "app-1")
    assert current is not None
    assert current.version == 2
    assert current.schedule_export_kw is not None
    assert current.schedule_export_kw[0][0] == 300.0  # January is winter
    assert reg.terms_version(session, "app-1", 1).terms["schedule_export_kw"] == SEASONAL
    assert reg.current_terms(session, "nope") is None
    assert reg.connection_ids(session) == ["app-1"]


def test_stored_terms_round_trip_exactly(session: Session) -> None:
    terms = ConnectionTerms.model_validate(
        {
            "connection_id": "app-rt",
            "nameplate_kw": 5000,
            "export_limit_kw": 4000,
            "import_limit_kw": 1000,
            "schedule_export_kw": SEASONAL,
            "stagger_phases": [
                {"start": "2026-03-01", "export_limit_kw": 2500, "note": "before upgrade"},
                {"start": "2027-01-01", "export_limit_kw": 4000},
            ],
            "volt_watt_curve": {"v_pu": [1.06, 1.1], "p_pct": [100, 20]},
            "dynamic": {"policy": "lifo", "queue_position": 3},
            "fallback_export_kw": 250,
            "agreed_at": "2026-02-01T15:00:00-06:00",
        }
    )
    reg.add_terms(session, terms, actor="planner")
    session.commit()
    assert reg.current_terms(session, "app-rt") == terms


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"export_limit_kw": 200.0}, "static export limit lowered from 250.0 to 200.0 kW"),
        ({"import_limit_kw": 50.0}, "static import limit lowered from inf to 50.0 kW"),
        ({"fallback_export_kw": 100.0}, "fallback export limit lowered"),
        (
            {"schedule_export_kw": ConnectionTerms.seasonal_schedule(500.0, 200.0)},
            "export schedule lowered in 192 month-hour cells",
        ),
    ],
)
def test_further_limiting_is_refused_unless_agreed(
    engine: Engine, change: dict[str, object], reason: str
) -> None:
    factory = session_factory(engine)
    with factory.begin() as s:
        reg.add_terms(s, make_terms(schedule_export_kw=SEASONAL), actor="planner")
    tighter = make_terms(**{"schedule_export_kw": SEASONAL, **change})
    with pytest.raises(ConflictError) as info, factory.begin() as s:
        reg.add_terms(s, tighter, actor="planner")
    message = str(info.value)
    assert reason in message
    assert "mark the change as agreed" in message
    assert _count(engine) == 1  # the refused version left nothing behind
    with factory.begin() as s:
        row = reg.add_terms(s, tighter, actor="planner", agreed=True, note="customer letter")
        assert row.version == 2
        assert row.agreed_override is True
        assert reason in row.note
        assert row.note.startswith("customer letter")
    with factory() as s:
        assert reg.current_terms(s, "app-1") == tighter.model_copy(update={"version": 2})


def test_relaxing_terms_needs_no_agreement_and_is_not_flagged(session: Session) -> None:
    reg.add_terms(session, make_terms(export_limit_kw=200.0), actor="p")
    row = reg.add_terms(session, make_terms(export_limit_kw=300.0), actor="p")
    assert row.agreed_override is False
    row = reg.add_terms(session, make_terms(export_limit_kw=300.0), actor="p", agreed=True)
    assert row.agreed_override is False  # nothing was tightened, so nothing was overridden


def test_version_clash_is_a_conflict(session: Session) -> None:
    reg.add_terms(session, make_terms(), actor="p")
    with pytest.raises(ConflictError, match="carry version 5 but the next version is 2"):
        reg.add_terms(session, make_terms(version=5), actor="p")
    assert reg.add_terms(session, make_terms(version=2), actor="p").version == 2


def test_invalid_terms_dict_is_input_error_and_stores_nothing(engine: Engine) -> None:
    factory = session_factory(engine)
    bad = {"connection_id": "app-x", "nameplate_kw": 100, "export_limit_kw": 150,
           "agreed_at": "2026-01-01T00:00:00Z"}  # fmt: skip
    with pytest.raises(InputError, match="exceeds nameplate_kw"), factory.begin() as s:
        reg.add_terms(s, bad, actor="p")
    with pytest.raises(InputError, match="actor is empty"), factory.begin() as s:
        reg.add_terms(s, make_terms(), actor="  ")
    assert _count(engine) == 0


def test_stored_rows_cannot_be_edited_through_the_orm(engine: Engine) -> None:
    factory = session_factory(engine)
    with factory.begin() as s:
        reg.add_terms(s, make_terms(), actor="p")

    def tamper() -> None:
        with factory.begin() as s:
            reg.terms_version(s, "app-1", 1).created_by = "mallory"

    with pytest.raises(DBAPIError, match="immutable"):
        tamper()
    with factory() as s:
        assert reg.terms_version(s, "app-1", 1).created_by == "p"


def test_concurrent_writers_are_serialised_per_connection(engine: Engine) -> None:
    """A second writer waits for the first, then is compared with the version it committed."""
    import threading

    factory = session_factory(engine)
    with factory.begin() as s:
        reg.add_terms(s, make_terms(export_limit_kw=250.0), actor="p")
    outcome: dict[str, object] = {}
    first = factory()
    first.begin()
    reg.add_terms(first, make_terms(export_limit_kw=300.0), actor="alice")  # holds the lock

    def second_writer() -> None:
        try:
            with factory.begin() as s:
                # looser than v1 (250) but tighter than alice's v2 (300): must be refused
                reg.add_terms(s, make_terms(export_limit_kw=275.0), actor="bob")
            outcome["result"] = "stored"
        except ConflictError as exc:
            outcome["result"] = exc

    thread = threading.Thread(target=second_writer)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive(), "the second writer should wait for the first one's lock"
    first.commit()
    first.close()
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(outcome["result"], ConflictError)
    assert "static export limit lowered from 300.0 to 275.0 kW" in str(outcome["result"])
    with factory.begin() as s:
        reg.add_terms(s, make_terms(export_limit_kw=320.0), actor="bob")
    with factory() as s:
        rows = reg.terms_rows(s, "app-1")
        assert [(r.version, r.created_by) for r in rows] == [(1, "p"), (2, "alice"), (3, "bob")]
