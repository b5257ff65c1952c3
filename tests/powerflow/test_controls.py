"""RegControl sampling: the per-step and the batched sampler agree; the static tap rule."""

from __future__ import annotations

import numpy as np
import pytest

from gridflex.network import load_network
from gridflex.powerflow import controls as ctl
from tests.helpers import require_feeder


@pytest.mark.parametrize(
    "rel",
    [
        "ieee/13Bus/IEEE13Nodeckt.dss",
        "ieee/37Bus/ieee37.dss",
        "ieee/123Bus/IEEE123Master.dss",
        "ieee/8500-Node/Master.dss",
    ],
)
def test_batched_and_scalar_regulator_samplers_agree(rel: str) -> None:
    """Wye and delta (IEEE 37: open-delta) regulators, with line-drop compensation."""
    net = load_network(require_feeder(rel))
    rng = np.random.default_rng(7)
    vb = net.node_base_kv * 1000.0
    phase = np.array([int(n.rsplit(".", 1)[1]) % 3 for n in net.node_names])
    angle = np.array([0.0, -2 * np.pi / 3, 2 * np.pi / 3])[(phase + 2) % 3]
    cols = []
    for _ in range(60):
        mag = vb * rng.uniform(0.92, 1.08, net.n_nodes)
        cols.append(mag * np.exp(1j * (angle + rng.uniform(-0.05, 0.05, net.n_nodes))))
    v = np.stack(cols, axis=1)
    acted = 0
    for r in range(len(net.regulators)):
        tap = int(rng.integers(-16, 17))
        batch = ctl.regulator_pending_batch(net, r, v, tap)
        scalar = [ctl.regulator_pending_taps(net, r, v[:, j], tap) for j in range(v.shape[1])]
        assert batch.tolist() == scalar
        acted += int(np.count_nonzero(batch))
    assert acted > 0  # the random voltages do take regulators out of band
    # every regulator at once (the control iterations' sampler) gives the same taps
    for _ in range(5):
        taps = [int(t) for t in rng.integers(-16, 17, len(net.regulators))]
        for j in range(v.shape[1]):
            expect = [
                ctl.regulator_pending_taps(net, r, v[:, j], taps[r])
                for r in range(len(net.regulators))
            ]
            assert ctl.regulators_pending(net, v[:, j], taps) == expect


def test_static_tap_change_goes_70_percent_at_least_one_tap() -> None:
    """RegControl.pas AtLeastOneTap: trunc(0.7 x pending), at least 1, at most maxtapchange."""
    net = load_network(require_feeder("ieee/13Bus/IEEE13Nodeckt.dss"))
    assert ctl.regulator_tap_after(net, 0, 0, 1) == 1
    assert ctl.regulator_tap_after(net, 0, 0, 5) == 3
    assert ctl.regulator_tap_after(net, 0, 0, -10) == -7
    assert ctl.regulator_tap_after(net, 0, 15, 10) == 16  # clamped at the top tap


@pytest.mark.parametrize(
    "rel",
    ["ieee/123Bus/IEEE123Master.dss", "epri/ckt5/Master_ckt5.dss", "ieee/8500-Node/Master.dss"],
)
def test_all_capacitors_sampler_matches_the_per_capacitor_one(rel: str) -> None:
    """``capacitors_pending`` (compiled measurements) decides as ``capacitor_pending``."""
    net = load_network(require_feeder(rel))
    cap = net.capacitors
    rng = np.random.default_rng(11)
    vb = net.node_base_kv * 1000.0
    phase = np.array([int(n.rsplit(".", 1)[1]) % 3 for n in net.node_names])
    angle = np.array([0.0, -2 * np.pi / 3, 2 * np.pi / 3])[(phase + 2) % 3]
    decided = 0
    for _ in range(40):
        mag = vb * rng.uniform(0.9, 1.1, net.n_nodes)
        v = mag * np.exp(1j * (angle + rng.uniform(-0.3, 0.3, net.n_nodes)))
        steps = [int(rng.integers(0, int(cap.n_steps[c]) + 1)) for c in range(len(cap))]
        expect = [
            ctl.capacitor_pending(net, c, v, steps[c]) if cap.control_type[c] else ctl.NONE
            for c in range(len(cap))
        ]
        assert ctl.capacitors_pending(net, v, steps) == expect
        decided += sum(1 for x in expect if x != ctl.NONE)
    assert decided > 0 or not any(cap.control_type)
