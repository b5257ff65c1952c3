"""Time-parallel controlled runs (``timeseries._solve_spans``) give the sequential run's answer.

A controlled run is cut into spans solved on threads at once; each span starts a warm-up before
its first recorded step from the initial control state, and is checked against (and where
needed solved again from) the state the span before it ended in. The answer must be the
sequential one: the same tap and capacitor states in every step, voltages within the solver's
tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import gridflex.powerflow.timeseries as ts
from gridflex.network import load_network
from gridflex.network.model import Network
from gridflex.powerflow.result import TimeSeriesResult

IEEE8500 = "ieee/8500-Node/Master.dss"
STEPS = 240
BOUNDS = [0, 60, 120, 180, 240]


@pytest.fixture
def net8500(feeder_year: Callable[[str, bool], Path]) -> Network:
    return load_network(feeder_year(IEEE8500, True))


def _run(
    net: Network, monkeypatch: pytest.MonkeyPatch, bounds: list[int], warmup_h: float
) -> tuple[TimeSeriesResult, list[list[int]]]:
    """``simulate`` with these span bounds (``[]``: one sequence); the spans solved again."""
    redone: list[list[int]] = []
    solve_spans = ts._solve_spans

    def spy(*args: object, **kwargs: object) -> list[int]:
        out = solve_spans(*args, **kwargs)  # type: ignore[arg-type]
        redone.append(out)
        return out

    with monkeypatch.context() as m:
        m.setattr(ts, "_span_bounds", lambda steps, step_h, workers, nodes: list(bounds))
        m.setattr(ts, "_SPAN_WARMUP_H", warmup_h)
        m.setattr(ts, "_solve_spans", spy)
        res = ts.simulate(net, steps=STEPS, controls="static", max_control_iter=100)
    return res, redone


def _assert_same_run(got: TimeSeriesResult, ref: TimeSeriesResult) -> None:
    assert got.converged.all()
    assert ref.converged.all()
    np.testing.assert_array_equal(got.regulator_taps, ref.regulator_taps)
    np.testing.assert_array_equal(got.capacitor_states, ref.capacitor_states)
    # both converge to 1e-6 pu from different starts (each thread learns its own responses)
    dv = np.nanmax(np.abs(got.v_pu.astype(float) - ref.v_pu.astype(float)))
    assert dv < 1e-5, dv
    assert np.all(got.iterations > 0)  # every step was solved and recorded


def test_spans_give_the_sequential_runs_states(
    net8500: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref, none = _run(net8500, monkeypatch, [], 12.0)
    assert none == []  # no spans: the sequential path
    acted = np.any(np.diff(ref.regulator_taps, axis=0) != 0, axis=1).sum()
    assert acted > 20  # the regulators act often: span starts matter
    got, redone = _run(net8500, monkeypatch, BOUNDS, 12.0)
    assert len(redone) == 1  # the spans ran
    _assert_same_run(got, ref)


def test_a_span_whose_warmup_did_not_meet_is_solved_again(
    net8500: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-step warm-up from the initial taps ends in another state than the span before:
    the steps from the boundary are solved again until both runs' states meet."""
    ref, _ = _run(net8500, monkeypatch, [], 12.0)
    got, redone = _run(net8500, monkeypatch, BOUNDS, 1.0)
    assert len(redone) == 1
    assert redone[0], "expected at least one span to be solved again"
    assert set(redone[0]) <= set(BOUNDS[1:-1])
    _assert_same_run(got, ref)


def test_state_trails_meet_on_state_and_live_capacitor_memory(net8500: Network) -> None:
    net = net8500
    state = ts._initial_state(net)
    moved = ((state[0][0] + 1, *state[0][1:]), state[1])
    never = np.full(len(net.capacitors), -np.inf)
    dead = np.full(len(net.capacitors), 300.0)
    b = ts._StateTrail.empty(5)
    b.set(np.arange(5, 15), moved, never)
    b.set(np.arange(15, 20), state, never)
    a = ts._StateTrail.empty(10)
    a.set(np.arange(10, 20), state, never)
    assert a.meets(b, np.arange(10, 20), 3600.0, dead) == 15
    got, opened_then = a.state_at(12)
    assert got == state
    assert np.all(opened_then == never)
    # a capacitor opened within the dead time of the step after 16: the memories differ
    c = ts._StateTrail.empty(10)
    opened = never.copy()
    opened[0] = 16 * 3600.0 + 3500.0
    c.set(np.arange(10, 20), state, opened)
    assert c.meets(b, np.arange(15, 17), 3600.0, dead) == -1
    assert c.meets(b, np.arange(15, 20), 3600.0, dead) == 17  # past the dead time
    # an opening the next step is past the dead time of counts as no memory
    d = ts._StateTrail.empty(10)
    opened[0] = 16 * 3600.0 - 7200.0
    d.set(np.arange(10, 20), state, opened)
    assert d.meets(b, np.arange(16, 20), 3600.0, dead) == 16
    # steps are set in order, without gaps
    with pytest.raises(ValueError, match="does not follow"):
        d.set(np.arange(25, 27), state, never)
    d.cut(13)
    assert d.end == 13
    assert d.meets(b, np.arange(15, 20), 3600.0, dead) == -1  # nothing left to meet there


def test_span_bounds() -> None:
    assert ts._span_bounds(8760, 1.0, 1, 8531) == []  # one worker: one sequence
    assert ts._span_bounds(600, 1.0, 2, 8531) == []  # too short for spans worth a 48 h warm-up
    assert ts._span_bounds(8760, 1.0, 2, 280) == []  # a small feeder: mostly Python per step
    bounds = ts._span_bounds(8760, 1.0, 2, 8531)
    assert bounds[0] == 0
    assert bounds[-1] == 8760
    assert len(bounds) - 1 == 2 * ts._SPANS_PER_WORKER
    assert min(np.diff(bounds)) >= ts._SPAN_MIN_WARMUPS * 48
    # 15-minute steps: the warm-up is 48 hours of them
    assert ts._warmup_steps(0.25) == 192
