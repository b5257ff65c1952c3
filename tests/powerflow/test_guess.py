"""Anchor-spline starts of the frozen-controls year (``powerflow.guess``)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from gridflex.network import load_network
from gridflex.powerflow import timeseries as ts
from gridflex.powerflow.guess import SplineGuess, anchor_steps
from gridflex.powerflow.linsolve import Factor
from gridflex.powerflow.phase_power import PhasePower, phase_power


def test_anchor_steps_cover_ranks_range_and_extremes() -> None:
    rng = np.random.default_rng(1)
    # most hours near the bottom, a few rare peaks: value-spaced anchors must reach them
    level = np.concatenate([rng.uniform(0.0, 1.0, 8000), rng.uniform(9.0, 10.0, 8)])
    rng.shuffle(level)
    got = anchor_steps(level, 64)
    assert got.size <= 64
    assert np.all(np.diff(level[got]) > 0.0)  # sorted, distinct knots
    assert level[got[0]] == level.min()
    assert level[got[-1]] == level.max()
    assert np.count_nonzero(level[got] > 5.0) >= 4  # the rare peaks get knots
    assert np.count_nonzero(level[got] < 1.0) >= 32  # and the busy range its share


def test_anchor_steps_of_equal_levels_and_of_nothing() -> None:
    assert anchor_steps(np.full(10, 3.0), 16).size == 1
    assert anchor_steps(np.zeros(0), 16).size == 0
    assert anchor_steps(np.arange(5.0), 1).size == 0


def test_spline_reproduces_quadratics_exactly() -> None:
    """Bessel slopes are exact for a parabola, and so is the Hermite cubic between knots."""
    knots = np.array([0.0, 0.3, 1.0, 1.7, 4.0])
    a = np.array([1.0 + 2.0j, -3.0 + 0.5j, 0.0 + 0.0j])
    b = np.array([0.5 - 1.0j, 2.0 + 0.0j, -1.0 + 1.0j])
    c = np.array([0.25 + 0.1j, -0.5 - 0.2j, 0.0 + 1.0j])

    def f(x: np.ndarray) -> np.ndarray:
        return a[:, None] + b[:, None] * x[None, :] + c[:, None] * x[None, :] ** 2

    spline = SplineGuess.fit(knots, f(knots))
    x = np.linspace(0.0, 4.0, 97)
    np.testing.assert_allclose(spline.evaluate(x), f(x), rtol=0, atol=1e-12)
    # outside the knots the spline holds its end values (clamped, not extrapolated)
    np.testing.assert_allclose(spline.evaluate(np.array([-1.0, 9.0])), f(np.array([0.0, 4.0])))


def test_spline_rows_and_layouts_give_the_same_curves() -> None:
    rng = np.random.default_rng(3)
    knots = np.sort(rng.uniform(0.0, 5.0, 9))
    v = rng.standard_normal((7, 9)) + 1j * rng.standard_normal((7, 9))
    plain = SplineGuess.fit(knots, v)
    perm = rng.permutation(7)
    moved = SplineGuess.fit(knots, np.asfortranarray(v), perm)  # step-major, rows moved
    x = np.linspace(-1.0, 6.0, 41)
    np.testing.assert_allclose(moved.evaluate(x)[perm], plain.evaluate(x), rtol=0, atol=1e-12)
    np.testing.assert_allclose(plain.evaluate(knots), v, rtol=0, atol=1e-12)  # through the knots


def test_spline_refuses_bad_knots() -> None:
    v = np.ones((2, 3), dtype=complex)
    with pytest.raises(ValueError, match="strictly increasing"):
        SplineGuess.fit(np.array([0.0, 1.0, 1.0]), v)
    with pytest.raises(ValueError, match="two or more knots"):
        SplineGuess.fit(np.array([0.0]), v[:, :1])
    with pytest.raises(ValueError, match="one voltage column each"):
        SplineGuess.fit(np.array([0.0, 1.0]), v)


@pytest.mark.parametrize("steps", [600])
def test_frozen_year_from_anchor_spline_matches_plain_starts(
    feeder_year: Callable[[str, bool], Path], steps: int
) -> None:
    """Same voltages as the fixed point from the no-load start, in far fewer iterations."""
    net = load_network(feeder_year("ieee/123Bus/IEEE123Master.dss", True))
    hours = np.arange(1.0, steps + 1.0)
    inj = ts.build_injectors(net)
    power = phase_power(net, inj, hours, snapshot=False)[0]
    w, var = power.dense()
    prob = ts._build_problem(net, w.mean(axis=1), var.mean(axis=1), 1e-6)
    state = ts.snapshot_state(net, prob)
    fac = prob.factor(state, steps)
    assert isinstance(fac, Factor)
    level = w.sum(axis=0)
    v_nl = ts._no_load(prob, state, steps)
    with ThreadPoolExecutor(2) as pool:
        spline = ts._anchor_spline(prob, state, fac, power, v_nl[:, 0], level, pool, 2)
    assert spline is not None
    # into a step-major buffer, as the frozen year does
    got = ts._solve_from_spline(
        prob, state, fac, w, var, spline, level, np.empty((steps, prob.n), complex).T
    )
    ref = ts._solve_steps(prob, state, w.copy(), var.copy(), v_nl)
    assert got.converged.all()
    assert ref.converged.all()
    assert np.max(np.abs(got.v - ref.v) / prob.vbase_v[:, None]) < 10 * prob.tol_pu
    assert got.iterations.mean() < 1.5
    assert ref.iterations.mean() > 3.0
    # the kernel evaluates the spline as evaluate() does (its rows in the solution order): one
    # iteration from each start (a tolerance nothing fails) gives the same voltages, to the
    # rounding of the two evaluations (fused multiply-adds in the kernel) as one iteration
    # amplifies it: a start moved by 5e-15 pu moves the result by 4e-11 pu here (the source's
    # Thevenin admittance makes Y ill-conditioned). A wrong interval or weight is off by a
    # slope times a knot gap, about 1e-4 pu
    prob.tol_pu = 1e9
    start = spline.evaluate(level)[fac.perm_c]
    same = ts._fixed_point(prob, fac, w.copy(), var.copy(), start, prob.y_nom, 1)
    one = ts._solve_from_spline(
        prob, state, fac, w, var, spline, level, np.empty((prob.n, steps), complex)
    )
    assert np.all(one.iterations == 1)
    assert np.max(np.abs(same.v - one.v) / prob.vbase_v[:, None]) < 1e-9


def test_frozen_year_in_level_order_reports_progress_and_agrees_with_time_order(
    feeder_year: Callable[[str, bool], Path],
) -> None:
    """The threaded frozen run (spline starts, blocks of neighbouring levels) writes every
    step's row where it belongs: same voltages as the one-thread run in time order."""
    import numba as nb

    net = load_network(feeder_year("ieee/123Bus/IEEE123Master.dss", True))
    steps = 1500  # more than two blocks, so the thread pool runs
    calls: list[tuple[int, int]] = []
    threads = nb.get_num_threads()
    if threads < 2:
        pytest.skip("one Numba thread: the threaded frozen path does not run")
    got = ts.simulate(net, steps=steps, controls="off", progress=lambda d, t: calls.append((d, t)))
    nb.set_num_threads(1)
    try:
        ref = ts.simulate(net, steps=steps, controls="off")
    finally:
        nb.set_num_threads(threads)
    assert calls[-1] == (steps, steps)
    assert all(t == steps for _, t in calls)
    assert all(a <= b for (a, _), (b, _) in itertools.pairwise(calls))
    assert got.converged.all()
    assert np.max(np.abs(got.v_pu - ref.v_pu)) < 1e-5
    # (near-zero loadings, e.g. of switches, are solver noise: an absolute 1e-3 % on top)
    np.testing.assert_allclose(got.branch_loading_pct, ref.branch_loading_pct, rtol=1e-4, atol=1e-3)
    assert got.iterations.mean() < ref.iterations.mean()
    # LoadShape1 repeats values: those steps are copies of their first occurrence, exactly
    inj = ts.build_injectors(net)
    power = phase_power(net, inj, np.arange(1.0, steps + 1.0), snapshot=False)[0]
    first = power.first_equal_step()
    dup = np.flatnonzero(first != np.arange(steps))
    assert dup.size > 100
    np.testing.assert_array_equal(got.v_pu[dup], got.v_pu[first[dup]])
    np.testing.assert_array_equal(got.losses_kw[dup], got.losses_kw[first[dup]])


def test_first_equal_step_groups_exactly_equal_load_vectors_only() -> None:
    rng = np.random.default_rng(5)
    w = rng.uniform(1.0, 2.0, (30, 12))
    var = rng.uniform(0.0, 1.0, (30, 12))
    w[:, 7] = w[:, 2]  # a repeat of step 2
    var[:, 7] = var[:, 2]
    w[:, 9] = w[:, 4]
    var[:, 9] = np.nextafter(var[:, 4], 2.0)  # one ulp off in var: not a repeat
    w[:, 11] = w[:, 2]
    var[:, 11] = var[:, 2]
    first = PhasePower.from_dense(w, var).first_equal_step()
    expect = np.arange(12)
    expect[[7, 11]] = 2
    np.testing.assert_array_equal(first, expect)
