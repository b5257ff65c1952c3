"""The controlled runs' single-step kernel, sparse Woodbury updates and starting voltages.

``single_step.fixed_point_single`` must reach the solution the lane kernel reaches (to the
tolerance), through a plain LU and through a low-rank update of another state's LU; the
sparse Woodbury update must solve the new matrix (against SciPy); the learned starts must be
better starts than the ones they replace, and change nothing but the start.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from gridflex.network import load_network
from gridflex.network.model import Network
from gridflex.powerflow import timeseries as ts
from gridflex.powerflow.injections import PV_MODEL, _current, constant_power_current
from gridflex.powerflow.linsolve import LowRankFactor
from gridflex.powerflow.phase_power import PhasePower, phase_power

STEPS = 12
IEEE123 = "ieee/123Bus/IEEE123Master.dss"


def _setup(net: Network) -> tuple[ts._Problem, ts.State, np.ndarray, np.ndarray, np.ndarray]:
    hours = np.arange(1.0, STEPS + 1.0) * 331.0  # spread over the year's shape
    inj = ts.build_injectors(net)
    w, var = phase_power(net, inj, hours, snapshot=False)[0].dense()
    prob = ts._build_problem(net, w.mean(axis=1), var.mean(axis=1), 1e-6)
    state = ts._initial_state(net)
    return prob, state, w, var, ts._no_load(prob, state, STEPS)


def _moved(state: ts.State) -> ts.State:
    """Two regulators and (if any) a capacitor moved: a multi-device low-rank update."""
    taps = list(state[0])
    taps[0] += 2
    taps[-1] -= 1
    caps = list(state[1])
    if caps:
        caps[0] = 1 - min(caps[0], 1)
    return (tuple(taps), tuple(caps))


def test_sparse_woodbury_solves_the_new_matrix(feeder_year: Callable[[str, bool], Path]) -> None:
    net = load_network(feeder_year(IEEE123, True))
    prob, state, _, _, _ = _setup(net)
    prob.factor(state)  # the anchor
    new = _moved(state)
    lr = prob.factor(new, 1)
    assert isinstance(lr, LowRankFactor)
    assert lr.nodes.size >= 3
    rng = np.random.default_rng(3)
    b = rng.normal(size=(prob.n, 2)) + 1j * rng.normal(size=(prob.n, 2))
    got = lr.solve(b)
    exact = sla.splu(sp.csc_matrix(prob.y_of(new))).solve(b)
    # Y is ill-conditioned (the source's Thevenin admittance): compare to scale
    assert np.max(np.abs(got - exact)) < 1e-7 * np.max(np.abs(exact))
    # the update's columns are sparse: elimination-tree paths, not dense Z columns
    s_ptr = lr.basis.s[0]
    assert s_ptr[-1] < 0.5 * prob.n * lr.basis.nodes.size


def test_single_step_kernel_reaches_the_lane_kernels_solution(
    feeder_year: Callable[[str, bool], Path],
) -> None:
    net = load_network(feeder_year(IEEE123, True))
    prob, state, w, var, v0 = _setup(net)
    for st in (state, _moved(state)):
        full = ts.factorize(prob.y_of(st))
        ref = ts._fixed_point_fused(prob, full, w.copy(), var.copy(), v0, prob.y_nom, 60, None)
        # plain LU of the state, and a low-rank update of the anchor (the initial state's LU)
        prob.factor(state)
        for fac in (full, prob.factor(st, 1)):
            got = ts._fixed_point_single(prob, fac, w.copy(), var.copy(), v0, prob.y_nom, 60, None)
            assert got.converged.all()
            assert ref.converged.all()
            # both stop within the tolerance of the same fixed point
            dv = np.max(np.abs(got.v - ref.v) / prob.vbase_v[:, None])
            assert dv < 20 * prob.tol_pu, dv
            again = ts._fixed_point_single(
                prob, full, w.copy(), var.copy(), got.v, prob.y_nom, 1, None
            )
            assert np.all(again.max_dv_pu < 2 * prob.tol_pu)


def test_learned_responses_start_closer(feeder_year: Callable[[str, bool], Path]) -> None:
    """A device's learned step response moves the start towards the solution of its next
    action (a different load): the re-solve starts closer than from the old voltages."""
    net = load_network(feeder_year(IEEE123, True))
    prob, state, w, var, v0 = _setup(net)
    up = ((state[0][0] + 1, *state[0][1:]), state[1])
    up2 = ((state[0][0] + 2, *state[0][1:]), state[1])
    responses = ts._Responses()

    def solve(st: ts.State, j: int) -> np.ndarray:
        return ts._solve_steps(prob, st, w[:, [j]], var[:, [j]], v0[:, [j]]).v

    responses.learn(solve(state, 0), solve(up, 0), ts._moves(state, up))
    assert responses.per_step  # one device moved: learned
    before, after = solve(up, 5), solve(up2, 5)
    moved = ts._moves(up, up2)
    start = responses.predict(before, moved)
    err_old = np.max(np.abs(before - after) / prob.vbase_v[:, None])
    err_new = np.max(np.abs(start - after) / prob.vbase_v[:, None])
    assert err_new < 0.2 * err_old, (err_new, err_old)
    # two devices at once teach nothing (their responses cannot be told apart)
    fresh = ts._Responses()
    both = ((state[0][0] + 1, state[0][1] + 1, *state[0][2:]), state[1])
    fresh.learn(solve(state, 0), solve(both, 0), ts._moves(state, both))
    assert not fresh.per_step
    # ... unless one of them is known: the other's is what remains
    responses.learn(solve(state, 0), solve(both, 0), ts._moves(state, both))
    assert set(responses.per_step) == {0, 1}
    start2 = responses.predict(solve(state, 5), ts._moves(state, both))
    target2 = solve(both, 5)
    err2_old = np.max(np.abs(solve(state, 5) - target2) / prob.vbase_v[:, None])
    err2_new = np.max(np.abs(start2 - target2) / prob.vbase_v[:, None])
    assert err2_new < 0.2 * err2_old, (err2_new, err2_old)


def test_level_response_shift_reproduces_the_state_solutions(
    feeder_year: Callable[[str, bool], Path],
) -> None:
    net = load_network(feeder_year(IEEE123, True))
    prob, state, w, var, v0 = _setup(net)
    lv = ts._level_response(prob, state, PhasePower.from_dense(w, var))
    assert lv is not None
    exact = ts._solve_steps(prob, state, w.copy(), var.copy(), v0).v
    p = w.sum(axis=0)
    start = lv.shift(exact[:, 0], float(p[0]), p[1:])
    err = np.max(np.abs(start - exact[:, 1:]) / prob.vbase_v[:, None])
    # every step of this run is one of the levels: the shift lands on its solution
    assert err < 1e-5, err
    w_gen = w.copy()
    w_gen[0] = -1.0
    assert ts._level_response(prob, state, PhasePower.from_dense(w_gen, var)) is None


@pytest.mark.parametrize("model", [1, PV_MODEL])
@pytest.mark.parametrize("vmaxpu", [1.05, 0.0])
def test_inline_constant_power_current_is_the_load_model(model: int, vmaxpu: float) -> None:
    """The kernels' inline path (in band and above Vmaxpu) gives ``_current``'s current."""
    vb = 7200.0
    vminpu, vlow_pu = 0.95, 0.5
    v95, v105 = vminpu * vb, (vmaxpu if vmaxpu else 1.05) * vb
    zf = 1.0 / (vb * vb) / (vmaxpu * vmaxpu if vmaxpu else 1.0)
    w, var = (-4000.0, 1500.0) if model == PV_MODEL else (5000.0, 2000.0)
    for v_pu in (0.96, 1.0, 1.049, 1.051, 1.12, 1.3):
        vd = v_pu * vb * np.exp(1j * 0.3)
        v2 = abs(vd) ** 2
        ref = _current(
            vd, model, vb, vlow_pu * vb, v95, v105, vminpu, vmaxpu, 1.0, 2.0, 0.0, w, var
        )
        cr, ci = constant_power_current(vd.real, vd.imag, v2, w, var, v105 * v105, zf)
        assert complex(cr, ci) == pytest.approx(ref, rel=1e-13), v_pu
