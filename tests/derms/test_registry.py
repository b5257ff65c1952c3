"""Registry managers (CRUD, lookups, programs) on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gridflex.derms import registry as reg
from gridflex.derms.db import session_factory
from gridflex.derms.models import Der, LifecycleEvent
from gridflex.errors import ConflictError, InputError, NotFoundError
from tests.derms.conftest import AGG_A_LFDI, DER_A1_LFDI, Seeded


def test_lfdi_lookups_are_case_insensitive(session: Session, seeded: Seeded) -> None:
    der = reg.find_der_by_lfdi(session, DER_A1_LFDI.upper())
    assert der is not None
    assert der.id == seeded.der_a
    assert der.lfdi == DER_A1_LFDI.lower()
    assert reg.find_der_by_lfdi(session, DER_A1_LFDI.lower()) is der
    agg = reg.find_aggregator_by_lfdi(session, AGG_A_LFDI.lower())
    assert agg is not None
    assert agg.id == seeded.agg_a
    assert agg.lfdi == AGG_A_LFDI.lower()
    assert reg.find_der_by_lfdi(session, "f" * 40) is None


def test_ders_for_aggregator(session: Session, seeded: Seeded) -> None:
    assert [d.id for d in reg.ders_for_aggregator(session, seeded.agg_a)] == [seeded.der_a]
    assert [d.id for d in reg.ders_for_aggregator(session, seeded.agg_b)] == [seeded.der_b]
    assert [d.id for d in reg.list_ders(session, feeder="F1")] == [seeded.der_a, seeded.der_b]
    assert [d.id for d in reg.list_ders(session, connection_id="app-b")] == [seeded.der_b]


def test_add_der_records_initial_lifecycle_event(session: Session, seeded: Seeded) -> None:
    events = reg.lifecycle_history(session, seeded.der_a)
    assert [(e.from_state, e.to_state, e.actor) for e in events] == [(None, "applied", "seed")]
    assert events[0].at.tzinfo is not None


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("lfdi", "xyz", "not an IEEE 2030.5 LFDI"),
        ("lfdi", "ab" * 19, "40 hexadecimal digits"),
        ("der_type", "nuclear", "der.der_type 'nuclear' is not known"),
        ("nameplate_kw", -5.0, "der.nameplate_kw = -5.0"),
        ("connection_id", "has space", "not a valid connection id"),
        ("aggregator_id", 999, "aggregator 999 does not exist"),
        ("connection_id", "app-ü", "not a valid connection id"),
        ("service_point_id", 1, "belongs to site 2, not to the DER's site 1"),
    ],
)
def test_add_der_rejects_bad_input_and_stores_nothing(
    engine: Engine, seeded: Seeded, field: str, value: object, match: str
) -> None:
    kwargs: dict[str, object] = {
        "site_id": seeded.site_id, "der_type": "pv", "nameplate_kw": 10.0, "actor": "t"
    }  # fmt: skip
    kwargs[field] = value
    factory = session_factory(engine)
    with factory.begin() as s:  # a service point of another site
        other = reg.add_site(s, name="other")
        reg.add_service_point(s, site_id=other.id, number="SP-OTHER")
    with pytest.raises((InputError, NotFoundError), match=match), factory.begin() as s:
        reg.add_der(s, **kwargs)  # type: ignore[arg-type]
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Der)) == 3
        assert s.scalar(select(func.count()).select_from(LifecycleEvent)) == 3


def test_duplicate_lfdi_is_a_conflict_and_session_stays_usable(
    session: Session, seeded: Seeded
) -> None:
    with pytest.raises(ConflictError, match="conflicts with stored data"):
        reg.add_der(
            session, site_id=seeded.site_id, der_type="pv", nameplate_kw=5,
            lfdi=DER_A1_LFDI.upper(), actor="t",
        )  # fmt: skip
    # the savepoint rolled back only the failed insert
    der = reg.add_der(session, site_id=seeded.site_id, der_type="pv", nameplate_kw=5, actor="t")
    session.commit()
    assert der.id is not None
    with pytest.raises(ConflictError):
        reg.add_aggregator(session, name="Aggregator A")


def test_missing_objects_raise_not_found(session: Session, seeded: Seeded) -> None:
    with pytest.raises(NotFoundError, match="DER 4242 does not exist"):
        reg.get_der(session, 4242)
    with pytest.raises(NotFoundError, match="site 77 does not exist"):
        reg.add_der(session, site_id=77, der_type="pv", nameplate_kw=5, actor="t")


def test_update_der(session: Session, seeded: Seeded) -> None:
    der = reg.update_der(
        session, seeded.der_free, actor="op", aggregator_id=seeded.agg_a, lfdi="EE" * 20,
        inverter_settings={"ieee1547_category": "B", "volt_watt": True},
    )  # fmt: skip
    session.commit()
    assert der.lfdi == "ee" * 20
    assert reg.find_der_by_lfdi(session, "Ee" * 20) is der
    assert {d.id for d in reg.ders_for_aggregator(session, seeded.agg_a)} == {
        seeded.der_a, seeded.der_free,
    }  # fmt: skip
    with pytest.raises(InputError, match="lifecycle_state changes through a transition"):
        reg.update_der(session, seeded.der_free, actor="op", lifecycle_state="operating")
    with pytest.raises(InputError, match=r"nameplate_kva = 10\.0 is below nameplate_kw"):
        reg.update_der(session, seeded.der_free, actor="op", nameplate_kva=10.0)


def test_sites_and_service_points(session: Session, seeded: Seeded) -> None:
    sp = reg.add_service_point(
        session, site_id=seeded.site_id, number="SP-100", meter_number="M1",
        service_voltage_ll_v=12470, phases="ABC", feeder="F1",
    )  # fmt: skip
    assert [x.id for x in reg.list_service_points(session, seeded.site_id)] == [sp.id]
    with pytest.raises(ConflictError):
        reg.add_service_point(session, site_id=seeded.site_id, number="SP-100")
    with pytest.raises(InputError, match="latitude 95"):
        reg.add_site(session, name="x", latitude=95)


def test_programs(session: Session, seeded: Seeded) -> None:
    prog = reg.add_program(
        session, name="Feeder F1 DOE", constraint_kind="feeder", constraint_element="F1",
        capacity_kw=400,
    )  # fmt: skip
    reg.add_program_member(session, prog.id, seeded.der_a, actor="op")
    reg.add_program_member(session, prog.id, seeded.der_b, actor="op")
    reg.add_program_member(session, prog.id, seeded.der_b, actor="op")  # idempotent
    session.commit()
    assert [d.id for d in reg.program_ders(session, prog.id)] == [seeded.der_a, seeded.der_b]
    assert [p.name for p in reg.programs_for_der(session, seeded.der_a)] == ["Feeder F1 DOE"]
    reg.remove_program_member(session, prog.id, seeded.der_a)
    assert [d.id for d in reg.program_ders(session, prog.id)] == [seeded.der_b]
    with pytest.raises(NotFoundError, match="not a member"):
        reg.remove_program_member(session, prog.id, seeded.der_a)
    with pytest.raises(InputError, match="constraint_kind 'bus' is not known"):
        reg.add_program(session, name="x", constraint_kind="bus", constraint_element="B1")
