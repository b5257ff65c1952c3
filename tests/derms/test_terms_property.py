"""Property: whatever sequence of terms is submitted, the stored history never tightens a
connection without the agreed flag, and refused submissions store nothing (seed 001,
"Scheduled", stakeholder feedback)."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridflex.derms import registry as reg
from gridflex.derms.db import make_engine, session_factory, upgrade
from gridflex.errors import ConflictError
from gridflex.terms import ConnectionTerms

limit_kw = st.one_of(st.none(), st.sampled_from([0.0, 100.0, 250.0, 400.0, 500.0]))
winter_kw = st.one_of(st.none(), st.sampled_from([200.0, 300.0, 500.0]))
submission = st.tuples(limit_kw, limit_kw, winter_kw, st.booleans())


def _terms(
    export_kw: float | None, import_kw: float | None, winter: float | None
) -> ConnectionTerms:
    return ConnectionTerms(
        connection_id="app-p",
        nameplate_kw=500.0,
        export_limit_kw=export_kw,
        import_limit_kw=import_kw,
        schedule_export_kw=None
        if winter is None
        else ConnectionTerms.seasonal_schedule(summer_kw=500.0, winter_kw=winter),
        agreed_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(submission, min_size=1, max_size=6))
def test_history_never_tightens_without_agreement(
    submissions: list[tuple[float | None, float | None, float | None, bool]],
) -> None:
    engine = make_engine("sqlite://")  # one in-memory database per example
    try:
        upgrade(engine)
        factory = session_factory(engine)
        stored = 0
        for export_kw, import_kw, winter, agreed in submissions:
            try:
                with factory.begin() as s:
                    reg.add_terms(s, _terms(export_kw, import_kw, winter), actor="p", agreed=agreed)
                stored += 1
            except ConflictError as exc:
                refusal = str(exc)
                assert not agreed, refusal
                assert "further limit the connection" in refusal
        with factory() as s:
            rows = reg.terms_rows(s, "app-p")
            assert [r.version for r in rows] == list(range(1, stored + 1))
            for previous, current in itertools.pairwise(rows):
                tighter = reg.row_to_terms(current).restricts_more_than(reg.row_to_terms(previous))
                assert current.agreed_override == bool(tighter)
    finally:
        engine.dispose()
