"""A two-bus feeder with an analytic answer, and the load models against OpenDSS.

Per phase, a constant-power load ``S = P + jQ`` fed through ``Z = R + jX`` from ``E`` has

    |V|^4 - (E^2 - 2 (R P + X Q)) |V|^2 + |Z|^2 |S|^2 = 0

(the larger root is the operating point); a constant impedance load is a voltage divider.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from gridflex.network import load_network
from gridflex.powerflow import simulate
from tests.powerflow.opendss_ref import run_opendss

START = datetime(2024, 1, 1, tzinfo=UTC)
KV = 12.47
R_OHM, X_OHM = 0.5, 1.0


def _two_bus(tmp_path: Path, load: str) -> Path:
    p = tmp_path / "two_bus.dss"
    p.write_text(
        "Clear\n"
        f"New Circuit.two basekv={KV} pu=1.0 phases=3 bus1=src "
        "r1=1e-7 x1=1e-7 r0=1e-7 x0=1e-7\n"
        f"New Line.l1 bus1=src bus2=b phases=3 r1={R_OHM} x1={X_OHM} r0={R_OHM} x0={X_OHM} "
        "c1=0 c0=0 length=1 units=none\n"
        f"{load}\n"
        f"Set VoltageBases=[{KV}]\nCalcVoltageBases\n"
    )
    return p


def test_constant_power_load_matches_the_quadratic(tmp_path: Path) -> None:
    p_kw, q_kvar = 3000.0, 1000.0
    net = load_network(
        _two_bus(tmp_path, f"New Load.ld bus1=b phases=3 kv={KV} kw={p_kw} kvar={q_kvar} model=1")
    )
    res = simulate(net, start=START, steps=1, controls="off")
    e = KV * 1000 / math.sqrt(3)
    p, q = p_kw * 1000 / 3, q_kvar * 1000 / 3
    b = e**2 - 2 * (R_OHM * p + X_OHM * q)
    v2 = (b + math.sqrt(b**2 - 4 * (R_OHM**2 + X_OHM**2) * (p**2 + q**2))) / 2
    v_expected_pu = math.sqrt(v2) / e
    got = res.v_pu[0, [net.node_index(f"b.{k}") for k in (1, 2, 3)]]
    assert got == pytest.approx(np.full(3, v_expected_pu), abs=1e-6)
    # source power = load + I^2 R losses
    i2 = (p**2 + q**2) / v2
    assert res.source_p_kw[0] == pytest.approx(p_kw + 3 * i2 * R_OHM / 1000, rel=1e-5)
    assert res.source_q_kvar[0] == pytest.approx(q_kvar + 3 * i2 * X_OHM / 1000, rel=1e-5)
    assert res.losses_kw[0] == pytest.approx(3 * i2 * R_OHM / 1000, rel=1e-4)
    # line loading: |I| over OpenDSS's default 400 A normal rating
    k = res.branch_names.index("line.l1")
    assert res.branch_loading_pct[0, k] == pytest.approx(math.sqrt(i2) / 400 * 100, rel=1e-5)


def test_constant_impedance_load_is_a_divider(tmp_path: Path) -> None:
    p_kw, q_kvar = 3000.0, 1000.0
    net = load_network(
        _two_bus(tmp_path, f"New Load.ld bus1=b phases=3 kv={KV} kw={p_kw} kvar={q_kvar} model=2")
    )
    res = simulate(net, start=START, steps=1, controls="off")
    e = KV * 1000 / math.sqrt(3)
    y_load = (p_kw - 1j * q_kvar) * 1000 / 3 / e**2
    z_load = 1 / y_load
    v = abs(e * z_load / (z_load + complex(R_OHM, X_OHM))) / e
    assert res.v_pu[0, net.node_index("b.1")] == pytest.approx(v, abs=1e-6)


@pytest.mark.opendss
@pytest.mark.parametrize("model", [1, 2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize(
    ("kw", "conn"),
    [(3000.0, "wye"), (3000.0, "delta"), (60000.0, "wye"), (120000.0, "delta")],
)
def test_load_models_match_opendss(tmp_path: Path, model: int, kw: float, conn: str) -> None:
    """Every load model, in band and deep in the Vminpu..Vlowpu blend, against OpenDSS."""
    load = (
        f"New Load.ld bus1=b phases=3 kv={KV} kw={kw} kvar={kw / 3} model={model} conn={conn} "
        "cvrwatts=0.8 cvrvars=3\n"
        f"New Load.ld1 bus1=b.2 phases=1 kv={KV / math.sqrt(3):.4f} kw={kw / 10} kvar=0 "
        f"model={model}"
    )
    master = _two_bus(tmp_path, load)
    net = load_network(master)
    res = simulate(net, start=START, steps=1, controls="off", tolerance_pu=1e-9)
    ref = run_opendss(master, 1, "off")
    assert res.converged.all()
    assert np.max(np.abs(res.v_pu - ref.v_pu)) <= 1e-6
