"""Branch loading: each terminal against its own rated current (transformer windings differ)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from gridflex.network import load_network
from gridflex.powerflow import simulate
from tests.helpers import require_feeder

pytestmark = pytest.mark.opendss


def test_transformer_loading_uses_each_winding_rating() -> None:
    from dss import DSS

    master = require_feeder("ieee/13Bus/IEEE13Nodeckt.dss")
    net = load_network(master)
    res = simulate(net, start=datetime(2024, 1, 1, tzinfo=UTC), steps=1, controls="off")
    d = DSS.NewContext()
    d.Text.Command = f'compile "{master}"'
    c = d.ActiveCircuit
    c.Solution.Solve()  # snapshot with controls, the same state "off" freezes
    c.SetActiveElement("transformer.sub")
    i = np.asarray(c.ActiveCktElement.Currents)
    mags = np.abs(i[0::2] + 1j * i[1::2])  # 2 terminals x 4 conductors
    norm = c.ActiveCktElement.NormalAmps
    # winding 2 (4.16 kV) carries 115/4.16 times winding 1's rated current
    expected = max(mags[:3].max() / norm, mags[4:7].max() / (norm * 115 / 4.16)) * 100
    got = res.branch_loading_pct[0, res.branch_names.index("transformer.sub")]
    assert got == pytest.approx(expected, rel=1e-4)
    assert got < 100.0  # the 5 MVA substation transformer is not overloaded by 3.5 MW
