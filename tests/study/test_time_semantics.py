"""--hours / --step / --start arithmetic on a model's profiles (no solve)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from gridflex.errors import InputError
from gridflex.network.model import LoadShape, Network
from gridflex.study.simulate import (
    default_start,
    parse_start,
    parse_step,
    profile_hours,
    resolve_steps,
    shift_profiles,
    year_offset_h,
)


def _with_shapes(net: Network, shapes: dict[str, LoadShape], kind: str) -> Network:
    out = copy.copy(net)
    out.loadshapes = shapes
    out.kind = kind  # type: ignore[assignment]
    out.profile_step_h = 1.0
    return out


def test_steps_follow_the_profile_step_unless_given(default_network: Network) -> None:
    assert resolve_steps(default_network, 24, None) == (96, timedelta(minutes=15))
    assert resolve_steps(default_network, 24, parse_step("1h")) == (24, timedelta(hours=1))
    assert resolve_steps(default_network, 0.5, parse_step("30s")) == (60, timedelta(seconds=30))
    # default: the whole SimBench profile, 366 days of 2016
    assert resolve_steps(default_network, None, None)[0] == 366 * 96
    assert profile_hours(default_network) == 366 * 24
    with pytest.raises(InputError, match="not a whole number"):
        resolve_steps(default_network, 1.1, None)


def test_start_offsets_in_local_time(default_network: Network) -> None:
    start = parse_start("2016-03-01T06:00", default_network)
    assert start.utcoffset() == timedelta(hours=1)  # SimBench: CET all year
    assert year_offset_h(start, default_network) == (31 + 29) * 24 + 6
    assert default_start(default_network) == datetime(2015, 12, 31, 23, tzinfo=UTC)
    utc = parse_start("2016-03-01T06:00Z", default_network)
    assert year_offset_h(utc, default_network) == (31 + 29) * 24 + 7


def test_opendss_models_are_utc_in_the_current_year(default_network: Network) -> None:
    dss = _with_shapes(default_network, {}, "opendss")
    now = datetime(2027, 5, 3, tzinfo=UTC)
    assert default_start(dss, now) == datetime(2027, 1, 1, tzinfo=UTC)
    assert year_offset_h(parse_start("2027-01-02", dss), dss) == 24


def test_shift_rotates_interval_shapes_and_resamples_explicit_hours(
    default_network: Network,
) -> None:
    p = np.arange(8760, dtype=float)
    fixed = LoadShape("a", p, p * 2, interval_h=1.0)
    explicit = LoadShape(
        "b", np.array([0.0, 10.0, 20.0]), None, interval_h=0.0, hours=np.array([0.0, 1.0, 2.0])
    )
    net = _with_shapes(default_network, {"a": fixed, "b": explicit}, "opendss")
    out = shift_profiles(net, 5.0)
    assert out is not net
    assert net.loadshapes["a"].p_mult[0] == 0.0  # the original is untouched
    np.testing.assert_array_equal(out.loadshapes["a"].p_mult[:3], [5.0, 6.0, 7.0])
    assert out.loadshapes["a"].p_mult[-1] == 4.0  # wraps like an OpenDSS yearly shape
    q = out.loadshapes["a"].q_mult
    assert q is not None
    np.testing.assert_array_equal(q[:2], [10.0, 12.0])
    # explicit hours 0..2 (span 2 h): +5 h is +1 h after wrapping -> 10, 20, then 10 again
    np.testing.assert_allclose(out.loadshapes["b"].p_mult, [10.0, 0.0, 10.0])
    assert shift_profiles(net, 0.0) is net


def test_opendss_start_reads_later_shape_hours(tmp_path: Path) -> None:
    """An OpenDSS yearly shape's hour 0 is 1 January 00:00 (UTC): a 05:00 start reads hour 5
    onwards, exactly what the 00:00 run reads at its sixth step."""
    from gridflex.study.simulate import run_simulation

    mult = ", ".join(f"{0.2 + 0.1 * (h % 7):.1f}" for h in range(48))
    master = tmp_path / "m.dss"
    master.write_text(
        "Clear\n"
        "New Circuit.t basekv=12.47 pu=1.0 phases=3 bus1=src\n"
        f"New Loadshape.ls npts=48 interval=1 mult=({mult})\n"
        "New Line.l1 bus1=src bus2=b phases=3 r1=0.5 x1=1\n"
        "New Load.ld bus1=b phases=3 kv=12.47 kw=3000 kvar=300 yearly=ls\n"
        "Set VoltageBases=[12.47]\nCalcVoltageBases\n"
    )
    base = run_simulation(master, tmp_path / "a", hours=8, start="2026-01-01T00:00", plot=False,
                          violations="summary")  # fmt: skip
    later = run_simulation(master, tmp_path / "b", hours=3, start="2026-01-01T05:00", plot=False,
                           violations="summary")  # fmt: skip
    assert later.run_info["profile_offset_h"] == 5.0
    assert later.run_info["start"] == "2026-01-01T05:00:00Z"  # OpenDSS models are UTC
    # equal to the solver's tolerance (1e-6 pu; the two runs start from different guesses)
    np.testing.assert_allclose(later.result.source_p_kw, base.result.source_p_kw[5:8], rtol=1e-5)
    np.testing.assert_allclose(later.result.v_pu, base.result.v_pu[5:8], atol=2e-6)
    # and the shape really varies over those hours (the comparison could fail)
    assert np.ptp(base.result.source_p_kw[5:8]) > 100.0
    assert not np.allclose(later.result.source_p_kw, base.result.source_p_kw[:3], rtol=1e-3)
