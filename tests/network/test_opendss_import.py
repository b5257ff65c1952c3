"""The OpenDSS importer: what it reads, and its errors on bad input (text asserted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gridflex.errors import InputError
from gridflex.network import load_network
from tests.helpers import require_feeder

HEADER = """Clear
New Circuit.t basekv=12.47 pu=1.0 phases=3 bus1=src
"""
FOOTER = """Set VoltageBases=[12.47]
CalcVoltageBases
"""


def _write(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / name
    p.write_text(HEADER + body + FOOTER)
    return p


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "Master.dss"
    with pytest.raises(InputError, match=r"nope/Master\.dss does not exist") as exc:
        load_network(missing)
    assert "master .dss file" in str(exc.value)


def test_syntax_error_names_file_line_and_property(tmp_path: Path) -> None:
    p = _write(tmp_path, "syntax.dss", "New Line.L1 bus1=src bus2=b phases=3 r1=0.5 frobnicate=7\n")
    with pytest.raises(InputError) as exc:
        load_network(p)
    text = str(exc.value)
    assert "could not compile" in text
    assert "frobnicate" in text
    assert "syntax.dss" in text
    assert "line: 3" in text


def test_unknown_loadshape_names_it_and_the_fix(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "shape.dss",
        "New Line.L1 bus1=src bus2=b phases=3 r1=0.5 x1=1\n"
        "New Load.ld bus1=b phases=3 kv=12.47 kw=100 kvar=10 yearly=nosuchshape\n",
    )
    with pytest.raises(InputError) as exc:
        load_network(p)
    text = str(exc.value)
    assert "nosuchshape" in text
    assert "New Loadshape.nosuchshape" in text


def test_island_is_reported_with_its_buses(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "island.dss",
        "New Line.L1 bus1=src bus2=b phases=3 r1=0.5 x1=1\n"
        "New Line.L2 bus1=c bus2=d phases=3 r1=0.5 x1=1\n"
        "New Load.ld bus1=d phases=3 kv=12.47 kw=100 kvar=10\n",
    )
    with pytest.raises(InputError) as exc:
        load_network(p)
    text = str(exc.value)
    assert "not connected to the source" in text
    assert "c, d" in text


def test_ieee13_model_contents() -> None:
    net = load_network(require_feeder("ieee/13Bus/IEEE13Nodeckt.dss"))
    # node names exactly as OpenDSS (YNodeOrder, lower case)
    assert net.node_names[:3] == ["sourcebus.1", "sourcebus.2", "sourcebus.3"]
    assert "671.1" in net.node_names
    assert "611.3" in net.node_names
    assert net.n_nodes == 41
    assert len(net.loads) == 15
    assert set(net.loads.model.tolist()) == {1, 2, 5}
    assert net.regulators.names == ["reg1", "reg2", "reg3"]
    assert np.all(net.regulators.vreg_v == 122.0)
    assert np.all(net.regulators.pt_ratio == 20.0)
    assert net.regulators.r_ldc_v.tolist() == [3.0, 3.0, 3.0]
    assert net.regulators.x_ldc_v.tolist() == [9.0, 9.0, 9.0]
    assert net.capacitors.names == ["capacitor.cap1", "capacitor.cap2"]
    # ratings: line 650632 normamps is OpenDSS's default 400 A unless a linecode sets it
    b = net.branches.index("line.650632")
    assert net.branches.rating_normal_a[b] > 0
    assert net.branches.rating_emerg_a[b] >= net.branches.rating_normal_a[b]
    # delta load 692 (1-phase L-L) uses the L-L voltage as base
    k = net.loads.names.index("692")
    assert net.loads.delta[k]
    assert net.loads.v_base_v[k] == pytest.approx(4160.0)
    # the admittance without loads is symmetric (reciprocal network)
    y = net.y_fixed
    assert abs(y - y.T).max() < 1e-6 * abs(y).max()


def test_regulator_yprim_scales_with_tap() -> None:
    """Yprim at a tap follows the read one: winding-2 conductors scale by tap_read / tap."""
    from dss import DSS

    master = require_feeder("ieee/13Bus/IEEE13Nodeckt.dss")
    net = load_network(master)
    reg = net.regulators
    d = DSS.NewContext()
    d.Text.Command = f'compile "{master}"'
    c = d.ActiveCircuit
    c.Transformers.Name = "reg1"
    c.Transformers.Wdg = 2
    pos = 3
    c.Transformers.Tap = 1.0 + pos * reg.tap_step_pu[0]
    c.Solution.BuildYMatrix(2, False)
    c.SetActiveElement("transformer.reg1")
    flat = np.asarray(c.ActiveCktElement.Yprim)
    y_dss = (flat[0::2] + 1j * flat[1::2]).reshape(4, 4)
    y_ours = reg.y_prim_by_tap[0][pos - reg.tap_min[0]]
    assert np.max(np.abs(y_ours - y_dss)) <= 1e-9 * np.max(np.abs(y_dss))
