"""Bulk import from one YAML file: the documented example, path-named errors, all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gridflex.derms import registry as reg
from gridflex.derms.db import session_factory
from gridflex.derms.importer import import_registry
from gridflex.errors import InputError

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "registry" / "registry.yaml"


def test_documented_example_imports(session: Session) -> None:
    counts = import_registry(session, EXAMPLE, actor="importer")
    session.commit()
    assert counts == {
        "aggregators": 1, "sites": 2, "service_points": 1, "ders": 2, "terms": 2, "programs": 1,
    }  # fmt: skip
    battery = reg.find_der_by_lfdi(session, "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567")
    assert battery is not None
    assert battery.aggregator is not None
    assert battery.aggregator.name == "Prairie VPP"
    assert battery.sfdi == 27128473169
    farm = reg.current_terms(session, "app-2025-0101")
    assert farm is not None
    assert farm.schedule_export_kw is not None
    # seed 001 "Scheduled" example: 2.5 MW in spring/fall, 5 MW in summer/winter
    assert farm.schedule_export_kw[3][12] == 2500.0  # April
    assert farm.schedule_export_kw[6][12] == 5000.0  # July
    prog = reg.find_program(session, "F-101 dynamic envelope")
    assert prog is not None
    assert {d.name for d in reg.program_ders(session, prog.id)} == {"sunfield-pv", "elm-battery"}
    sp = reg.list_service_points(session)[0]
    pv = reg.list_ders(session, connection_id="app-2025-0101")[0]
    assert pv.service_point_id == sp.id


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "sites:\n  - name: A\n    ders:\n      - {name: d1, der_type: pv, nameplate_kw: -1}\n",
            "sites[0].ders[0].nameplate_kw: Input should be greater than 0",
        ),
        (
            "sites:\n  - name: A\n    ders:\n      - {name: d1, der_type: pv, nameplate_kw: 5,"
            " aggregator: Nobody}\n",
            "sites[0].ders[0].aggregator: no aggregator named 'Nobody'",
        ),
        (
            "sites:\n  - name: A\n    ders:\n      - {name: d1, der_type: pv, nameplate_kw: 5,"
            " lfdi: nothex}\n",
            "sites[0].ders[0]: der.lfdi 'nothex' is not an IEEE 2030.5 LFDI",
        ),
        (
            "sites:\n  - name: A\n    ders:\n      - {name: d1, der_type: pv, nameplate_kw: 5}\n"
            "programs:\n  - {name: P, constraint_kind: feeder, constraint_element: F,"
            " members: [d2]}\n",
            "programs[0].members: no DER named 'd2'",
        ),
        ("sitez: []\n", "sitez: Extra inputs are not permitted"),
    ],
)
def test_bad_entry_is_named_and_nothing_is_stored(
    engine: Engine, tmp_path: Path, yaml_text: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("aggregators:\n  - {name: Agg}\n" + yaml_text, encoding="utf-8")
    factory = session_factory(engine)
    with pytest.raises(InputError) as info, factory.begin() as s:
        import_registry(s, path, actor="importer")
    assert message in str(info.value)
    with factory() as s:
        assert reg.counts(s) == dict.fromkeys(
            ("aggregators", "sites", "service_points", "ders", "programs", "terms_versions"), 0
        )
