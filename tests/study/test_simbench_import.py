"""SimBench / pandapower import: names, the one-phase equivalent, agreement with pandapower."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridflex.errors import InputError
from gridflex.network import load_network
from gridflex.network.model import Network
from gridflex.network.pandapower_import import (
    SIMBENCH_PROFILE_START,
    from_pandapower,
    load_simbench,
    node_name,
)
from gridflex.powerflow import InverterSettings, simulate
from gridflex.study.simulate import parse_start, shift_profiles, year_offset_h


def _pp_net(code: str):  # type: ignore[no-untyped-def]
    import simbench as sb

    logging.getLogger("pandapower").setLevel(logging.ERROR)
    return sb.get_simbench_net(code)


def test_node_names_follow_the_contract(default_network: Network) -> None:
    names = default_network.node_names
    assert len(names) == 15
    assert all(re.fullmatch(r"[a-z0-9_.\-]+\.1", n) for n in names), names
    assert "lv1.101_bus_1.1" in names
    assert "mv1.101_bus_4.1" in names
    assert node_name("LV1.101 Bus 12") == "lv1.101_bus_12.1"
    assert default_network.kind == "pandapower"
    assert default_network.profile_step_h == 0.25
    # one year of 15-minute SimBench profiles (2016 is a leap year)
    assert {s.npts for s in default_network.loadshapes.values()} == {366 * 96}


def test_embedded_default_agrees_with_pandapower_over_time_steps(
    default_network: Network, default_code: str
) -> None:
    """Four 15-minute steps around a June noon (PV export) against pandapower.runpp."""
    import pandapower as pp
    import simbench as sb

    start = parse_start("2016-06-21T12:00", default_network)
    offset_h = year_offset_h(start, default_network)
    steps = 4
    res = simulate(
        shift_profiles(default_network, offset_h),
        start=start,
        steps=steps,
        step=timedelta(minutes=15),
        controls="static",
        inverter=InverterSettings(volt_watt=False, volt_var=False),
    )
    assert res.converged.all()
    assert res.time[0] == pd.Timestamp("2016-06-21T11:00Z")

    net = _pp_net(default_code)
    profiles = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
    first = int(offset_h / 0.25)
    col = {n: i for i, n in enumerate(res.node_names)}
    bcol = {n: i for i, n in enumerate(res.branch_names)}
    max_dv = 0.0
    for k in range(steps):
        net.load["p_mw"] = profiles[("load", "p_mw")].iloc[first + k].to_numpy()
        net.load["q_mvar"] = profiles[("load", "q_mvar")].iloc[first + k].to_numpy()
        net.sgen["p_mw"] = profiles[("sgen", "p_mw")].iloc[first + k].to_numpy()
        pp.runpp(net, numba=False, tolerance_mva=1e-11)
        for b in net.bus.index:
            v_ref = net.res_bus.at[b, "vm_pu"]
            v_gf = res.v_pu[k, col[node_name(net.bus.at[b, "name"])]]
            max_dv = max(max_dv, abs(v_gf - v_ref))
        for idx in net.line.index:
            name = "line." + net.line.at[idx, "name"].lower().replace(" ", "_")
            assert res.branch_loading_pct[k, bcol[name]] == pytest.approx(
                net.res_line.at[idx, "loading_percent"], abs=1e-4
            )
        trafo = "transformer." + net.trafo.at[0, "name"].lower().replace(" ", "_")
        assert res.branch_loading_pct[k, bcol[trafo]] == pytest.approx(
            net.res_trafo.at[0, "loading_percent"], abs=1e-4
        )
        assert res.source_p_kw[k] == pytest.approx(net.res_ext_grid.at[0, "p_mw"] * 1e3, abs=1e-3)
    assert max_dv < 1e-6
    # the chosen steps really export: PV beats load at the substation
    assert (res.source_p_kw < 0).any()


def test_unknown_code_names_close_matches() -> None:
    with pytest.raises(
        InputError, match=r"unknown SimBench code '1-LV-rural9--0-sw'.*did you mean"
    ):
        load_network("simbench:1-LV-rural9--0-sw")


def test_cache_returns_the_same_network(default_code: str, simbench_cache: Path) -> None:
    a = load_simbench(default_code)
    files = list((simbench_cache / "simbench").glob("*.pickle"))
    assert len(files) == 1
    assert default_code in files[0].name
    b = load_simbench(default_code)
    assert a.node_names == b.node_names
    assert abs(a.y_fixed - b.y_fixed).max() == 0
    files[0].write_bytes(b"not a pickle")  # a damaged cache is re-imported, not an error
    c = load_simbench(default_code)
    assert c.node_names == a.node_names


def test_two_bus_pandapower_network_analytic() -> None:
    """Ext grid - 1 km line - 100 kW load: the one-phase equivalent holds 3x the phase current."""
    import pandapower as pp

    net = pp.create_empty_network(sn_mva=1.0)
    b0 = pp.create_bus(net, vn_kv=0.4, name="Source Bus")
    b1 = pp.create_bus(net, vn_kv=0.4, name="Load Bus")
    pp.create_ext_grid(net, b0, vm_pu=1.0)
    pp.create_line_from_parameters(net, b0, b1, length_km=1.0, r_ohm_per_km=0.1,
                                   x_ohm_per_km=0.0, c_nf_per_km=0.0, max_i_ka=0.2)  # fmt: skip
    pp.create_load(net, b1, p_mw=0.1, q_mvar=0.0, name="L1")
    nw = from_pandapower(net, name="two-bus")
    assert nw.node_names == ["source_bus.1", "load_bus.1"]
    # 3-phase total admittance of the per-phase 0.1 ohm: 3 / 0.1 = 30 S
    y = nw.y_fixed.toarray()
    assert y[1, 1] == pytest.approx(30.0)
    assert y[0, 1] == pytest.approx(-30.0)
    assert nw.branches.rating_normal_a[0] == pytest.approx(600.0)  # 3 x 200 A
    res = simulate(nw, start=SIMBENCH_PROFILE_START, steps=1, controls="off",
                   inverter=InverterSettings(volt_watt=False, volt_var=False))  # fmt: skip
    # analytic: V^2 - V*V0 + P*R = 0 per phase, V0 = 400/sqrt(3), P = 100 kW / 3
    v0 = 400 / np.sqrt(3)
    v = (v0 + np.sqrt(v0**2 - 4 * (1e5 / 3) * 0.1)) / 2
    assert res.v_pu[0, 1] == pytest.approx(v / v0, abs=1e-7)
    i_phase = (1e5 / 3) / v
    assert res.branch_loading_pct[0, 0] == pytest.approx(i_phase / 200 * 100, rel=1e-6)


def test_voltage_controlled_generator_is_refused_by_name() -> None:
    import pandapower as pp

    net = pp.create_empty_network()
    b0 = pp.create_bus(net, vn_kv=20.0)
    pp.create_ext_grid(net, b0)
    pp.create_gen(net, b0, p_mw=1.0, vm_pu=1.0, name="G7")
    with pytest.raises(InputError, match="voltage-controlled generator gen 'G7'"):
        from_pandapower(net)
