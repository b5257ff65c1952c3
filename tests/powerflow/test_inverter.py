"""Volt/watt in the loop: curtailed energy against OpenDSS InvControl on a PV case above 1.06 pu.

Acceptance (issue 2): curtailed energy within 0.5 % of OpenDSS's InvControl VOLTWATT run on the
same case, here over a week of hourly steps with a daily solar shape.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from gridflex.network import load_network
from gridflex.powerflow import InverterSettings, simulate
from gridflex.rules.defaults import seed_volt_watt_curve
from tests.powerflow.opendss_ref import run_opendss

START = datetime(2024, 1, 1, tzinfo=UTC)
SOLAR = "0 0 0 0 0 0.05 0.2 0.4 0.6 0.8 0.93 1 1 0.95 0.85 0.7 0.5 0.3 0.1 0 0 0 0 0"
RES = "0.5 0.45 0.42 0.4 0.42 0.5 0.6 0.7 0.6 0.55 0.5 0.5 0.5 0.5 0.55 0.6 0.7 0.85 1 0.95 0.85 0.75 0.65 0.55"  # noqa: E501


def _pv_case(tmp_path: Path, with_invcontrol: bool) -> Path:
    """A 3 MW PV at the end of a weak 12.47 kV line: midday voltage ~1.08 pu uncurtailed."""
    curve = seed_volt_watt_curve()
    xs = " ".join(str(x) for x in (0.5, *curve.v_pu, 1.5))
    ys = " ".join(str(y / 100) for y in (curve.p_pct[0], *curve.p_pct, curve.p_pct[-1]))
    lines = [
        "Clear",
        "New Circuit.pvvw basekv=12.47 pu=1.04 phases=3 bus1=src",
        "New Line.l1 bus1=src bus2=b phases=3 r1=4 x1=4 r0=4 x0=4 c1=0 c0=0 length=1 units=none",
        f"New Loadshape.solar npts=24 interval=1 mult=[{SOLAR}]",
        f"New Loadshape.res npts=24 interval=1 mult=[{RES}]",
        "New Load.ld bus1=b phases=3 kv=12.47 kw=400 kvar=100 model=1 yearly=res",
        "New PVSystem.pv phases=3 bus1=b kv=12.47 kva=3000 pmpp=3000 irradiance=1 yearly=solar "
        "%cutin=0 %cutout=0",
    ]
    if with_invcontrol:
        lines += [
            f"New XYCurve.vw npts=4 Xarray=[{xs}] Yarray=[{ys}]",
            "New InvControl.ic mode=VOLTWATT voltage_curvex_ref=rated voltwatt_curve=vw "
            "VoltwattYAxis=PMPPPU",
        ]
    lines += ["Set VoltageBases=[12.47]", "CalcVoltageBases"]
    p = tmp_path / ("pv_vw.dss" if with_invcontrol else "pv_plain.dss")
    p.write_text("\n".join(lines) + "\n")
    return p


def test_pv_without_inverter_functions_matches_opendss(tmp_path: Path) -> None:
    master = _pv_case(tmp_path, with_invcontrol=False)
    res = simulate(load_network(master), start=START, steps=48, controls="off")
    ref = run_opendss(master, 48, "off")
    assert np.max(np.abs(res.v_pu - ref.v_pu)) <= 1e-6
    assert res.pv_p_kw[:, 0] == pytest.approx(ref.pv_kw[:, 0], abs=1e-3)
    assert res.v_pu.max() > 1.07  # the case really pushes voltage past the curve's knee
    assert res.e_curtailed_kwh[0] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.opendss
def test_volt_watt_curtailment_within_half_percent_of_invcontrol(tmp_path: Path) -> None:
    steps = 168
    plain = _pv_case(tmp_path, with_invcontrol=False)
    res = simulate(
        load_network(plain),
        start=START,
        steps=steps,
        controls="static",
        inverter=InverterSettings(volt_watt=True),  # the seed curve, 1.06 -> 100 %, 1.10 -> 20 %
    )
    assert res.converged.all()
    ref = run_opendss(_pv_case(tmp_path, with_invcontrol=True), steps, "static")
    e_curt_dss = float(res.pv_available_kw[:, 0].sum() - ref.pv_kw[:, 0].sum())
    e_curt = float(res.e_curtailed_kwh[0])
    assert e_curt_dss > 0.1 * res.pv_available_kw[:, 0].sum()  # substantial curtailment
    assert abs(e_curt - e_curt_dss) <= 0.005 * e_curt_dss
    # curtailment happens only where the voltage is past the knee
    curtailed = res.pv_curtailed_kw[:, 0] > 1.0
    assert np.all(res.v_pu[curtailed].max(axis=1) > 1.06)
