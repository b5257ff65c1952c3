"""IEEE 1547-2018 default curves and the seed's recommended volt/watt curve, read from YAML."""

from __future__ import annotations

import numpy as np
import pytest

from gridflex.errors import InputError
from gridflex.rules import (
    frequency_trip_defaults,
    load_ruleset,
    seed_volt_watt_curve,
    volt_var_default,
    volt_watt_default,
    voltage_trip_defaults,
)


def test_volt_watt_default_table_10() -> None:
    curve = volt_watt_default()
    assert curve.v_pu == (1.06, 1.10)
    assert curve.p_pct == (100.0, 20.0)
    v_pu = [1.0, 1.06, 1.08, 1.10, 1.2]
    np.testing.assert_allclose(curve.limit_pct(v_pu), [100, 100, 60, 20, 20])


def test_seed_volt_watt_curve_starts_at_106_percent_and_end_point_is_assumed() -> None:
    curve = seed_volt_watt_curve()
    assert curve.v_pu[0] == pytest.approx(1.06)
    assert curve.p_pct[0] == 100.0
    rule = load_ruleset("ieee1547_2018").rule("seed_volt_watt_curve")
    assert rule.certainty == "assumed"
    assert "ASSUMED" in rule.source
    assert rule.params["assumed_points"] == [1]


@pytest.mark.parametrize(
    ("category", "points"),
    [("B", (0.92, 0.98, 1.02, 1.08, 44.0)), ("a", (0.90, 1.00, 1.00, 1.10, 25.0))],
)
def test_volt_var_default_table_8(category: str, points: tuple[float, ...]) -> None:
    curve = volt_var_default(category)
    assert curve.v_pu == points[:4]
    assert curve.q_pct == (points[4], 0.0, 0.0, -points[4])
    assert "Table 8" in curve.source


def test_volt_var_category_b_interpolates() -> None:
    q = volt_var_default().q_pct_at(np.array([0.90, 0.95, 1.00, 1.05, 1.10]))
    np.testing.assert_allclose(q, [44.0, 22.0, 0.0, -22.0, -44.0])


def test_unknown_category_is_an_input_error() -> None:
    with pytest.raises(InputError, match="use category 'A' or 'B'"):
        volt_var_default("C")


def test_trip_defaults_category_ii_and_frequency() -> None:
    v = voltage_trip_defaults("II")
    assert (v["UV1"].pickup, v["UV1"].clearing_time_s) == (0.70, 10.0)
    assert (v["OV2"].pickup, v["OV2"].clearing_time_s) == (1.20, 0.16)
    f = frequency_trip_defaults()
    assert (f["UF1"].pickup, f["OF1"].pickup, f["OF2"].clearing_time_s) == (58.5, 61.2, 0.16)
