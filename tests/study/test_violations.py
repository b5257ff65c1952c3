"""Violation detection over constructed arrays with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridflex.errors import InputError
from gridflex.powerflow.result import TimeSeriesResult
from gridflex.powerflow.violations import (
    VIOLATION_COLUMNS,
    Limits,
    find_violations,
    load_limits,
    reverse_power_violations,
    thermal_violations,
    voltage_violations,
)

TIME = pd.date_range("2026-01-01", periods=3, freq="h", tz="UTC")


def test_default_limits_are_ansi_c84_1_range_a_with_sources() -> None:
    lim = load_limits()
    assert (lim.undervoltage_pu, lim.overvoltage_pu) == (0.95, 1.05)
    assert (lim.thermal_normal_pct, lim.thermal_emergency_pct) == (100.0, 100.0)
    assert lim.reverse_min_p_kw == 0.0
    assert "ANSI C84.1" in lim.sources[0]
    assert "Range A" in lim.sources[0]
    assert "001_9847d8232b845ab9.txt" in lim.sources[2]


def test_voltage_violations_known_answer() -> None:
    v = np.array(
        [
            [1.00, 0.94, 1.05],  # 0.94 under; 1.05 is on the edge, not over
            [1.051, 0.95, np.nan],  # over; 0.95 on the edge; NaN (failed step) not flagged
            [0.90, 1.10, 1.00],
        ]
    )
    out = voltage_violations(
        TIME, ["a.1", "b.2", "c.3"], v, undervoltage_pu=0.95, overvoltage_pu=1.05
    )
    got = {(t.hour, e, k, round(val, 3), lim) for t, e, k, val, lim in out.itertuples(index=False)}
    assert got == {
        (0, "b.2", "undervoltage", 0.94, 0.95),
        (1, "a.1", "overvoltage", 1.051, 1.05),
        (2, "a.1", "undervoltage", 0.9, 0.95),
        (2, "b.2", "overvoltage", 1.1, 1.05),
    }
    assert tuple(out.columns) == VIOLATION_COLUMNS


def test_thermal_violations_normal_and_emergency_on_one_scale() -> None:
    # line.x: emergency rating 1.5 x normal; transformer.y: unrated (NaN) never flagged
    load = np.array([[90.0, np.nan], [120.0, np.nan], [160.0, np.nan]])
    emerg = load / 1.5
    out = thermal_violations(TIME, ["line.x", "transformer.y"], load, emerg)
    normal = out[out.kind == "thermal_normal"]
    em = out[out.kind == "thermal_emergency"]
    assert list(normal["value"]) == [120.0, 160.0]
    assert set(normal["limit"]) == {100.0}
    assert list(em["time"]) == [TIME[2]]
    assert em["value"].iloc[0] == pytest.approx(160.0)
    assert em["limit"].iloc[0] == pytest.approx(150.0)  # emergency rating in % of normal


def test_reverse_power_strictly_below_limit() -> None:
    p = np.array([[5.0, 0.0], [-0.5, 3.0], [-20.0, -1.0]])
    out = reverse_power_violations(TIME, ["vsource.source", "transformer.reg1"], p)
    assert [(t.hour, e, v) for t, e, _, v, _ in out.itertuples(index=False)] == [
        (1, "vsource.source", -0.5),
        (2, "vsource.source", -20.0),
        (2, "transformer.reg1", -1.0),
    ]


def test_find_violations_over_a_result_sorted_by_time_kind_element() -> None:
    n = len(TIME)
    result = TimeSeriesResult(
        time=TIME,
        node_names=["n1.1", "n2.1"],
        v_pu=np.array([[1.0, 0.9], [1.06, 1.0], [1.0, 1.0]]),
        branch_names=["line.l1"],
        branch_loading_pct=np.array([[50.0], [101.0], [10.0]]),
        branch_loading_emerg_pct=np.array([[40.0], [80.0], [8.0]]),
        source_p_kw=np.array([10.0, 10.0, -3.0]),
        source_q_kvar=np.zeros(n),
        regulator_names=["reg1"],
        regulator_taps=np.zeros((n, 1), dtype=np.int64),
        regulator_p_kw=np.array([[1.0], [-2.0], [1.0]]),
        capacitor_names=[],
        capacitor_states=np.zeros((n, 0), dtype=np.int64),
        losses_kw=np.zeros(n),
        pv_names=[],
        pv_available_kw=np.zeros((n, 0)),
        pv_p_kw=np.zeros((n, 0)),
        pv_curtailed_kw=np.zeros((n, 0)),
        e_curtailed_kwh=np.zeros(0),
        converged=np.ones(n, dtype=bool),
        iterations=np.ones(n, dtype=np.int64),
    )
    out = find_violations(result, source_name="vsource.source")
    assert [
        (t.hour, e, k) for t, e, k in out[["time", "element", "kind"]].itertuples(index=False)
    ] == [
        (0, "n2.1", "undervoltage"),
        (1, "n1.1", "overvoltage"),
        (1, "line.l1", "thermal_normal"),
        (1, "reg1", "reverse_power"),
        (2, "vsource.source", "reverse_power"),
    ]


def test_naive_times_are_refused() -> None:
    with pytest.raises(InputError, match="no time zone"):
        voltage_violations(
            pd.date_range("2026-01-01", periods=1, freq="h"),
            ["a.1"],
            np.ones((1, 1)),
            undervoltage_pu=0.95,
            overvoltage_pu=1.05,
        )


def test_shape_mismatch_names_the_array() -> None:
    with pytest.raises(InputError, match=r"v_pu has shape \(3, 2\), expected .* \(3, 3\)"):
        voltage_violations(TIME, ["a", "b", "c"], np.ones((3, 2)), undervoltage_pu=0.9,
                           overvoltage_pu=1.1)  # fmt: skip


def test_limits_file_errors_name_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "limits.yaml"
    bad.write_text("voltage: {undervoltage_pu: 0.95}\nthermal: {}\nreverse_power: {}\n")
    with pytest.raises(InputError, match=r"limits.yaml: voltage: missing field 'overvoltage_pu'"):
        load_limits(bad)
    with pytest.raises(InputError, match="does not exist"):
        load_limits(tmp_path / "nope.yaml")
    with pytest.raises(InputError, match="increasing pair"):
        Limits(1.05, 0.95, 100, 100, 0)
    custom = tmp_path / "custom.yaml"
    custom.write_text(
        "name: tight\nvoltage: {undervoltage_pu: 0.97, overvoltage_pu: 1.03, source: s}\n"
        "thermal: {normal_pct: 80, emergency_pct: 100, source: s}\n"
        "reverse_power: {min_p_kw: -5, source: s}\n"
    )
    lim = load_limits(custom)
    assert (lim.name, lim.undervoltage_pu, lim.thermal_normal_pct, lim.reverse_min_p_kw) == (
        "tight", 0.97, 80.0, -5.0,
    )  # fmt: skip


def test_streamed_slices_equal_the_whole_table_and_summary() -> None:
    from gridflex.powerflow.violations import ViolationSummary, iter_violations

    n = 50
    rng = np.random.default_rng(3)
    time = pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC")
    result = TimeSeriesResult(
        time=time,
        node_names=[f"n{i}.1" for i in range(4)],
        v_pu=0.9 + 0.2 * rng.random((n, 4)),
        branch_names=["line.a", "line.b"],
        branch_loading_pct=150 * rng.random((n, 2)),
        branch_loading_emerg_pct=100 * rng.random((n, 2)),
        source_p_kw=rng.normal(size=n),
        source_q_kvar=np.zeros(n),
        regulator_names=[],
        regulator_taps=np.zeros((n, 0), dtype=np.int64),
        regulator_p_kw=np.zeros((n, 0)),
        capacitor_names=[],
        capacitor_states=np.zeros((n, 0), dtype=np.int64),
        losses_kw=np.zeros(n),
        pv_names=[],
        pv_available_kw=np.zeros((n, 0)),
        pv_p_kw=np.zeros((n, 0)),
        pv_curtailed_kw=np.zeros((n, 0)),
        e_curtailed_kwh=np.zeros(0),
        converged=np.ones(n, dtype=bool),
        iterations=np.ones(n, dtype=np.int64),
    )
    whole = find_violations(result)
    slices = list(iter_violations(result, chunk_values=28))  # 7 steps per slice
    assert len(slices) == 8
    joined = pd.concat([s.astype({"element": str, "kind": str}) for s in slices])
    pd.testing.assert_frame_equal(
        joined.reset_index(drop=True), whole.astype({"element": str, "kind": str})
    )
    summary = ViolationSummary()
    for s in slices:
        summary.add(s)
    d = summary.as_dict()
    for kind in ("undervoltage", "overvoltage", "thermal_normal", "reverse_power"):
        sub = whole[whole.kind == kind]
        assert d[kind]["rows"] == len(sub)
        assert d[kind]["elements"] == sub["element"].nunique()
        assert d[kind]["steps"] == sub["time"].nunique()
    assert d["undervoltage"]["worst"]["value"] == whole[whole.kind == "undervoltage"].value.min()
    assert d["overvoltage"]["worst"]["value"] == whole[whole.kind == "overvoltage"].value.max()
