"""The factored per-phase power of a run: columns, means, levels and repeats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gridflex.network import load_network
from gridflex.powerflow.injections import build_injectors
from gridflex.powerflow.phase_power import PhasePower, phase_power
from tests.powerflow.test_inverter import RES, SOLAR, _pv_case


def _case(tmp_path: Path, steps: int = 48) -> tuple[PhasePower, np.ndarray, np.ndarray]:
    net = load_network(_pv_case(tmp_path, with_invcontrol=False))
    inj = build_injectors(net)
    power, avail_kw = phase_power(net, inj, np.arange(1.0, steps + 1.0), snapshot=False)
    return power, avail_kw, inj.is_pv


def test_columns_are_kw_times_shape_per_phase_and_pv_is_negative(tmp_path: Path) -> None:
    power, avail_kw, is_pv = _case(tmp_path)
    w, var = power.dense()
    assert w.shape == (power.n, 48)
    res = np.array([float(x) for x in RES.split()] * 2)
    solar = np.array([float(x) for x in SOLAR.split()] * 2)
    # the 400 kW / 100 kvar three-phase load, per phase
    np.testing.assert_allclose(w[~is_pv], np.tile(1000.0 * 400.0 * res / 3.0, (3, 1)), rtol=1e-15)
    np.testing.assert_allclose(var[~is_pv], np.tile(1000.0 * 100.0 * res / 3.0, (3, 1)), rtol=1e-15)
    # the 3 MW PV injects its available power (absorbed power negative)
    np.testing.assert_allclose(avail_kw[0], 3000.0 * solar, rtol=1e-15)
    np.testing.assert_array_equal(w[is_pv], np.tile(-1000.0 * avail_kw[0] / 3.0, (3, 1)))
    assert power.any_generation()


def test_any_subset_of_columns_equals_the_dense_columns_bit_for_bit(tmp_path: Path) -> None:
    power, _, _ = _case(tmp_path)
    w, var = power.dense()
    idx = np.array([47, 3, 3, 20])
    w_k, var_k = power.cols(idx)
    np.testing.assert_array_equal(w_k, w[:, idx])
    np.testing.assert_array_equal(var_k, var[:, idx])
    w_mean, var_mean = power.mean()
    np.testing.assert_allclose(w_mean, w.mean(axis=1), rtol=1e-14)
    np.testing.assert_allclose(var_mean, var.mean(axis=1), rtol=1e-14)
    np.testing.assert_allclose(power.total_w(), w.sum(axis=0), rtol=1e-12, atol=1e-6)


def test_a_daily_shape_repeats_every_day_and_snapshot_is_nominal(tmp_path: Path) -> None:
    power, _, _ = _case(tmp_path, steps=72)
    first = power.first_equal_step()
    # hour by hour (load, solar) pairs; hours 4 and 12 repeat hours 2 and 11 within the day
    pairs = list(zip(RES.split(), SOLAR.split(), strict=True)) * 3
    expect = [pairs.index(p) for p in pairs]
    assert (expect[4], expect[12], expect[30]) == (2, 11, 6)
    np.testing.assert_array_equal(first, expect)
    net = load_network(_pv_case(tmp_path, with_invcontrol=False))
    snap, _ = phase_power(net, build_injectors(net), np.ones(1), snapshot=True)
    w, var = snap.dense()
    load = ~build_injectors(net).is_pv
    np.testing.assert_allclose(w[load, 0], 1000.0 * 400.0 / 3.0, rtol=1e-15)
    np.testing.assert_allclose(var[load, 0], 1000.0 * 100.0 / 3.0, rtol=1e-15)


def test_loads_only_have_no_generation() -> None:
    power = PhasePower.from_dense(np.ones((3, 5)), np.zeros((3, 5)))
    assert not power.any_generation()
    w = np.ones((3, 5))
    w[1, 4] = -0.5
    assert PhasePower.from_dense(w, np.zeros((3, 5))).any_generation()


def test_dense_input_of_mismatched_shapes_is_refused() -> None:
    with pytest.raises(ValueError, match=r"two n x T arrays, got \(3, 5\) and \(3, 4\)"):
        PhasePower.from_dense(np.ones((3, 5)), np.ones((3, 4)))
