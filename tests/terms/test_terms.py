"""ConnectionTerms: validation, derived limits, further-limiting detection, schema and CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from gridflex.cli.main import app
from gridflex.terms import (
    AllocationPolicy,
    ConnectionTerms,
    DynamicClass,
    StaggerPhase,
    VoltWattCurve,
)

AGREED = "2026-01-05T00:00:00Z"
ROOT = Path(__file__).resolve().parents[2]


def make(**kw: object) -> ConnectionTerms:
    base: dict[str, object] = {"connection_id": "app-1", "nameplate_kw": 500, "agreed_at": AGREED}
    base.update(kw)
    return ConnectionTerms.model_validate(base)


def test_minimal_terms_defaults() -> None:
    t = make()
    assert t.version == 1
    assert t.export_limit_kw is None
    assert t.agreed_at == dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    # unlimited export means nameplate; unlimited import means infinite
    hours = pd.date_range("2026-07-01", periods=3, freq="h", tz="UTC")
    np.testing.assert_array_equal(t.export_limit_kw_at(hours), [500.0] * 3)
    assert np.all(np.isinf(t.import_limit_kw_at(hours)))


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("export_limit_kw", -1, "greater than or equal to 0"),
        ("import_limit_kw", -0.01, "greater than or equal to 0"),
        ("nameplate_kw", 0, "greater than 0"),
        ("export_limit_kw", 600, "exceeds nameplate_kw"),
        ("schedule_export_kw", [100.0] * 287, "has 287 values"),
        ("schedule_import_kw", [[1.0] * 24] * 11 + [[1.0] * 23], "has 287 values"),
        ("schedule_export_kw", [[1.0] * 24] * 11 + [[1.0] * 23 + [-5.0]], "month 12][hour 23]"),
        ("tz", "Mars/Olympus", "is not an IANA time zone"),
        ("connection_id", "has space", "String should match pattern"),
        ("agreed_at", "2026-01-05T00:00:00", "timezone"),
        ("colour", "red", "Extra inputs are not permitted"),
    ],
)
def test_invalid_terms_name_the_field(field: str, value: object, needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        make(**{field: value})
    assert needle in str(err.value)
    assert field in str(err.value)


def test_fallback_must_not_exceed_static_limit() -> None:
    with pytest.raises(ValidationError, match="fallback must be at least as conservative"):
        make(export_limit_kw=200, fallback_export_kw=250)


def test_dynamic_class_requires_policy_inputs() -> None:
    with pytest.raises(ValidationError, match="queue_position is required"):
        DynamicClass(policy=AllocationPolicy.LIFO)
    with pytest.raises(ValidationError, match="tranche is required"):
        DynamicClass(policy=AllocationPolicy.PRO_RATA_TRANCHES)
    assert DynamicClass(policy="pro_rata").policy is AllocationPolicy.PRO_RATA


def test_stagger_phases_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="strictly increasing start dates"):
        make(
            stagger_phases=[
                {"start": "2027-01-01", "export_limit_kw": 300},
                {"start": "2026-01-01", "export_limit_kw": 100},
            ]
        )


def test_volt_watt_curve_validation_and_interpolation() -> None:
    curve = VoltWattCurve(v_pu=(1.06, 1.10), p_pct=(100.0, 20.0))
    np.testing.assert_allclose(
        curve.limit_pct([1.0, 1.06, 1.08, 1.10, 1.2]), [100, 100, 60, 20, 20]
    )
    with pytest.raises(ValidationError, match="strictly increasing"):
        VoltWattCurve(v_pu=(1.10, 1.06), p_pct=(100.0, 20.0))
    with pytest.raises(ValidationError, match="must not increase"):
        VoltWattCurve(v_pu=(1.06, 1.10), p_pct=(20.0, 100.0))
    with pytest.raises(ValidationError, match="one power value per voltage point"):
        VoltWattCurve(v_pu=(1.06, 1.08, 1.10), p_pct=(100.0, 20.0))


def test_schedule_reads_local_prevailing_time_across_dst() -> None:
    # Schedule value = hour of day, so the limit shows which local hour was used.
    schedule = [[float(h) for h in range(24)] for _ in range(12)]
    t = make(schedule_export_kw=schedule, tz="America/Chicago")
    # 2026-03-08 is the US spring-forward day: 07:00 UTC = 01:00 CST, 08:00 UTC = 03:00 CDT.
    times = pd.DatetimeIndex(["2026-03-08T07:00Z", "2026-03-08T08:00Z", "2026-07-01T17:00Z"])
    np.testing.assert_array_equal(t.export_limit_kw_at(times), [1.0, 3.0, 12.0])


def test_limit_is_minimum_of_static_schedule_and_stagger_phase() -> None:
    t = make(
        export_limit_kw=400,
        schedule_export_kw=ConnectionTerms.seasonal_schedule(summer_kw=250, winter_kw=450),
        stagger_phases=[
            {"start": "2026-01-01", "export_limit_kw": 100},
            {"start": "2026-06-15", "export_limit_kw": 300},
            {"start": "2027-01-01"},
        ],
        tz="UTC",
    )
    times = pd.DatetimeIndex(
        ["2025-12-31T12:00Z", "2026-03-01T12:00Z", "2026-07-01T12:00Z", "2027-02-01T12:00Z"]
    )
    # 2025: static 400 vs winter 450 -> 400; Mar 2026: phase 1 -> 100;
    # Jul 2026: summer 250 < phase 2's 300 -> 250; Feb 2027: no phase limit, winter 450 vs 400.
    np.testing.assert_array_equal(t.export_limit_kw_at(times), [400, 100, 250, 400])


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make().export_limit_kw_at(pd.date_range("2026-01-01", periods=2, freq="h"))


def test_effective_fallback() -> None:
    assert make().effective_fallback_export_kw == 500
    assert make(export_limit_kw=300).effective_fallback_export_kw == 300
    assert make(export_limit_kw=300, fallback_export_kw=50).effective_fallback_export_kw == 50
    sched = ConnectionTerms.seasonal_schedule(summer_kw=120, winter_kw=480)
    assert make(schedule_export_kw=sched).effective_fallback_export_kw == 120
    dynamic = make(dynamic=DynamicClass(policy="pro_rata"))
    assert dynamic.effective_fallback_export_kw == 0.0


def test_restricts_more_than() -> None:
    old = make(export_limit_kw=300, schedule_export_kw=[[200.0] * 24] * 12)
    looser = make(export_limit_kw=350, schedule_export_kw=[[200.0] * 24] * 12, version=2)
    assert looser.restricts_more_than(old) == []
    tighter_sched = [[200.0] * 24] * 11 + [[200.0] * 23 + [150.0]]
    tighter = make(export_limit_kw=300, schedule_export_kw=tighter_sched, version=2)
    reasons = tighter.restricts_more_than(old)
    assert len(reasons) == 1
    assert "month 12 hour 23: 200.0 -> 150.0 kW" in reasons[0]
    new_import = make(import_limit_kw=10, version=2)
    assert new_import.restricts_more_than(make()) == [
        "static import limit lowered from inf to 10.0 kW"
    ]


def test_json_round_trip_and_yaml_file(tmp_path: Path) -> None:
    t = make(
        export_limit_kw=250,
        schedule_import_kw=ConnectionTerms.seasonal_schedule(100, 200),
        stagger_phases=[StaggerPhase(start=dt.date(2026, 5, 1), export_limit_kw=100)],
        volt_watt_curve={"v_pu": [1.06, 1.1], "p_pct": [100, 20]},
        dynamic={"policy": "lifo", "queue_position": 3},
    )
    again = ConnectionTerms.model_validate_json(t.model_dump_json())
    assert again == t
    path = tmp_path / "terms.yaml"
    path.write_text(
        "connection_id: app-9\nnameplate_kw: 100\nexport_limit_kw: 40\n"
        "agreed_at: 2026-02-01T00:00:00Z\n",
        encoding="utf-8",
    )
    assert ConnectionTerms.from_file(path).export_limit_kw == 40


def test_published_schema_matches_model() -> None:
    published = json.loads((ROOT / "docs/schemas/connection_terms.json").read_text("utf-8"))
    assert published == ConnectionTerms.json_schema(), (
        "docs/schemas/connection_terms.json is stale: regenerate it with "
        "`gridflex terms schema > docs/schemas/connection_terms.json`"
    )


def test_cli_validate_good_and_bad(tmp_path: Path) -> None:
    runner = CliRunner()
    good = tmp_path / "good.json"
    good.write_text(make(export_limit_kw=250).model_dump_json(), encoding="utf-8")
    result = runner.invoke(app, ["terms", "validate", str(good)])
    assert result.exit_code == 0, result.output
    assert "app-1 v1: nameplate 500.0 kW, export limit 250.0 kW" in result.output

    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {"connection_id": "x", "nameplate_kw": 10, "agreed_at": AGREED, "export_limit_kw": -3}
        ),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["terms", "validate", str(bad)])
    assert result.exit_code != 0
    assert "export_limit_kw" in str(result.exception)


def test_cli_validate_refuses_broken_yaml(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("connection_id: x\nnameplate_kw: [1\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["terms", "validate", str(broken)])
    assert result.exit_code != 0
    assert f"{broken}: cannot be read as terms" in str(result.exception)
