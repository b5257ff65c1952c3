"""The compiled lane kernels against the NumPy statement of the same method.

``fused.fixed_point_lanes`` must give the NumPy fixed point's voltages (to rounding), the same
iteration counts and the same verdicts, including steps that run out of iterations;
``recording.record_block`` must give the loading a dense Yprim product gives.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from gridflex.network import load_network
from gridflex.network.model import Network
from gridflex.powerflow import timeseries as ts
from gridflex.powerflow.injections import phase_currents
from gridflex.powerflow.phase_power import phase_power
from gridflex.powerflow.recording import BranchCurrents, record_block

STEPS = 40  # more than two lane widths, not a multiple of one


def _setup(net: Network) -> tuple[ts._Problem, ts.State, np.ndarray, np.ndarray, np.ndarray]:
    hours = np.arange(1.0, STEPS + 1.0) * 97.0  # spread over the year's shape
    inj = ts.build_injectors(net)
    w, var = phase_power(net, inj, hours, snapshot=False)[0].dense()
    prob = ts._build_problem(net, w.mean(axis=1), var.mean(axis=1), 1e-6)
    state = ts._initial_state(net)
    v0 = ts._no_load(prob, state, STEPS)
    return prob, state, w, var, v0


@pytest.mark.parametrize("rel", ["ieee/13Bus/IEEE13Nodeckt.dss", "ieee/123Bus/IEEE123Master.dss"])
def test_fused_kernel_matches_numpy_iteration(
    feeder_year: Callable[[str, bool], Path], rel: str
) -> None:
    net = load_network(feeder_year(rel, True))
    prob, state, w, var, v0 = _setup(net)
    fac = prob.factor(state)
    ref = ts._fixed_point(prob, fac, w.copy(), var.copy(), v0, prob.y_nom, 60, fused=False)
    got = ts._fixed_point(prob, fac, w.copy(), var.copy(), v0, prob.y_nom, 60, fused=True)
    assert ref.converged.all()
    np.testing.assert_array_equal(got.iterations, ref.iterations)
    np.testing.assert_array_equal(got.converged, ref.converged)
    # the kernel sums the Anderson inner products in another order (and with FMA): its
    # coefficient differs in the last bits, which the remaining iterations damp to far below
    # the tolerance, never up to it
    dv = np.max(np.abs(got.v - ref.v) / prob.vbase_v[:, None])
    assert dv < 1e-2 * prob.tol_pu, dv
    # the answer is a solution: the fixed-point map moves it by less than the tolerance
    again = ts._fixed_point(prob, fac, w.copy(), var.copy(), got.v, prob.y_nom, 1)
    assert np.all(again.max_dv_pu < prob.tol_pu)


def test_a_split_solve_gives_the_numbers_of_one_kernel_call(
    feeder_year: Callable[[str, bool], Path],
) -> None:
    """40 columns run as two halves on two threads: bit for bit the one-call result."""
    import numba as nb

    if nb.get_num_threads() < 2:
        pytest.skip("one Numba thread: solves are never split")
    net = load_network(feeder_year("ieee/123Bus/IEEE123Master.dss", True))
    prob, state, w, var, v0 = _setup(net)
    assert STEPS >= ts._SPLIT_MIN_COLS
    fac = prob.factor(state)
    assert isinstance(fac, ts.Factor)
    one = ts._fixed_point_fused(prob, fac, w, var, v0, prob.y_nom, 60, None, split=False)
    two = ts._fixed_point_fused(prob, fac, w, var, v0, prob.y_nom, 60, None)
    assert one.converged.all()
    np.testing.assert_array_equal(two.v, one.v)
    np.testing.assert_array_equal(two.iterations, one.iterations)
    np.testing.assert_array_equal(two.max_dv_pu, one.max_dv_pu)


def test_fused_kernel_reports_steps_out_of_iterations(
    feeder_year: Callable[[str, bool], Path],
) -> None:
    net = load_network(feeder_year("ieee/123Bus/IEEE123Master.dss", True))
    prob, state, w, var, v0 = _setup(net)
    fac = prob.factor(state)
    ref = ts._fixed_point(prob, fac, w.copy(), var.copy(), v0, prob.y_nom, 2, fused=False)
    got = ts._fixed_point(prob, fac, w.copy(), var.copy(), v0, prob.y_nom, 2, fused=True)
    assert not got.converged.any()
    np.testing.assert_array_equal(got.iterations, np.full(STEPS, 2))
    np.testing.assert_allclose(got.max_dv_pu, ref.max_dv_pu, rtol=1e-6)
    assert np.all(got.max_dv_pu >= prob.tol_pu)
    assert np.all(np.isfinite(got.max_dv_pu))


@pytest.mark.parametrize("mixed_taps", [False, True])
def test_record_block_matches_dense_yprim_products(
    feeder_year: Callable[[str, bool], Path], mixed_taps: bool
) -> None:
    net = load_network(feeder_year("ieee/123Bus/IEEE123Master.dss", True))
    prob, state, w, var, v0 = _setup(net)
    v = ts._fixed_point(prob, prob.factor(state), w, var, v0, prob.y_nom, 60).v
    v[:, 3] = np.nan  # a diverged step: NaN loading, never a silent number
    reg = net.regulators
    taps = np.repeat(np.asarray(state[0], dtype=np.int64)[None, :], STEPS, axis=0)
    if mixed_taps:  # every step at taps of its own: one call, per-step regulator values
        rng = np.random.default_rng(7)
        taps = rng.integers(reg.tap_min, reg.tap_max + 1, size=taps.shape)
    cur = BranchCurrents(net)
    n_br = len(net.branches)
    v_pu = np.zeros((STEPS, net.n_nodes))
    load = np.zeros((STEPS, n_br))
    cols = np.arange(STEPS, dtype=np.int64)[::-1].copy()  # rows written where told
    pv_slot = np.full(prob.inj.n, -1, dtype=np.int64)
    pv_slot[:3] = [0, 1, 2]
    p_load = np.full(STEPS, -1.0)
    p_routed = np.full((3, STEPS), -1.0)
    if mixed_taps:
        uniq, step_var = np.unique(taps, axis=0, return_inverse=True)
        var_re, var_im = cur.variants([tuple(int(x) for x in row) for row in uniq])
        data, reg_off = cur.data, cur.reg_off
        assert np.count_nonzero(reg_off >= 0) == len(reg)
    else:
        data, reg_off = cur.data_for(state[0]), cur.no_reg_off
        var_re = var_im = np.zeros((0, 0))
        step_var = np.zeros(STEPS, dtype=np.int64)
    record_block(
        np.ascontiguousarray(v),
        1.0 / prob.vbase_v,
        cur.ptr,
        cur.idx,
        data,
        cur.row_start,
        cur.rating_normal_a,
        cols,
        v_pu,
        load,
        cur.block_start,
        reg_off,
        var_re,
        var_im,
        np.ascontiguousarray(step_var, dtype=np.int64).ravel(),
        prob.inj.kernel_arrays(),
        w,
        var,
        pv_slot,
        p_load,
        p_routed,
    )
    # injector powers: per block step (not per row in cols), Re(V conj(I)) of the NumPy load
    # models; phases with a slot (as PV phases get) are routed out of the load sum
    inj = prob.inj
    vd = (
        np.vstack([v, np.zeros((1, STEPS))])[np.minimum(inj.a, prob.n)]
        - np.vstack([v, np.zeros((1, STEPS))])[np.minimum(inj.b, prob.n)]
    )
    p_ref = (vd * np.conj(phase_currents(inj, vd, w, var))).real
    ok = np.arange(STEPS) != 3
    np.testing.assert_allclose(p_load[ok], p_ref[3:][:, ok].sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(p_routed[:, ok], p_ref[:3][:, ok], rtol=1e-12)
    assert np.isnan(p_load[3])
    br = net.branches
    reg_branch = {int(b): r for r, b in enumerate(reg.branch_idx)}
    for k in range(n_br):
        refs = br.node_idx[k]
        keep = refs >= 0
        nc, nph = int(br.n_conds[k]), int(br.n_phases[k])
        sel = np.concatenate([np.arange(t * nc, t * nc + nph) for t in range(int(br.n_terms[k]))])
        scale = np.repeat(br.rating_scale(k), nph)[:, None]
        rating = br.rating_normal_a[k]
        expect = np.empty(STEPS)
        groups = [np.arange(STEPS)]  # steps that share this branch's Yprim
        if k in reg_branch:
            pos = taps[:, reg_branch[k]]
            groups = [np.flatnonzero(pos == p) for p in np.unique(pos)]
        for at in groups:
            y = br.y_prim[k]
            if k in reg_branch:
                r = reg_branch[k]
                y = reg.y_prim_by_tap[r][taps[at[0], r] - int(reg.tap_min[r])]
            i_abs = np.abs(y[np.ix_(sel, np.flatnonzero(keep))] @ v[refs[keep]][:, at]) / scale
            expect[at] = i_abs.max(axis=0)
        for c in range(STEPS):
            got = load[cols[c], k]
            if c == 3 or rating <= 0:
                assert np.isnan(got)
            else:
                assert got == pytest.approx(expect[c] / rating * 100.0, rel=1e-9, abs=1e-8)
    np.testing.assert_allclose(v_pu[cols[0]], np.abs(v[:, 0]) / prob.vbase_v, rtol=1e-15)


def test_single_column_solve_and_low_rank_update_match_scipy(
    feeder_year: Callable[[str, bool], Path],
) -> None:
    import scipy.sparse as sp
    import scipy.sparse.linalg as sla

    from gridflex.powerflow.linsolve import LowRankFactor

    net = load_network(feeder_year("ieee/123Bus/IEEE123Master.dss", True))
    prob, state, _, _, _ = _setup(net)
    y0 = prob.y_of(state)
    rng = np.random.default_rng(7)
    b = rng.normal(size=(prob.n, 1)) + 1j * rng.normal(size=(prob.n, 1))
    v_old = rng.normal(size=(prob.n, 1)) + 1j * rng.normal(size=(prob.n, 1))
    inv_vb = 1.0 / prob.vbase_v
    fac = prob.factor(state)
    x, dv = fac.solve_with_change(b, v_old, inv_vb)
    exact = sla.spsolve(sp.csc_matrix(y0), b[:, 0])
    # the source's Thevenin admittance makes Y ill-conditioned (cond ~1e8): compare to scale
    assert np.max(np.abs(x[:, 0] - exact)) < 1e-7 * np.max(np.abs(exact))
    # the same factors through the multi-column kernel: the same numbers
    x2 = fac.solve(np.hstack([b, b]))
    assert np.max(np.abs(x[:, 0] - x2[:, 0])) <= 1e-14 * np.max(np.abs(exact))
    assert dv[0] == pytest.approx(np.max(np.abs(x[:, 0] - v_old[:, 0]) * inv_vb), rel=1e-12)
    # one regulator one tap up: the Woodbury correction gives the new matrix's solution
    taps = list(state[0])
    taps[0] += 1
    new_state: ts.State = (tuple(taps), state[1])
    lr = prob._low_rank(new_state)
    assert isinstance(lr, LowRankFactor)
    x1, dv1 = lr.solve_with_change(b, v_old, inv_vb)
    exact1 = sla.spsolve(sp.csc_matrix(prob.y_of(new_state)), b[:, 0])
    assert np.max(np.abs(x1[:, 0] - exact1)) < 1e-7 * np.max(np.abs(exact1))
    assert np.max(np.abs(exact1 - exact) / np.abs(exact)) > 1e-3  # the tap mattered
    assert dv1[0] == pytest.approx(np.max(np.abs(x1[:, 0] - v_old[:, 0]) * inv_vb), rel=1e-12)


@pytest.mark.parametrize(
    "rel",
    ["ieee/123Bus/IEEE123Master.dss", "ieee/8500-Node/Master.dss", "epri/ckt5/Master_ckt5.dss"],
)
def test_branch_current_rows_are_each_branchs_yprim_product(
    feeder_year: Callable[[str, bool], Path], rel: str
) -> None:
    # the rows are built group by group (branches of one shape and grounding pattern); every
    # branch's rows must still be its own Yprim's phase rows times its terminal voltages, over
    # its rating scale, in branch order (lines, 3-winding service transformers, grounded
    # conductors and regulators on these feeders)
    import scipy.sparse as sp

    net = load_network(feeder_year(rel, False))
    cur = BranchCurrents(net)
    br = net.branches
    rng = np.random.default_rng(3)
    v = rng.normal(size=net.n_nodes) + 1j * rng.normal(size=net.n_nodes)
    rows = sp.csr_matrix((cur.data, cur.idx, cur.ptr), shape=(cur.ptr.size - 1, net.n_nodes)) @ v
    v_ground = np.append(v, 0.0)  # node index -1: ground
    for k in range(len(br)):
        nc, nph = int(br.n_conds[k]), int(br.n_phases[k])
        sel = [t * nc + p for t in range(int(br.n_terms[k])) for p in range(nph)]
        expected = (br.y_prim[k] @ v_ground[br.node_idx[k]])[sel] / np.repeat(
            br.rating_scale(k), nph
        )
        got = rows[cur.row_start[k] : cur.row_start[k + 1]]
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
