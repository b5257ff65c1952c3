"""Rule sets as data: every rule cites a source, every seed threshold is in a rule set, every
rule is evaluated, and a utility can add its own rule set without code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gridflex.application import example_application, parse_application
from gridflex.errors import InputError, SharedDataMissingError
from gridflex.rules import Status, builtin_names, check, load_ruleset
from gridflex.shared_data import shared_dir
from tests.rules.support import edit, example

#: Every threshold the seeds state: (rule set, rule, parameter, value, seed file, seed text).
SEED_THRESHOLDS: list[tuple[str, str, str, Any, str, str]] = [
    # 000 BTM production metering
    (
        "ameren_il_btm_metering",
        "production_meter_required",
        "min_aggregate_kw",
        200.0,
        "000",
        "200 KW or greater",
    ),
    (
        "ameren_il_btm_metering",
        "single_phase_max",
        "max_kva",
        100.0,
        "000",
        "maximum single-phase interconnection is 100 kVA",
    ),
    ("ameren_il_btm_metering", "self_contained_max", "max_kw", 133.0, "000", "limited to 133 kW"),
    (
        "ameren_il_btm_metering",
        "self_contained_max",
        "service_a",
        200.0,
        "000",
        "200 A x 80% x 480 V x 1.73",
    ),
    (
        "ameren_il_btm_metering",
        "self_contained_max",
        "continuous_factor",
        0.80,
        "000",
        "200 A x 80% x 480 V x 1.73",
    ),
    (
        "ameren_il_btm_metering",
        "self_contained_max",
        "voltage_ll_v",
        480.0,
        "000",
        "200 A x 80% x 480 V x 1.73",
    ),
    (
        "ameren_il_btm_metering",
        "self_contained_max",
        "sqrt3_as_written",
        1.73,
        "000",
        "200 A x 80% x 480 V x 1.73",
    ),
    (
        "ameren_il_btm_metering",
        "service_configuration",
        "max_standard_voltage_ll_v",
        15000.0,
        "000",
        "at voltages 15 kV and below",
    ),
    ("ameren_il_btm_metering", "pt_specs", "secondary_v", 120.0, "000", "120 VAC secondary output"),
    (
        "ameren_il_btm_metering",
        "pt_specs",
        "burden_ratings",
        ["W", "X", "M", "Y"],
        "000",
        "W, X, M, Y burden ratings",
    ),
    ("ameren_il_btm_metering", "ct_secondary", "secondary_a", 5.0, "000", "5 Amp secondary output"),
    (
        "ameren_il_btm_metering",
        "ct_burden",
        "min_burden",
        0.1,
        "000",
        "0.1 through 1.8 burden rating",
    ),
    (
        "ameren_il_btm_metering",
        "ct_burden",
        "max_burden",
        1.8,
        "000",
        "0.1 through 1.8 burden rating",
    ),
    (
        "ameren_il_btm_metering",
        "ct_rating_factor",
        "max_rating_factor",
        2.0,
        "000",
        "Rating factors above 2.0 are not permitted",
    ),
    (
        "ameren_il_btm_metering",
        "neutral",
        "min_parallel_gauge_awg",
        "1/0",
        "000",
        "no smaller than 1/0 AWG",
    ),
    ("ameren_il_btm_metering", "conduit", "size_in", 1.5, "000", "sized at 1.5"),
    ("ameren_il_btm_metering", "enclosure_spacing", "min_in", 6.0, "000", "no less than 6"),
    (
        "ameren_il_btm_metering",
        "working_clearance",
        "min_width_in",
        30.0,
        "000",
        "The greater of 30",
    ),
    ("ameren_il_btm_metering", "working_clearance", "min_depth_in", 42.0, "000", "no less than 42"),
    (
        "ameren_il_btm_metering",
        "working_clearance",
        "min_headroom_in",
        78.0,
        "000",
        "no less than 78",
    ),
    (
        "ameren_il_btm_metering",
        "mounting_height",
        "center_height_in",
        66.0,
        "000",
        '66" above final grade',
    ),
    (
        "ameren_il_btm_metering",
        "secondary_wiring",
        "max_length_ft_by_gauge",
        {"12": 55.0, "10": 90.0},
        "000",
        "#12 GA Cu up to 55 ft MAX",
    ),
    (
        "ameren_il_btm_metering",
        "grounding_conductor",
        "min_gauge_awg",
        "10",
        "000",
        "Minimum #10 AWG Cu equipment grounding conductor",
    ),
    (
        "ameren_il_btm_metering",
        "gas_vent_clearance",
        "riser_od_breakpoint_in",
        2.375,
        "000",
        "less than or equal to 2.375",
    ),
    (
        "ameren_il_btm_metering",
        "gas_vent_clearance",
        "min_distance_small_riser_ft",
        3.0,
        "000",
        "minimum 3 ft spherical radius",
    ),
    (
        "ameren_il_btm_metering",
        "gas_vent_clearance",
        "min_distance_large_riser_ft",
        15.0,
        "000",
        "minimum of a 15 ft spherical radius",
    ),
    # 002 BGE CSR-6
    (
        "bge_csr6",
        "applicability",
        "primary_voltages_ll_v",
        [13200.0, 33000.0],
        "002",
        "BGE 13.2 or 33kV distribution system",
    ),
    ("bge_csr6", "applicability", "min_generator_kw_exclusive", 200.0, "002", "in excess of 200kW"),
    (
        "bge_csr6",
        "applicability",
        "min_parallel_s_exclusive",
        1.0,
        "002",
        "periods exceeding 1 second",
    ),
    ("bge_csr6", "power_factor", "lagging_pf", 0.90, "002", "0.90 lagging to 0.95 leading"),
    ("bge_csr6", "power_factor", "leading_pf", 0.95, "002", "0.90 lagging to 0.95 leading"),
    ("bge_csr6", "regulated_voltage", "min_v", 120.0, "002", "from 120 to 125 volts"),
    ("bge_csr6", "regulated_voltage", "max_v", 125.0, "002", "from 120 to 125 volts"),
    ("bge_csr6", "flicker", "max_pct", 2.0, "002", "flicker to be greater than 2%"),
    ("bge_csr6", "thd", "max_pct", 5.0, "002", "exceeds5%"),
    ("bge_csr6", "uv_fast", "threshold_v", 60.0, "002", "below 60V RMS"),
    (
        "bge_csr6",
        "uv_fast",
        "max_cycles",
        6.0,
        "002",
        "within six cycles if the voltage falls below 60V",
    ),
    ("bge_csr6", "uv_slow", "threshold_v", 104.0, "002", "falls below 104V RMS"),
    ("bge_csr6", "uv_slow", "max_s", 2.0, "002", "within two seconds"),
    ("bge_csr6", "ov_slow", "threshold_v", 132.0, "002", "rises above 132V RMS"),
    ("bge_csr6", "ov_slow", "max_s", 2.0, "002", "within two seconds"),
    ("bge_csr6", "ov_fast", "threshold_v", 165.0, "002", "rises above 165V RMS"),
    ("bge_csr6", "ov_fast", "max_cycles", 2.0, "002", "within two cycles"),
    ("bge_csr6", "over_frequency", "threshold_hz", 60.3, "002", "rises above 60.3Hz"),
    ("bge_csr6", "over_frequency", "max_cycles", 6.0, "002", "within six cycles if the frequency"),
    ("bge_csr6", "under_frequency", "threshold_hz", 59.3, "002", "falls below 59.3Hz"),
    ("bge_csr6", "under_frequency", "max_cycles", 6.0, "002", "within six cycles if the frequency"),
    (
        "bge_csr6",
        "reclosing_coordination",
        "reclose_cycles",
        12.0,
        "002",
        "as quickly as 12 cycles",
    ),
    ("bge_csr6", "nominal_frequency", "frequency_hz", 60.0, "002", "60.3Hz"),
    ("bge_csr6", "revenue_metering", "low_voltage_max_v", 480.0, "002", "(480 volts or less)"),
    ("bge_csr6", "revenue_metering", "medium_voltage_min_v", 2400.0, "002", "(2.4kV through 33kV)"),
    (
        "bge_csr6",
        "revenue_metering",
        "medium_voltage_max_v",
        33000.0,
        "002",
        "(2.4kV through 33kV)",
    ),
    (
        "bge_csr6",
        "distribution_automation",
        "circuit_a",
        20.0,
        "002",
        "dedicated 20A, 120VAC circuit",
    ),
    (
        "bge_csr6",
        "distribution_automation",
        "circuit_v",
        120.0,
        "002",
        "dedicated 20A, 120VAC circuit",
    ),
    # 001 flexible interconnection report (screens and the pilot)
    ("il_part466_screens", "level1_shared_secondary", "max_kva", 20.0, "001", "exceed 20kVA"),
    (
        "il_part466_screens",
        "volt_watt_pilot",
        "contribution_usd",
        200.0,
        "001",
        "avoid the \\$200 cost contribution",
    ),
    ("il_part466_screens", "volt_watt_pilot", "start_v_pu", 1.06, "001", "106% of nominal voltage"),
    (
        "ieee1547_2018",
        "seed_volt_watt_curve",
        "v_pu",
        [1.06, 1.10],
        "001",
        "106% of nominal voltage",
    ),
]

SEEDS = {
    "000": "000_9d43a5ca67169be9.txt",
    "001": "001_9847d8232b845ab9.txt",
    "002": "002_2ae50ee6bbb285a9.txt",
}


@pytest.mark.parametrize("name", builtin_names())
def test_every_rule_has_a_source(name: str) -> None:
    rs = load_ruleset(name)
    assert rs.rules, name
    for rule_id, rule in rs.rules.items():
        assert any(doc in rule.source for doc in ("_", "IEEE", "Ill. Adm. Code", "CSR-6")), (
            f"{name}.{rule_id}: source {rule.source!r} names no document"
        )
        if rule.certainty != "stated":
            assert any(w in rule.source.lower() for w in ("verify", "assumed", "uncertain")) or (
                rule.note
            ), f"{name}.{rule_id} is {rule.certainty} but its source does not say so"


def test_builtin_rule_sets_are_the_four_of_the_issue() -> None:
    assert set(builtin_names()) >= {
        "ameren_il_btm_metering",
        "bge_csr6",
        "ieee1547_2018",
        "il_part466_screens",
    }


@pytest.mark.parametrize(
    ("ruleset", "rule", "param", "value", "seed", "quote"),
    SEED_THRESHOLDS,
    ids=[f"{t[0]}.{t[1]}.{t[2]}" for t in SEED_THRESHOLDS],
)
def test_seed_threshold_is_in_a_rule_set(
    ruleset: str, rule: str, param: str, value: Any, seed: str, quote: str
) -> None:
    rs = load_ruleset(ruleset)
    assert rs.param(rule, param) == value
    assert SEEDS[seed] in rs.rule(rule).source or seed == "001" or ruleset == "ieee1547_2018"


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_threshold_quotes_are_in_the_seeds(seed: str) -> None:
    """The seed text each threshold was taken from is really in that seed (skips without it)."""
    try:
        path = shared_dir() / "seeds" / SEEDS[seed]
    except SharedDataMissingError as exc:
        pytest.skip(str(exc))
    if not path.exists():
        pytest.skip(f"{path} not present")
    text = " ".join(path.read_text(encoding="utf-8").split())
    for t in SEED_THRESHOLDS:
        if t[4] == seed:
            assert t[5] in text, f"{t[5]!r} not found in {SEEDS[seed]}"


@pytest.mark.parametrize("example_file", ["example.yaml", "example_level1.yaml"])
def test_every_rule_is_evaluated(example_file: str) -> None:
    app = parse_application(example(example_file), example_file)
    report = check(app)
    for name in builtin_names():
        rs = load_ruleset(name)
        covered = {f.rule.split(".")[1] for f in report.findings if f.ruleset == name}
        assert covered == set(rs.rules), f"{name}: not evaluated {set(rs.rules) - covered}"
    for f in report.findings:
        assert f.source
        assert f.message


def test_embedded_example_exercises_every_rule_set() -> None:
    report = check(example_application())
    for name in builtin_names():
        applied = [
            f
            for f in report.findings
            if f.ruleset == name and f.status is not Status.NOT_APPLICABLE
        ]
        assert applied, f"the example does not exercise {name}"
    assert report.ok, [f.message for f in report.failed]


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "my_rules.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_utility_adds_its_own_rule_set_without_code(tmp_path: Path) -> None:
    """Same checker, its own threshold (100 kW), plus a data-only field rule."""
    own = load_ruleset("ameren_il_btm_metering").model_dump(mode="json", exclude={"path"})
    own["ruleset"] = "my_utility_metering"
    own["rules"]["production_meter_required"]["params"]["min_aggregate_kw"] = 100.0
    own["rules"]["service_voltage_cap"] = {
        "title": "Service at most 600 V for BTM metering",
        "source": "My Utility Metering Manual, section 4.2",
        "field": {"path": "service.voltage_ll_v", "op": "<=", "limit": 600},
    }
    path = _write(tmp_path, own)
    data = edit(
        example("example.yaml"),
        {
            "resources": [{"kind": "pv", "id": "pv", "ac_kw": 150}],
            "metering": None,
            "protection": None,
        },
    )
    data = {k: v for k, v in data.items() if v is not None}
    report = check(parse_application(data, "t"), [str(path)])
    (meter,) = report.by_rule("my_utility_metering.production_meter_required")
    assert meter.status is Status.FAIL
    assert meter.limit == 100.0
    (cap,) = report.by_rule("my_utility_metering.service_voltage_cap")
    assert cap.status is Status.FAIL
    assert cap.value == 13200
    assert cap.source == "My Utility Metering Manual, section 4.2"
    # the built-in rule set is untouched: 150 kW needs no meter there
    builtin = check(parse_application(data, "t"), ["ameren_il_btm_metering"])
    assert (
        builtin.by_rule("ameren_il_btm_metering.production_meter_required")[0].status is Status.PASS
    )


def test_rule_without_source_is_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "ruleset": "bad",
            "title": "bad",
            "version": "1",
            "checker": "generic",
            "rules": {"r": {"title": "x", "field": {"path": "a", "op": "<", "limit": 1}}},
        },
    )
    with pytest.raises(InputError, match=r"rules\.r\.source: Field required"):
        load_ruleset(path)


def test_custom_rule_set_missing_a_rule_names_it(tmp_path: Path) -> None:
    own = load_ruleset("bge_csr6").model_dump(mode="json", exclude={"path"})
    del own["rules"]["flicker"]
    own["ruleset"] = "partial"
    path = _write(tmp_path, own)
    with pytest.raises(InputError, match="has no rule 'flicker'"):
        check(example_application(), [str(path)])


def test_unknown_rule_set_lists_the_builtin_ones() -> None:
    with pytest.raises(InputError, match="use one of ameren_il_btm_metering, bge_csr6"):
        load_ruleset("nonesuch")


def test_generic_field_rule_missing_value_is_needs_review(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "ruleset": "mine",
            "title": "mine",
            "version": "1",
            "checker": "generic",
            "rules": {
                "peak": {
                    "title": "Existing minimum load known",
                    "source": "My manual 1.1",
                    "field": {"path": "existing_load.minimum_kw", "op": ">=", "limit": 0},
                }
            },
        },
    )
    data = example("example_level1.yaml")
    report = check(parse_application(data, "t"), [str(path)])
    assert report.findings[0].status is Status.NEEDS_REVIEW
    data["existing_load"]["minimum_kw"] = 2
    report = check(parse_application(data, "t"), [str(path)])
    assert report.findings[0].status is Status.PASS


def test_report_as_a_table_and_counts() -> None:
    report = check(example_application(), ["bge_csr6"])
    frame = report.to_frame()
    assert list(frame.columns) == [
        "rule",
        "status",
        "value",
        "limit",
        "unit",
        "source",
        "message",
        "ruleset",
    ]
    assert len(frame) == len(report.findings)
    assert frame.loc[frame["rule"] == "bge_csr6.uv_fast", "value"].item() == 5.0
    assert sum(report.counts().values()) == len(report.findings)
    assert report.counts()["fail"] == 0


def test_same_rule_set_twice_is_refused() -> None:
    with pytest.raises(InputError, match="rule set 'bge_csr6' is given twice"):
        check(example_application(), ["bge_csr6", "bge_csr6"])
