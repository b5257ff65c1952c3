"""The application schema: examples, round trips, the published JSON Schema, and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridflex.application import (
    Application,
    application_json_schema,
    example_application,
    parse_application,
    read_application,
)
from gridflex.errors import InputError
from tests.rules.support import DELETE, edit, example

ROOT = Path(__file__).resolve().parents[2]


def test_json_schema_is_published_and_current() -> None:
    published = json.loads((ROOT / "docs/schemas/application.json").read_text("utf-8"))
    assert published == application_json_schema(), (
        "docs/schemas/application.json is stale: regenerate it with "
        "`gridflex check --schema > docs/schemas/application.json`"
    )


@pytest.mark.parametrize("name", ["example.yaml", "example_level1.yaml"])
def test_examples_round_trip_through_json_and_yaml(name: str, tmp_path: Path) -> None:
    app = parse_application(example(name), name)
    dumped = app.model_dump(mode="json")
    assert parse_application(json.loads(json.dumps(dumped))) == app
    yml = tmp_path / "a.yaml"
    yml.write_text(yaml.safe_dump(dumped), encoding="utf-8")
    js = tmp_path / "a.json"
    js.write_text(json.dumps(dumped), encoding="utf-8")
    assert read_application(yml) == app == read_application(js)


def test_derived_quantities_of_the_example() -> None:
    app = example_application()
    assert app.aggregate_generation_kw == pytest.approx(250 + 100 + 1500)
    assert app.aggregate_generation_kva == pytest.approx(250 + 100 + 1875)
    assert not app.exports
    assert app.service.phase_count == 3
    relay = app.protection.elements[2] if app.protection else None
    assert relay is not None
    assert relay.clearing_cycles(60.0) == pytest.approx(90.0)


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(InputError) as info:
        parse_application(data, "app.yaml")
    return str(info.value)


def test_unknown_field_is_named_with_the_allowed_ones() -> None:
    msg = _error(edit(example("example.yaml"), {"site.colour": "red"}))
    assert (
        "app.yaml: site.colour: unknown field (allowed here: name, address, utility, state)" in msg
    )


def test_unknown_field_in_a_resource_lists_that_kind_s_fields() -> None:
    msg = _error(edit(example("example.yaml"), {"resources.1.wattage": 5}))
    assert "resources[1].wattage: unknown field" in msg
    assert "energy_kwh" in msg  # resource 1 is storage: its own fields are listed


def test_a_unit_where_a_number_is_expected() -> None:
    msg = _error(edit(example("example.yaml"), {"service.voltage_ll_v": "480V"}))
    assert "service.voltage_ll_v: '480V' is not a number" in msg
    assert "the unit (volts) is in the field name" in msg


def test_a_unit_in_a_relay_pickup() -> None:
    msg = _error(edit(example("example.yaml"), {"protection.elements.0.pickup_hz": "60.3 Hz"}))
    assert "protection.elements[0].pickup_hz: '60.3 Hz' is not a number" in msg
    assert "hertz" in msg


def test_missing_required_section() -> None:
    msg = _error(edit(example("example.yaml"), {"service": DELETE}))
    assert "service: required field or section is missing" in msg


def test_missing_field_inside_a_section() -> None:
    msg = _error(edit(example("example.yaml"), {"service.configuration": DELETE}))
    assert "service.configuration: required field or section is missing" in msg


def test_unknown_resource_kind() -> None:
    msg = _error(edit(example("example.yaml"), {"resources.0.kind": "wind"}))
    assert "resources[0]: kind 'wind' is unknown; use one of pv, storage" in msg


def test_duplicate_resource_ids() -> None:
    msg = _error(edit(example("example.yaml"), {"resources.1.id": "pv-roof"}))
    assert "ids must be unique, repeated: pv-roof" in msg


def test_limited_export_needs_a_limit() -> None:
    msg = _error(edit(example("example.yaml"), {"export_mode": "limited"}))
    assert "export_mode is 'limited': give export_limit_kw" in msg


def test_relay_time_in_cycles_or_seconds_not_both() -> None:
    msg = _error(edit(example("example.yaml"), {"protection.elements.0.clearing_time_s": 0.1}))
    assert "give clearing_time_cycles or clearing_time_s, not both" in msg


def test_bad_literal_shows_the_given_value() -> None:
    msg = _error(edit(example("example.yaml"), {"service.metering": "smart"}))
    assert "service.metering" in msg
    assert "'smart'" in msg


def test_every_problem_is_reported_at_once() -> None:
    msg = _error(edit(example("example.yaml"), {"site.colour": "red", "service.voltage_ll_v": "x"}))
    assert "site.colour" in msg
    assert "service.voltage_ll_v" in msg


def test_not_a_mapping() -> None:
    with pytest.raises(InputError, match="an application must be a mapping of sections, got list"):
        parse_application([1, 2], "app.yaml")


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_application(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: [unclosed\n", encoding="utf-8")
    with pytest.raises(InputError, match="cannot be parsed"):
        read_application(bad)


def test_schema_is_extensible_by_optional_sections() -> None:
    """Required sections stay few so later study work can add optional ones."""
    required = set(Application.model_json_schema()["required"])
    assert required == {"application_id", "site", "service", "resources"}


def test_awg_sizes_are_normalised_and_bad_ones_named() -> None:
    data = edit(example("example.yaml"), {"metering.wiring.gauge_awg": "#12 AWG"})
    app = parse_application(data)
    assert app.metering is not None
    assert app.metering.wiring is not None
    assert app.metering.wiring.gauge_awg == "12"
    msg = _error(edit(example("example.yaml"), {"metering.wiring.egc_gauge_awg": "ten"}))
    assert "metering.wiring.egc_gauge_awg: 'ten' is not an AWG size" in msg


def test_wye_voltage_pair_must_agree() -> None:
    msg = _error(edit(example("example.yaml"), {"service.voltage_ln_v": 277}))
    assert "service: voltage_ll_v 13200 V and voltage_ln_v 277 V are not a wye pair" in msg


def test_three_phase_resource_on_a_single_phase_service() -> None:
    msg = _error(edit(example("example_level1.yaml"), {"resources.0.phases": 3}))
    assert "resources pv-1 are three-phase but the service is single_phase_3w" in msg


def test_unquoted_yaml_numbers_for_names_are_accepted() -> None:
    """`device: 27` and `gauge_awg: 12` are names that YAML reads as integers."""
    data = edit(
        example("example.yaml"),
        {"protection.elements.2.device": 27, "metering.wiring.gauge_awg": 12},
    )
    app = parse_application(data)
    assert app.protection is not None
    assert app.protection.elements[2].device == "27"
    assert app.metering is not None
    assert app.metering.wiring is not None
    assert app.metering.wiring.gauge_awg == "12"
