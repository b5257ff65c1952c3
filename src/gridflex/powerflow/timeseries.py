"""The batched time-series solver (see :func:`simulate`).

Method
------
The network equation is ``Y(s) V = I_src - C i(V)``: ``Y(s)`` the admittance of the network for
control state ``s`` (regulator taps, capacitor steps), ``I_src`` the source's Norton current,
``C`` the load/PV incidence and ``i(V)`` the phase currents of the load models. As OpenDSS
does, the nominal load admittance ``Y_nom`` is moved to the left-hand side, and the
fixed-point (current-injection) iteration

    ``(Y(s) + Y_nom) V_{k+1} = I_src - C (i(V_k) - y_nom V_k)``

is run with *all time steps of a chunk as right-hand sides of one sparse LU factorisation*.
Factorisations are cached per control state. Steps that do not converge within the iteration
limit are retried with the load admittance re-linearised at the step's own operating point
(a per-step refactorisation, a chord-Newton variant); a step that still fails is reported in
``TimeSeriesResult.failures`` with its time and cause and flagged ``converged=False``.

Controls (``controls="static"``) follow OpenDSS ``controlmode=static``: a step is solved with
the state left by the previous step; if any RegControl/CapControl wants to act, the step runs
OpenDSS's control iterations (sample, execute the actions with the smallest delay, re-solve)
and the following steps continue from the new state. ``controls="off"`` freezes the state a
snapshot solve (nominal load, no shapes) leaves with controls on.

Time convention: step ``k`` (0-based) starts at ``start + k * step`` and uses the load-shape
value OpenDSS uses for its ``k + 1``-th yearly solution (``hour = (k + 1) * step_h``), so
hourly step 0 is the first point of an hourly shape.

References
----------
.. [1] R. C. Dugan, "OpenDSS circuit solution technique", EPRI (fixed-point current
   injection with the nominal load admittance in the system matrix).
.. [2] dss-extensions/dss_capi ``Solution.pas`` (``SolveSnap`` control loop,
   ``MaxControlIterations`` default 10) and ``ControlQueue.pas`` (``DoNearestActions``).
.. [3] H. F. Walker and P. Ni, "Anderson acceleration for fixed-point iterations", SIAM J.
   Numer. Anal. 49(4), 2011, doi:10.1137/10078356X.
"""

from __future__ import annotations

import threading
import time as _time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import numba as nb
import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from gridflex.errors import InputError
from gridflex.network.model import Network
from gridflex.powerflow import controls as ctl
from gridflex.powerflow.accel import anderson_step
from gridflex.powerflow.fused import NO_SPLINE, fixed_point_lanes
from gridflex.powerflow.guess import SplineGuess, anchor_steps
from gridflex.powerflow.injections import (
    Injectors,
    build_injectors,
    injection_rhs_for,
    phase_currents,
)
from gridflex.powerflow.inverter import InverterSettings
from gridflex.powerflow.linsolve import (
    NO_UPDATE,
    Factor,
    LowRankFactor,
    WoodburyBasis,
    factorize,
)
from gridflex.powerflow.memory import result_array
from gridflex.powerflow.phase_power import PhasePower, phase_power
from gridflex.powerflow.recording import BranchCurrents, record_block
from gridflex.powerflow.result import StepFailure, TimeSeriesResult
from gridflex.powerflow.runtime import heavy_section
from gridflex.powerflow.single_step import fixed_point_single, kernel_setup

ComplexArray = npt.NDArray[np.complex128]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: working set per chunk of steps (bytes): chunk = budget / (16 B x nodes x 8 arrays). Small
#: chunks that stay in cache beat large ones by 3x on the 8500-node feeder (memory-bound sweeps)
#: in the NumPy statement of the iteration (inverter functions, low-rank updates)
_CHUNK_BUDGET_BYTES = 16.0e6
#: steps per task of the frozen-controls thread pool: the lane kernel's working set does not
#: grow with it (16 steps in flight), so a task only needs to amortise its Python around it
_FROZEN_CHUNK = 256
#: anchor steps solved first for the frozen-controls starts (powerflow.guess): mean iterations
#: per step on the 8500-node feeder 5.9 -> 2.9 (16 anchors), 1.6 (64), 1.3 (128), 1.1 (256)
_ANCHORS = 256
#: anchors solved from the mean-load solution to start the others
_COARSE_ANCHORS = 16
#: Anderson mixing for steps started from the anchor spline (most converge in one iteration,
#: where mixing only costs memory traffic)
_SPLINE_ANDERSON = False
_MAX_ITER = 60
_FALLBACK_ITER = 60
_CACHE_SIZE = 64
#: control-iteration solves up to this many steps use low-rank updates of the anchor LU
_LOW_RANK_MAX_COLS = 8
#: ... and up to this many changed nodes: the sparse update costs a few hundred multiply-adds
#: per node and iteration, a new anchor LU ~15 ms (factorisation and basis). At 24, 91 of
#: 2,000 controlled 8500-node hours re-anchored; at 64 (all 36 controlled nodes) none, and the
#: run took 10-14 % less CPU (10.0-10.9 vs 11.6-12.7 s), iterations and taps unchanged
_LOW_RANK_MAX_NODES = 64
#: tolerance of the re-solves between control actions (final state: the full tolerance)
_CONTROL_ITER_TOL_PU = 1e-5
#: load levels of the controlled runs' load response (see _LevelResponse)
_RESPONSE_LEVELS = 17
#: solves of up to this many steps on a plain LU run one step at a time in the single-step
#: kernel (the lane kernel does 16 steps' work for any number up to 16)
_SINGLE_MAX_COLS = 4
#: solves of this many columns or more run as two halves on two threads (the windows between
#: control actions of a controlled run in one sequence; the frozen year and the spans of a
#: controlled one have threads of their own): one full lane group each
_SPLIT_MIN_COLS = 2 * 16
_SPLIT_POOL: list[ThreadPoolExecutor] = []

State = tuple[tuple[int, ...], tuple[int, ...]]


def _split_pool() -> ThreadPoolExecutor:
    """The one extra thread that solves the second half of a split solve."""
    if not _SPLIT_POOL:
        _SPLIT_POOL.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridflex-half"))
    return _SPLIT_POOL[0]


@dataclass
class _Problem:
    net: Network
    inj: Injectors
    n: int
    vbase_v: FloatArray  # (N,) L-N base volts
    i_src: ComplexArray
    y_base: sp.csc_matrix  # y_fixed + C diag(y_nom) C^T
    y_nom: ComplexArray  # (n_inj,)
    reg_rc: list[tuple[IntArray, IntArray, ComplexArray]]  # rows, cols, vals by position
    cap_rc: list[tuple[IntArray, IntArray, ComplexArray]]
    tol_pu: float
    cache: OrderedDict[State, Factor]
    anchor: tuple[State, Factor] | None = None
    #: sparse Woodbury columns at every controlled device's nodes for the anchor LU (dropped
    #: with it)
    basis: WoodburyBasis | None = None
    #: low-rank updates of the present anchor per control state (dropped with the anchor)
    lr_cache: dict[State, LowRankFactor] = field(default_factory=dict)
    #: fixed-point iterations of every solve so far (all columns; for measurements)
    fp_iterations: int = 0
    #: 1 / vbase_v and the source current as the kernels take them (made once)
    inv_vb: FloatArray = field(init=False, repr=False)
    i_src_c: ComplexArray = field(init=False, repr=False)
    #: learned voltage responses to control actions (the control iterations' starts)
    responses: _Responses = field(default_factory=lambda: _Responses())
    #: no-load voltages per control state (the initial guesses' anchor), LRU like ``cache``
    v_nl: OrderedDict[State, ComplexArray] = field(default_factory=OrderedDict)
    #: basis positions of each controlled device's nodes (see _device_cols)
    dev_cols: list[IntArray] | None = None
    #: whether two controlled devices share a node (their Yprim changes then add up)
    shared_nodes: bool = True
    #: Yprim block changes per (device, old position, new position): built once
    delta_memo: dict[tuple[int, int, int], ComplexArray] = field(default_factory=dict)
    #: Yprim block (non-ground nodes, matrix) per (device, position): built once
    block_memo: dict[tuple[int, int], tuple[IntArray, ComplexArray]] = field(default_factory=dict)
    #: whether large batches may be split onto the extra thread (:func:`_fixed_point_fused`)
    split: bool = True

    def __post_init__(self) -> None:
        self.inv_vb = np.ascontiguousarray(1.0 / self.vbase_v, dtype=np.float64)
        self.i_src_c = np.ascontiguousarray(self.i_src, dtype=np.complex128)

    def fresh(self) -> _Problem:
        """The same problem with caches and learned responses of its own, for another thread
        (its batches are not split onto the one extra thread of :func:`_split_pool`)."""
        return _Problem(
            net=self.net,
            inj=self.inj,
            n=self.n,
            vbase_v=self.vbase_v,
            i_src=self.i_src,
            y_base=self.y_base,
            y_nom=self.y_nom,
            reg_rc=self.reg_rc,
            cap_rc=self.cap_rc,
            tol_pu=self.tol_pu,
            cache=OrderedDict(),
            split=False,
        )

    def factor(self, state: State, ncols: int = 1 << 30) -> Factor | LowRankFactor:
        """A solver for ``Y(state)``: a cached LU, or a low-rank update of the anchor LU.

        Batches of many steps get their own LU (it pays for itself); the single-step solves of
        control iterations reuse the anchor's LU with a Woodbury correction, so a tap change
        costs no factorisation.
        """
        f = self.cache.get(state)
        if f is not None:
            self.cache.move_to_end(state)
            return f
        if ncols <= _LOW_RANK_MAX_COLS and self.anchor is not None:
            lr = self.lr_cache.get(state)
            if lr is None:
                lr = self._low_rank(state)
                if lr is not None:
                    if len(self.lr_cache) >= 4 * _CACHE_SIZE:
                        self.lr_cache.clear()
                    self.lr_cache[state] = lr
            if lr is not None:
                return lr
        f = factorize(self.y_of(state))
        self.cache[state] = f
        if len(self.cache) > _CACHE_SIZE:
            self.cache.popitem(last=False)
        self.anchor = (state, f)
        self.basis = None
        self.lr_cache = {}
        return f

    def _low_rank(self, state: State) -> LowRankFactor | None:
        assert self.anchor is not None
        s0, f0 = self.anchor
        flat_new = (*state[0], *state[1])
        flat_old = (*s0[0], *s0[1])
        changed = [i for i, (a, b) in enumerate(zip(flat_new, flat_old, strict=True)) if a != b]
        if not changed:
            return None
        if self.basis is None:
            # every controlled node at once (once per anchor): a state's update then takes
            # its columns from here, no solve or copy per state
            self.basis = WoodburyBasis(f0, self._controlled_nodes())
        dev_cols = self._device_cols()
        parts = [dev_cols[i] for i in changed]
        cols = np.concatenate(parts)
        if cols.size > _LOW_RANK_MAX_NODES and not self.shared_nodes:
            return None
        if not self.shared_nodes:
            # devices own their nodes (checked once): D is block diagonal, one slice each
            d = np.zeros((cols.size, cols.size), dtype=np.complex128)
            o = 0
            for i, p in zip(changed, parts, strict=True):
                d[o : o + p.size, o : o + p.size] = self._delta_block(i, flat_old[i], flat_new[i])
                o += p.size
        else:  # devices sharing a node: their changes add up at it
            cols, inv = np.unique(cols, return_inverse=True)
            if cols.size > _LOW_RANK_MAX_NODES:
                return None
            ends = np.cumsum([p.size for p in parts])
            d = np.zeros((cols.size, cols.size), dtype=np.complex128)
            for i, p, e in zip(changed, parts, ends, strict=True):
                li = inv[e - p.size : e]
                d[li[:, None], li] += self._delta_block(i, flat_old[i], flat_new[i])
        return LowRankFactor(f0, self.basis.nodes[cols], d, basis=self.basis, cols=cols)

    def _device_cols(self) -> list[IntArray]:
        """Per controlled device (regulators, then capacitors): the basis positions of its
        non-ground nodes, in the order of its Yprim block's rows."""
        if self.dev_cols is None:
            basis_nodes = self._controlled_nodes()
            refs = [*self.net.regulators.node_idx, *self.net.capacitors.node_idx]
            self.dev_cols = [
                np.searchsorted(basis_nodes, np.asarray(r, dtype=np.int64)[np.asarray(r) >= 0])
                for r in refs
            ]
            every = np.concatenate(self.dev_cols) if self.dev_cols else np.zeros(0, np.int64)
            self.shared_nodes = np.unique(every).size < every.size
        return self.dev_cols

    def _delta_block(self, device: int, old: int, new: int) -> ComplexArray:
        """Yprim block (non-ground nodes) of ``device`` at position ``new`` minus at ``old``."""
        key = (device, old, new)
        blk = self.delta_memo.get(key)
        if blk is None:
            blk = self._block(device, new)[1] - self._block(device, old)[1]
            self.delta_memo[key] = blk
        return blk

    def _block(self, device: int, position: int) -> tuple[IntArray, ComplexArray]:
        """Non-ground nodes and Yprim block of one device (regulators first) at a position."""
        blk = self.block_memo.get((device, position))
        if blk is None:
            n_reg = len(self.net.regulators)
            if device < n_reg:
                reg = self.net.regulators
                refs = reg.node_idx[device]
                y = reg.y_prim_by_tap[device][position - int(reg.tap_min[device])]
            else:
                cap = self.net.capacitors
                refs = cap.node_idx[device - n_reg]
                y = cap.y_prim_by_steps[device - n_reg][position]
            keep = refs >= 0
            blk = self.block_memo[(device, position)] = (refs[keep], y[np.ix_(keep, keep)])
        return blk

    def _controlled_nodes(self) -> IntArray:
        """Non-ground nodes of every regulator and capacitor (the low-rank updates' nodes)."""
        refs = [*self.net.regulators.node_idx, *self.net.capacitors.node_idx]
        if not refs:
            return np.zeros(0, dtype=np.int64)
        allr = np.concatenate([np.asarray(r, dtype=np.int64) for r in refs])
        return np.unique(allr[allr >= 0])

    def y_of(self, state: State, extra: sp.spmatrix | None = None) -> sp.csc_matrix:
        taps, caps = state
        rows: list[IntArray] = []
        cols: list[IntArray] = []
        vals: list[ComplexArray] = []
        reg = self.net.regulators
        for r, pos in enumerate(taps):
            rr, cc, vv = self.reg_rc[r]
            rows.append(rr)
            cols.append(cc)
            vals.append(vv[pos - int(reg.tap_min[r])])
        for c, k in enumerate(caps):
            rr, cc, vv = self.cap_rc[c]
            rows.append(rr)
            cols.append(cc)
            vals.append(vv[k])
        y = self.y_base
        if rows:
            y = (
                y
                + sp.coo_matrix(
                    (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                    shape=(self.n, self.n),
                ).tocsc()
            )
        if extra is not None:
            y = y + sp.csc_matrix(extra)
        return sp.csc_matrix(y)


def _triplets(refs: IntArray, ys: ComplexArray) -> tuple[IntArray, IntArray, ComplexArray]:
    keep = refs >= 0
    r = refs[keep]
    rr, cc = np.meshgrid(r, r, indexing="ij")
    vals = ys[:, keep][:, :, keep].reshape(ys.shape[0], -1)
    return rr.ravel(), cc.ravel(), vals


def _build_problem(
    net: Network, w_mean: FloatArray, var_mean: FloatArray, tol_pu: float
) -> _Problem:
    inj = build_injectors(net)
    n = net.n_nodes
    vb = inj.v_base_v
    y_nom = np.where(inj.is_pv, 0.0, (w_mean - 1j * var_mean) / vb**2).astype(complex)
    c = inj.incidence
    y_base = (net.y_fixed + (c @ sp.diags(y_nom) @ c.T)).tocsc()
    reg_rc = [
        _triplets(net.regulators.node_idx[r], net.regulators.y_prim_by_tap[r])
        for r in range(len(net.regulators))
    ]
    cap_rc = [
        _triplets(net.capacitors.node_idx[k], net.capacitors.y_prim_by_steps[k])
        for k in range(len(net.capacitors))
    ]
    return _Problem(
        net=net,
        inj=inj,
        n=n,
        vbase_v=net.node_base_kv * 1000.0,
        i_src=net.source.i_inj_a,
        y_base=y_base,
        y_nom=y_nom,
        reg_rc=reg_rc,
        cap_rc=cap_rc,
        tol_pu=tol_pu,
        cache=OrderedDict(),
    )


def _vd(prob: _Problem, v: ComplexArray) -> ComplexArray:
    vx = np.vstack([v, np.zeros((1, v.shape[1]), dtype=complex)])
    return vx[prob.inj.a] - vx[prob.inj.b]


@dataclass
class _Solved:
    v: ComplexArray
    iterations: IntArray
    converged: npt.NDArray[np.bool_]
    max_dv_pu: FloatArray


def _fixed_point(
    prob: _Problem,
    fac: Factor | LowRankFactor,
    w: FloatArray,
    var: FloatArray,
    v0: ComplexArray,
    y_nom: ComplexArray,
    max_iter: int,
    pv: _PVState | None = None,
    tol_pu: float | None = None,
    fused: bool = True,
) -> _Solved:
    """Fixed-point iteration on all columns at once; converged columns drop out.

    Without inverter functions and with a plain LU, the same iteration runs in one compiled
    kernel (:mod:`gridflex.powerflow.fused`; ``fused=False`` forces this NumPy statement of it).

    With inverter functions (``pv``), each iteration also moves every PV system's active and
    reactive power half-way to its volt/watt / volt/var target at the present voltage (damped
    so the voltage-power loop contracts), and a column converges only when both settle.
    """
    if fused and pv is None:
        if isinstance(fac, LowRankFactor) or v0.shape[1] <= _SINGLE_MAX_COLS:
            out = _fixed_point_single(prob, fac, w, var, v0, y_nom, max_iter, tol_pu)
        else:
            out = _fixed_point_fused(prob, fac, w, var, v0, y_nom, max_iter, tol_pu)
        prob.fp_iterations += int(out.iterations.sum())
        return out
    v = np.array(v0, dtype=complex, copy=True)
    k = v.shape[1]
    iters = np.zeros(k, dtype=np.int64)
    conv = np.zeros(k, dtype=bool)
    last_dv = np.full(k, np.inf)
    act = np.arange(k)
    inv_vb = 1.0 / prob.vbase_v
    # Anderson acceleration, depth 1, with a *real* mixing coefficient: the load currents depend
    # on conj(V), so the error map is real-linear, not complex-linear [3]_.
    g_prev = np.zeros_like(v)
    f_prev = np.zeros_like(v)
    have_prev = np.zeros(k, dtype=bool)
    accelerate = pv is None
    for it in range(1, max_iter + 1):
        full = act.size == k
        va = v if full else v[:, act]
        dp = pv.update(prob, _vd(prob, va), w, var, act) if pv is not None else None
        wa = w if full else w[:, act]
        vara = var if full else var[:, act]
        rhs = injection_rhs_for(prob.inj, va, wa, vara, y_nom, prob.i_src)
        g, dv = fac.solve_with_change(rhs, va, inv_vb)
        bad = ~np.isfinite(dv)
        dv[bad] = np.inf
        iters[act] = it
        last_dv[act] = dv if dp is None else np.maximum(dv, dp)
        tol = prob.tol_pu if tol_pu is None else tol_pu
        done = dv < tol
        if dp is not None:
            done &= dp < tol
        if accelerate:
            if full:
                nxt = anderson_step(va, g, g_prev, f_prev, have_prev, done, inv_vb)
            else:
                gp = np.ascontiguousarray(g_prev[:, act])
                fp = np.ascontiguousarray(f_prev[:, act])
                nxt = anderson_step(va, g, gp, fp, have_prev[act], done, inv_vb)
                g_prev[:, act] = gp
                f_prev[:, act] = fp
            have_prev[act] = True
        else:
            nxt = g
        if full:
            v = nxt
        else:
            v[:, act] = nxt
        conv[act[done]] = True
        act = act[~done & ~bad]
        if act.size == 0:
            break
    prob.fp_iterations += int(iters.sum())
    return _Solved(v=v, iterations=iters, converged=conv, max_dv_pu=last_dv)


def _kernel_inputs(
    prob: _Problem, w: FloatArray, var: FloatArray, y_nom: ComplexArray
) -> tuple[FloatArray, FloatArray, ComplexArray, ComplexArray, FloatArray]:
    """W, var, nominal load admittances, source current and 1/Vbase, as every fixed-point
    kernel takes them after the factor's and the injectors' arrays (contiguous, typed)."""
    return (
        np.ascontiguousarray(w, dtype=np.float64),
        np.ascontiguousarray(var, dtype=np.float64),
        np.ascontiguousarray(y_nom, dtype=np.complex128),
        prob.i_src_c,
        prob.inv_vb,
    )


def _fixed_point_single(
    prob: _Problem,
    fac: Factor | LowRankFactor,
    w: FloatArray,
    var: FloatArray,
    v0: ComplexArray,
    y_nom: ComplexArray,
    max_iter: int,
    tol_pu: float | None,
) -> _Solved:
    """:func:`_fixed_point` without inverter functions, one step after the other in one
    compiled kernel (:mod:`gridflex.powerflow.single_step`), through a plain or low-rank LU."""
    k = v0.shape[1]
    inj = prob.inj
    if isinstance(fac, LowRankFactor):
        base = fac.base
        update = fac.update_arrays()
    else:
        base = fac
        update = NO_UPDATE
    v = np.empty((prob.n, k), dtype=np.complex128)
    iters = np.zeros(k, dtype=np.int64)
    conv = np.zeros(k, dtype=bool)
    last_dv = np.full(k, np.inf)
    fixed_point_single(
        *base.single_arrays(),
        *inj.kernel_arrays(),
        *_kernel_inputs(prob, w, var, y_nom),
        np.ascontiguousarray(v0, dtype=np.complex128),
        float(prob.tol_pu if tol_pu is None else tol_pu),
        int(max_iter),
        True,
        *_single_setup(prob, base),
        *update,
        v,
        iters,
        conv,
        last_dv,
    )
    return _Solved(v=v, iterations=iters, converged=conv, max_dv_pu=last_dv)


_Setup = tuple[
    IntArray,
    IntArray,
    IntArray,
    IntArray,
    npt.NDArray[np.bool_],
    FloatArray,
    FloatArray,
    FloatArray,
    FloatArray,
    FloatArray,
    FloatArray,
]


def _single_setup(prob: _Problem, base: Factor) -> _Setup:
    """:func:`single_step.kernel_setup` for ``base``, made once per factor (read-only, so the
    worker threads may share it): it cost a pass over the injectors and nodes per call."""
    got = base.memo.get("single_setup")
    if got is None or got[0] is not prob:
        inj = prob.inj
        got = (
            prob,
            kernel_setup(
                base.perm_r,
                base.perm_c,
                inj.a,
                inj.b,
                inj.model,
                inj.v_low_v,
                inj.v_min_v,
                inj.v_max_v,
                inj.v_base_v,
                inj.vmaxpu,
                prob.i_src_c,
                prob.inv_vb,
            ),
        )
        base.memo["single_setup"] = got
    out: _Setup = got[1]
    return out


def _fixed_point_fused(
    prob: _Problem,
    fac: Factor,
    w: FloatArray,
    var: FloatArray,
    v0: ComplexArray,
    y_nom: ComplexArray,
    max_iter: int,
    tol_pu: float | None,
    split: bool = True,
) -> _Solved:
    """:func:`_fixed_point` without inverter functions, in one compiled kernel (``fused``).

    With ``split``, :data:`_SPLIT_MIN_COLS` columns or more are solved as two halves on two
    threads (the kernel releases the GIL; columns are independent, so the numbers are the
    same); the halves never split again (the extra thread would wait on itself), nor do the
    solves of a problem that runs on a thread of its own (``prob.split``: the spans of
    :func:`_solve_spans` already keep the cores busy).
    """
    k = v0.shape[1]
    if split and prob.split and k >= _SPLIT_MIN_COLS and nb.get_num_threads() > 1:
        h = k // 2
        half = _split_pool().submit(
            _fixed_point_fused, prob, fac, w[:, h:], var[:, h:], v0[:, h:], y_nom, max_iter,
            tol_pu, False,
        )  # fmt: skip
        first = _fixed_point_fused(
            prob, fac, w[:, :h], var[:, :h], v0[:, :h], y_nom, max_iter, tol_pu, False
        )
        second = half.result()
        return _Solved(
            v=np.hstack([first.v, second.v]),
            iterations=np.concatenate([first.iterations, second.iterations]),
            converged=np.concatenate([first.converged, second.converged]),
            max_dv_pu=np.concatenate([first.max_dv_pu, second.max_dv_pu]),
        )
    inj = prob.inj
    v = np.empty((prob.n, k), dtype=np.complex128)
    iters = np.zeros(k, dtype=np.int64)
    conv = np.zeros(k, dtype=bool)
    last_dv = np.full(k, np.inf)
    fixed_point_lanes(
        *fac.arrays(),
        *inj.kernel_arrays(),
        *_kernel_inputs(prob, w, var, y_nom),
        np.ascontiguousarray(v0, dtype=np.complex128),
        *NO_SPLINE,
        float(prob.tol_pu if tol_pu is None else tol_pu),
        int(max_iter),
        True,
        v,
        iters,
        conv,
        last_dv,
    )
    return _Solved(v=v, iterations=iters, converged=conv, max_dv_pu=last_dv)


@dataclass
class _PVState:
    """PV set-points of one block of steps under volt/watt and volt/var (kW, kvar per system)."""

    avail_kw: FloatArray  # (n_pv, k)
    p_kw: FloatArray
    q_kvar: FloatArray
    settings: InverterSettings
    damping: float = 0.5

    def sub(self, cols: IntArray) -> _PVState:
        return _PVState(
            self.avail_kw[:, cols].copy(),
            self.p_kw[:, cols].copy(),
            self.q_kvar[:, cols].copy(),
            self.settings,
            self.damping,
        )

    def update(
        self, prob: _Problem, vd: ComplexArray, w: FloatArray, var: FloatArray, act: IntArray
    ) -> FloatArray:
        """Move set-points towards the curves at voltage ``vd``; return max change (pu kVA)."""
        net = prob.net
        inj = prob.inj
        rows = np.flatnonzero(inj.is_pv)
        elem = inj.element[rows]
        n_pv = len(net.pv)
        vpu_phase = np.abs(vd[rows]) / inj.v_base_v[rows][:, None]
        nph = net.pv.n_phases.astype(float)
        v_e = np.zeros((n_pv, act.size))
        np.add.at(v_e, elem, vpu_phase)
        v_e /= nph[:, None]  # OpenDSS InvControl monVoltageCalc=AVG
        kva = net.pv.kva[:, None]
        avail = self.avail_kw[:, act]
        p_old = self.p_kw[:, act]
        q_old = self.q_kvar[:, act]
        target_p = avail
        if self.settings.volt_watt:
            curve = self.settings.resolved_volt_watt_curve()
            limit = curve.limit_pct(v_e) / 100.0 * net.pv.pmpp_kw[:, None]
            target_p = np.minimum(avail, limit)
        p_new = p_old + self.damping * (target_p - p_old)
        q_new = q_old
        if self.settings.volt_var:
            from gridflex.rules.defaults import volt_var_default

            vv = volt_var_default(self.settings.volt_var_category)
            q_target = vv.q_pct_at(v_e) / 100.0 * kva
            q_room = np.sqrt(np.clip(kva**2 - p_new**2, 0.0, None))
            q_target = np.clip(q_target, -q_room, q_room)
            q_new = q_old + self.damping * (q_target - q_old)
        dp = np.max(np.abs(p_new - p_old) / kva, axis=0) if n_pv else np.zeros(act.size)
        if self.settings.volt_var and n_pv:
            dp = np.maximum(dp, np.max(np.abs(q_new - q_old) / kva, axis=0))
        self.p_kw[:, act] = p_new
        self.q_kvar[:, act] = q_new
        per_phase = nph[elem][:, None]
        w[np.ix_(rows, act)] = -1000.0 * p_new[elem] / per_phase
        if self.settings.volt_var:
            var[np.ix_(rows, act)] = -1000.0 * q_new[elem] / per_phase
        return np.asarray(dp, dtype=float)


def _solve_steps(
    prob: _Problem,
    state: State,
    w: FloatArray,
    var: FloatArray,
    v0: ComplexArray,
    pv: _PVState | None = None,
    tol_pu: float | None = None,
) -> _Solved:
    """Solve columns for one control state: batched fixed point, then per-step fallback."""
    fac = prob.factor(state, v0.shape[1])
    max_iter = _MAX_ITER if pv is None else 4 * _MAX_ITER
    res = _fixed_point(prob, fac, w, var, v0, prob.y_nom, max_iter, pv, tol_pu)
    for j in np.flatnonzero(~res.converged):
        # Fallback: re-linearise the load admittance at this step's operating point
        vstart = res.v[:, [j]] if np.all(np.isfinite(res.v[:, j])) else v0[:, [j]]
        vd = _vd(prob, vstart)[:, 0]
        cur = phase_currents(prob.inj, vd[:, None], w[:, [j]], var[:, [j]])[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            y_op = np.where(np.abs(vd) > 0, cur / vd, prob.y_nom)
        y_op = np.where(np.isfinite(y_op), y_op, prob.y_nom)
        c = prob.inj.incidence
        extra = c @ sp.diags(y_op - prob.y_nom) @ c.T
        try:
            fac_j = factorize(prob.y_of(state, extra=extra))
        except RuntimeError:
            continue
        pv_j = pv.sub(np.array([j])) if pv is not None else None
        w_j = w[:, [j]]
        var_j = var[:, [j]]
        sub = _fixed_point(prob, fac_j, w_j, var_j, vstart, y_op, max_iter, pv_j)
        w[:, j] = w_j[:, 0]
        var[:, j] = var_j[:, 0]
        if pv is not None and pv_j is not None:
            pv.p_kw[:, j] = pv_j.p_kw[:, 0]
            pv.q_kvar[:, j] = pv_j.q_kvar[:, 0]
        res.v[:, j] = sub.v[:, 0]
        res.iterations[j] += sub.iterations[0]
        res.converged[j] = sub.converged[0]
        res.max_dv_pu[j] = sub.max_dv_pu[0]
    return res


def _guess(
    prob: _Problem, state: State, v_ref: ComplexArray, p_ref: float, p_cols: FloatArray
) -> ComplexArray:
    """Initial voltages: the drop from no-load scales with the net load (radial feeders)."""
    v_nl = prob.v_nl.get(state)
    if v_nl is None:
        # a low-rank update of the anchor LU is enough for one right-hand side: forcing a full
        # factorisation here cost one LU per new control state (most of a controlled run)
        v_nl = prob.factor(state, 1).solve(prob.i_src[:, None])[:, 0]
        prob.v_nl[state] = v_nl
        if len(prob.v_nl) > 4 * _CACHE_SIZE:
            prob.v_nl.popitem(last=False)
    else:
        prob.v_nl.move_to_end(state)
    ratio = np.clip(p_cols / p_ref, 0.0, 5.0) if p_ref > 0 else np.ones(p_cols.shape[0])
    return np.asarray(v_nl[:, None] + (v_ref - v_nl)[:, None] * ratio[None, :], dtype=complex)


@dataclass
class _LevelResponse:
    """Solutions of one control state at uniformly scaled load levels (the load response).

    With controls acting, each step starts from the step before it (``v_prev``, total load
    ``p_prev``, the present control state) shifted by how the voltages of this reference state
    move between the two load levels: the part of the change that depends on the control state
    is smaller. On the 8500-node feeder the probed steps after an action take 6.8 fixed-point
    iterations from these starts, 9.7 from :func:`_guess` (the drop from no-load scaled with
    the total load, which the feeder's unshaped loads make inexact).
    """

    levels_w: FloatArray  # (K,) total load, increasing
    v: ComplexArray  # (N, K)
    #: per level: its voltages and the slope to the next level, one contiguous row each
    _rows: ComplexArray = field(init=False, repr=False)
    _slopes: ComplexArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rows = np.ascontiguousarray(self.v.T)
        dq = np.diff(self.levels_w)
        self._slopes = np.ascontiguousarray((np.diff(self.v, axis=1) / dq[None, :]).T)

    def at(self, p_w: FloatArray) -> ComplexArray:
        """Piecewise-linear interpolation at total loads ``p_w`` (N x k; linear beyond)."""
        q = self.levels_w
        j = np.clip(np.searchsorted(q, p_w) - 1, 0, q.size - 2)
        d = np.asarray(p_w, dtype=float) - q[j]
        return np.asarray((self._rows[j] + self._slopes[j] * d[:, None]).T, dtype=complex)

    def shift(self, v_prev: ComplexArray, p_prev: float, p_cols: FloatArray) -> ComplexArray:
        """Starts for steps at total loads ``p_cols`` from a solution ``v_prev`` at ``p_prev``."""
        q = self.levels_w
        p = np.concatenate([[p_prev], np.asarray(p_cols, dtype=float)])
        j = np.clip(np.searchsorted(q, p) - 1, 0, q.size - 2)
        d = p - q[j]
        # the start of step c is v_prev + at(p_c) - at(p_prev): one compiled pass, no temporaries
        out = np.empty((v_prev.shape[0], p.size - 1), dtype=np.complex128)
        _shift_kernel(
            self._rows, self._slopes, np.ascontiguousarray(j, dtype=np.int64), d, v_prev, out
        )
        return out


@nb.njit(cache=True, nogil=True)
def _shift_kernel(
    rows: np.ndarray,
    slopes: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
    v_prev: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """``out[:, c] = v_prev + at(p_{c+1}) - at(p_0)``, ``at(p) = rows[j] + slopes[j] (p - q_j)``
    (the interpolation of :class:`_LevelResponse`, ``j``/``d`` per load with entry 0 for the
    previous step), rows written in one pass."""
    n, k = out.shape
    j0 = j[0]
    d0 = d[0]
    for i in range(n):
        base = v_prev[i] - (rows[j0, i] + slopes[j0, i] * d0)
        for c in range(k):
            jc = j[c + 1]
            out[i, c] = base + (rows[jc, i] + slopes[jc, i] * d[c + 1])


def _level_response(prob: _Problem, state: State, power: PhasePower) -> _LevelResponse | None:
    """Solve up to :data:`_RESPONSE_LEVELS` steps of the run whose total loads span its range
    evenly, in ``state`` (one batch). Steps of the run, not a scaled mean load: loads without a
    shape stay constant, so only the run's own steps lie on its load trajectory (one
    parameter, the shape multiplier, for a feeder with one shape). ``None`` with generation in
    the injections, one load level only, or a level that does not converge."""
    if power.any_generation():
        return None
    total = power.total_w()
    lo, hi = float(total.min()), float(total.max())
    if not hi - lo > 1e-6 * max(abs(hi), 1.0):
        return None
    targets = np.linspace(lo, hi, _RESPONSE_LEVELS)
    idx = np.unique(np.argmin(np.abs(total[:, None] - targets[None, :]), axis=0))
    idx = idx[np.argsort(total[idx], kind="stable")]
    keep = np.concatenate([[True], np.diff(total[idx]) > 1e-9 * max(abs(hi), 1.0)])
    idx = idx[keep]
    if idx.size < 2:
        return None
    solved = _solve_steps(prob, state, *power.cols(idx), _no_load(prob, state, idx.size))
    if not solved.converged.all():
        return None
    return _LevelResponse(np.asarray(total[idx], dtype=float), solved.v)


def _no_load(prob: _Problem, state: State, k: int) -> ComplexArray:
    v = prob.factor(state).solve(prob.i_src[:, None])
    return np.repeat(v, k, axis=1)


def _pilot(
    prob: _Problem, state: State, w_mean: FloatArray, var_mean: FloatArray
) -> tuple[ComplexArray, float]:
    """One step at the run's mean load, from no load: the voltages that anchor the initial
    guesses, and that load's total W."""
    pilot = _solve_steps(prob, state, w_mean[:, None], var_mean[:, None], _no_load(prob, state, 1))
    return pilot.v[:, 0].copy(), float(w_mean.sum())


def _probe(
    prob: _Problem,
    state: State,
    w: FloatArray,
    var: FloatArray,
    v0: ComplexArray,
    pv: _PVState | None,
) -> _Solved:
    """Solve a lone step (the one after a control action) for sampling, then settle it.

    Such a step usually acts again (4 in 5 on the 8500-node feeder), and then its voltages
    only feed the control iterations, which sample at their own tolerance: solving it to the
    full tolerance first was wasted. So it is solved to the control iterations' tolerance and
    settled to the full one only when no control wants to act.
    """
    loose = _solve_steps(prob, state, w, var, v0, pv, max(prob.tol_pu, _CONTROL_ITER_TOL_PU))
    if not loose.converged.all() or _first_action(prob, state, loose.v) >= 0:
        return loose
    settled = _solve_steps(prob, state, w, var, loose.v, pv)
    settled.iterations += loose.iterations
    return settled


def _control_loop(
    prob: _Problem,
    state: State,
    w: FloatArray,
    var: FloatArray,
    v: ComplexArray,
    hour_s: float,
    last_open_s: FloatArray,
    max_control_iter: int,
    pv: _PVState | None = None,
) -> tuple[State, _Solved, int]:
    """OpenDSS static control iterations for one step (column vectors ``w``, ``var``, ``v``)."""
    net = prob.net
    reg = net.regulators
    cap = net.capacitors
    taps = list(state[0])
    caps = list(state[1])
    armed_reg: dict[int, float] = {}
    armed_cap: dict[int, tuple[float, int]] = {}
    solved = _Solved(
        v=v, iterations=np.zeros(1, np.int64), converged=np.ones(1, bool), max_dv_pu=np.zeros(1)
    )
    n_iter = 0
    loose = False
    state_now = state
    for n_iter in range(1, max_control_iter + 1):
        vcol = solved.v[:, 0]
        pend_reg: dict[int, int] = {}
        pending = ctl.regulators_pending(net, vcol, taps)
        for r in range(len(reg)):
            p = pending[r]
            if p != 0:
                pend_reg[r] = p
                if r not in armed_reg:
                    armed_reg[r] = float(reg.delay_s[r])
            else:
                armed_reg.pop(r, None)
        cap_pending = ctl.capacitors_pending(net, vcol, caps) if len(cap) else []
        for c in range(len(cap)):
            if not cap.control_type[c]:
                continue
            p = cap_pending[c]
            if p == ctl.NONE:
                armed_cap.pop(c, None)
                continue
            if c in armed_cap:
                armed_cap[c] = (armed_cap[c][0], p)
                continue
            if p == ctl.CLOSE:
                since = hour_s - last_open_s[c]
                delay = float(cap.delay_on_s[c])
                if since < cap.dead_time_s[c]:
                    delay = max(delay, cap.dead_time_s[c] + delay - since)
            else:
                delay = float(cap.delay_off_s[c])
            armed_cap[c] = (delay, p)
        if not armed_reg and not armed_cap:
            if loose:  # settle the final state to the full tolerance
                solved = _solve_steps(prob, (tuple(taps), tuple(caps)), w, var, solved.v, pv)
            return (tuple(taps), tuple(caps)), solved, n_iter
        t_min = min([*armed_reg.values(), *(d for d, _ in armed_cap.values())])
        for r in [r for r, d in armed_reg.items() if d == t_min]:
            taps[r] = ctl.regulator_tap_after(net, r, taps[r], pend_reg[r])
            del armed_reg[r]
        for c in [c for c, (d, _) in armed_cap.items() if d == t_min]:
            _, p = armed_cap.pop(c)
            if p == ctl.OPEN and caps[c] > 0:
                caps[c] -= 1
                if caps[c] == 0:
                    last_open_s[c] = hour_s
            elif p == ctl.CLOSE and caps[c] < cap.n_steps[c]:
                caps[c] += 1
        new_state: State = (tuple(taps), tuple(caps))
        # intermediate control iterations need voltages to well within a regulator band
        loose = True
        moved = _moves(state_now, new_state)
        v_before = solved.v
        solved = _solve_steps(
            prob,
            new_state,
            w,
            var,
            prob.responses.predict(v_before, moved),
            pv,
            max(prob.tol_pu, _CONTROL_ITER_TOL_PU),
        )
        if solved.converged[0]:
            prob.responses.learn(v_before, solved.v, moved)
        state_now = new_state
    return (tuple(taps), tuple(caps)), solved, n_iter


def _moves(old: State, new: State) -> list[tuple[int, int]]:
    """(device, signed steps) of every device that moved: regulators first, then capacitors."""
    flat_old = (*old[0], *old[1])
    flat_new = (*new[0], *new[1])
    return [(i, b - a) for i, (a, b) in enumerate(zip(flat_old, flat_new, strict=True)) if a != b]


@dataclass
class _Responses:
    """Learned voltage responses to one step of each control device, for starting voltages.

    A control action's re-solve used to start from the voltages before the action: 1-2 % off
    downstream of a regulator after a tap change, and the fixed point closes such magnitude
    errors slowly (the nominal load admittance in the matrix is exact for angle changes of a
    constant-power load and off by twice the load for magnitude changes). A device's response
    to one step hardly changes from hour to hour, so the last converged response of each
    device (volts per step: learned when it acts alone, or as the remainder when it is the only
    one of several moved devices without a learned response) is added to the start of its next
    action: starting errors ~10x smaller, 27 % fewer control-iteration fixed-point iterations
    on the 8500-node feeder (the remainder rule: 3 % more). Only the start changes; every
    solve still converges to its tolerance.
    """

    per_step: dict[int, ComplexArray] = field(default_factory=dict)

    def predict(self, v: ComplexArray, moved: list[tuple[int, int]]) -> ComplexArray:
        """``v`` (N x 1) plus the learned response of every moved device."""
        known = [(d, k) for d, k in moved if d in self.per_step]
        if not known:
            return v
        out = np.array(v, dtype=np.complex128, copy=True)
        for d, k in known:
            out[:, 0] += k * self.per_step[d]
        return out

    def learn(
        self, before: ComplexArray, after: ComplexArray, moved: list[tuple[int, int]]
    ) -> None:
        """Keep the response of an action that moved a single device, or of the one device
        without a learned response among several (the others' learned ones taken off)."""
        unknown = [(d, k) for d, k in moved if d not in self.per_step]
        if len(moved) == 1:
            d, k = moved[0]
        elif len(unknown) == 1:
            d, k = unknown[0]
        else:
            return
        change = after[:, 0] - before[:, 0]
        for d2, k2 in moved:
            if d2 != d:
                change = change - k2 * self.per_step[d2]
        resp = change / k
        if np.all(np.isfinite(resp)):
            self.per_step[d] = resp


def _initial_state(net: Network) -> State:
    return (
        tuple(int(x) for x in net.regulators.tap0),
        tuple(int(x) for x in net.capacitors.state0),
    )


def snapshot_state(net: Network, prob: _Problem | None = None, max_control_iter: int = 10) -> State:
    """Control state after one snapshot solve with controls on (nominal load, no shapes)."""
    hours = np.ones(1)
    inj = build_injectors(net) if prob is None else prob.inj
    w, var = phase_power(net, inj, hours, snapshot=True)[0].dense()
    if prob is None:
        prob = _build_problem(net, w[:, 0], var[:, 0], 1e-7)
    state = _initial_state(net)
    solved = _solve_steps(prob, state, w, var, _no_load(prob, state, 1))
    last_open = np.full(len(net.capacitors), -np.inf)
    state, _, _ = _control_loop(prob, state, w, var, solved.v, 0.0, last_open, max_control_iter)
    return state


class _Recorder:
    """Turns solved voltage blocks into the result arrays."""

    def __init__(self, prob: _Problem, t: int, pv_avail_kw: FloatArray) -> None:
        net = prob.net
        self.prob = prob
        self.n = prob.n
        br = net.branches
        self.b = len(br)
        # every row is written by record_block (no fill pass over these large arrays). The
        # first write of each page costs a page fault (memory.result_array: about 0.5 s per GB
        # in small pages on the VMs this is measured on): a thread takes those faults while
        # the solver prepares (snapshot, anchors), and recording waits for it (record_states).
        # Single precision (TimeSeriesResult says why): 470 MB instead of 940 MB for a year of
        # the 8500-node feeder
        self.v_pu = result_array((t, self.n), np.float32)
        self.load_pct = result_array((t, self.b), np.float32)
        self._toucher = threading.Thread(
            target=_touch_pages,
            args=((self.v_pu, self.load_pct),),
            name="gridflex-result-pages",
            daemon=True,
        )
        self._toucher.start()
        self.src_p = np.zeros(t)
        self.src_q = np.zeros(t)
        self.losses = np.zeros(t)
        self.reg_taps = np.zeros((t, len(net.regulators)), dtype=np.int64)
        self.reg_p = np.zeros((t, len(net.regulators)))
        self.cap_states = np.zeros((t, len(net.capacitors)), dtype=np.int64)
        self.pv_avail = pv_avail_kw.T.copy()
        self.pv_p = np.zeros((t, len(net.pv)))
        self.iterations = np.zeros(t, dtype=np.int64)
        self.converged = np.zeros(t, dtype=bool)
        self.max_dv = np.zeros(t)
        self.currents = BranchCurrents(net)
        self.inv_vb = 1.0 / prob.vbase_v
        # record_block's injector outputs: PV phases get their own row, loads one sum per step
        is_pv = prob.inj.is_pv
        self.pv_phases = int(np.count_nonzero(is_pv))
        self.pv_slot = np.where(is_pv, np.cumsum(is_pv) - 1, -1).astype(np.int64)

    def record_now(
        self,
        cols: IntArray,
        solved: _Solved,
        state: State,
        w: FloatArray,
        var: FloatArray,
    ) -> None:
        """Record steps at once (thread-safe for disjoint ``cols``: each writes its own rows)."""
        self.record_states(cols, solved, _per_step(state, cols.size), w, var)

    def copy_rows(self, dst: IntArray, src: IntArray) -> None:
        """Give steps ``dst`` the results of steps ``src`` (recorded already; same inputs)."""
        if dst.size == 0:
            return
        for arr in (
            self.v_pu,
            self.load_pct,
            self.src_p,
            self.src_q,
            self.losses,
            self.reg_taps,
            self.reg_p,
            self.cap_states,
            self.pv_p,
            self.iterations,
            self.converged,
            self.max_dv,
        ):
            arr[dst] = arr[src]

    def record_states(
        self,
        cols: IntArray,
        solved: _Solved,
        states: tuple[IntArray, IntArray],
        w: FloatArray,
        var: FloatArray,
    ) -> None:
        """Record steps ``cols``; ``states``: each step's taps (k x R) and capacitor steps
        (thread-safe for disjoint ``cols``)."""
        self._toucher.join()
        prob = self.prob
        net = prob.net
        v = solved.v  # node- or step-major (the frozen path's buffers), never strided
        if not (v.flags.c_contiguous or v.flags.f_contiguous):
            v = np.ascontiguousarray(v)
        self.iterations[cols] = solved.iterations
        self.converged[cols] = solved.converged
        self.max_dv[cols] = solved.max_dv_pu
        taps, caps = states
        self.reg_taps[cols] = taps
        self.cap_states[cols] = caps
        cur = self.currents
        # one call for every step: the regulator branches take each step's taps' values
        if taps.shape[1] and np.any(taps != taps[:1]):
            uniq, step_var = np.unique(taps, axis=0, return_inverse=True)
            var_re, var_im = cur.variants([tuple(int(x) for x in row) for row in uniq])
            data, reg_off = cur.data, cur.reg_off
        else:
            first = tuple(int(x) for x in taps[0]) if taps.shape[0] else ()
            data, reg_off = cur.data_for(first), cur.no_reg_off
            var_re = var_im = np.zeros((0, 0))
            step_var = np.zeros(cols.size, dtype=np.int64)
        inj = prob.inj
        p_load = np.empty(cols.size)  # absorbed by the loads, W
        p_pv_phase = np.empty((self.pv_phases, cols.size))  # absorbed per PV phase, W (< 0)
        record_block(
            v,
            self.inv_vb,
            cur.ptr,
            cur.idx,
            data,
            cur.row_start,
            cur.rating_normal_a,
            np.ascontiguousarray(cols, dtype=np.int64),
            self.v_pu,
            self.load_pct,
            cur.block_start,
            reg_off,
            var_re,
            var_im,
            np.ascontiguousarray(step_var, dtype=np.int64).ravel(),
            inj.kernel_arrays(),
            np.ascontiguousarray(w),
            np.ascontiguousarray(var),
            self.pv_slot,
            p_load,
            p_pv_phase,
        )
        # power through each regulator's regulated winding, per tap position among the steps
        reg = net.regulators
        br = net.branches
        for r in range(len(reg)):
            b = int(reg.branch_idx[r])
            refs = reg.node_idx[r]
            nc = int(br.n_conds[b])
            w_ = int(reg.winding[r])
            term = slice((w_ - 1) * nc, w_ * nc)
            ok = refs >= 0
            vt = np.zeros((refs.size, v.shape[1]), dtype=complex)
            vt[ok] = v[refs[ok]]
            for pos in np.unique(taps[:, r]):
                at = np.flatnonzero(taps[:, r] == pos)
                y = reg.y_prim_by_tap[r][int(pos) - int(reg.tap_min[r])]
                it = y[term] @ vt[:, at]
                p_into = np.sum((vt[term][:, at] * np.conj(it)).real, axis=0)
                self.reg_p[cols[at], r] = -p_into / 1000.0
        # source power: delivered = sum V conj(I_norton - Yprim V)
        src = net.source
        if src.y_prim is not None and src.term_node_idx is not None:
            refs = src.term_node_idx
            vt = np.zeros((refs.size, v.shape[1]), dtype=complex)
            ok = refs >= 0
            vt[ok] = v[refs[ok]]
            i_into = src.y_prim @ vt
            i_norton = np.zeros_like(vt)
            i_norton[ok] = src.i_inj_a[refs[ok]][:, None]
            s = np.sum(vt * np.conj(i_norton - i_into), axis=0)
            self.src_p[cols] = s.real / 1000.0
            self.src_q[cols] = s.imag / 1000.0
        # consumption by loads and PV output (record_block took the injector powers)
        if len(net.pv):
            pv_p = np.zeros((len(net.pv), v.shape[1]))
            np.add.at(pv_p, inj.element[inj.is_pv], -p_pv_phase)
            self.pv_p[cols] = pv_p.T / 1000.0
            p_gen = -p_pv_phase.sum(axis=0)
        else:
            p_gen = np.zeros(v.shape[1])
        self.losses[cols] = self.src_p[cols] + (p_gen - p_load) / 1000.0


def _emerg_scale(net: Network) -> FloatArray:
    """Normal / emergency rating per branch (NaN where either is 0): the emergency loading is
    the normal loading times this, so no second T x B array is kept."""
    norm = np.asarray(net.branches.rating_normal_a, dtype=np.float64)
    emerg = np.asarray(net.branches.rating_emerg_a, dtype=np.float64)
    ok = (norm > 0.0) & (emerg > 0.0)
    return np.where(ok, norm / np.where(ok, emerg, 1.0), np.nan)


class _RecordQueue:
    """Solved steps of one sequence of control states, turned into results in batches (steps at
    different taps in one :meth:`_Recorder.record_now` call). One queue per thread: queues of
    disjoint steps may flush into the same recorder at the same time."""

    def __init__(self, rec: _Recorder, flush_cols: int) -> None:
        self.rec = rec
        self.flush_cols = flush_cols
        self._buf: list[tuple[IntArray, _Solved, State, FloatArray, FloatArray]] = []
        self._nbuf = 0

    def record(
        self,
        cols: IntArray,
        solved: _Solved,
        state: State,
        w: FloatArray,
        var: FloatArray,
    ) -> None:
        """Queue solved steps; they are recorded once ``flush_cols`` steps wait."""
        self._buf.append((cols, solved, state, w, var))
        self._nbuf += int(cols.size)
        if self._nbuf >= self.flush_cols:
            self.flush()

    def flush(self) -> None:
        """Record every queued step in one batch (steps at different taps included)."""
        if not self._buf:
            return
        items = self._buf
        self._buf = []
        self._nbuf = 0
        if len(items) == 1:
            cols, solved, state, w, var = items[0]
            self.rec.record_now(cols, solved, state, w, var)
            return
        cols = np.concatenate([it[0] for it in items])
        solved = _Solved(
            v=np.hstack([it[1].v for it in items]),
            iterations=np.concatenate([it[1].iterations for it in items]),
            converged=np.concatenate([it[1].converged for it in items]),
            max_dv_pu=np.concatenate([it[1].max_dv_pu for it in items]),
        )
        per_step = [_per_step(it[2], it[0].size) for it in items]
        taps = np.vstack([st[0] for st in per_step])
        caps = np.vstack([st[1] for st in per_step])
        w = np.hstack([it[3] for it in items])
        var = np.hstack([it[4] for it in items])
        self.rec.record_states(cols, solved, (taps, caps), w, var)


def _touch_pages(arrays: tuple[FloatArray, ...]) -> None:
    """Write one value per 4 KB page of each array (NumPy releases the GIL meanwhile)."""
    for a in arrays:
        a.reshape(-1)[:: 4096 // a.itemsize] = 0.0


def _per_step(state: State, k: int) -> tuple[IntArray, IntArray]:
    """A control state repeated for ``k`` steps: taps (k x R) and capacitor steps (k x C)."""
    taps, caps = state
    return (
        np.repeat(np.asarray(taps, dtype=np.int64)[None, :], k, axis=0),
        np.repeat(np.asarray(caps, dtype=np.int64)[None, :], k, axis=0),
    )


def _resolve_time(
    start: datetime | None, steps: int, step: timedelta | None, net: Network
) -> tuple[pd.DatetimeIndex, float]:
    if steps <= 0:
        raise InputError(
            f"steps must be a positive number of time steps, got {steps}", "pass steps >= 1"
        )
    if step is None:
        step_h = float(net.profile_step_h)
    else:
        step_h = step.total_seconds() / 3600.0
        if step_h <= 0:
            raise InputError(
                f"step must be a positive duration, got {step}", "e.g. timedelta(hours=1)"
            )
    if start is None:
        now = datetime.now().astimezone()
        start = datetime(now.year, 1, 1, tzinfo=now.tzinfo)
    if start.tzinfo is None:
        raise InputError(
            f"start {start.isoformat()} has no time zone",
            "pass a timezone-aware datetime, e.g. datetime(2024, 1, 1, tzinfo=ZoneInfo('UTC'))",
        )
    t0 = pd.Timestamp(start).tz_convert("UTC")
    times = pd.date_range(t0, periods=steps, freq=pd.Timedelta(hours=step_h))
    return pd.DatetimeIndex(times), step_h


#: A controlled run long enough is solved as spans of steps on worker threads at once. Each
#: span but the first starts this many hours before its first recorded step, from the model's
#: initial control state: by its first recorded step, its control states have almost always
#: met those of the sequential run (different starting taps on the 8500-node feeder met within
#: 3-7 hours), which :func:`_solve_spans` checks
_SPAN_WARMUP_H = 48.0
#: spans per worker thread (the control actions, and so the time a span takes, vary with the
#: season: more, shorter spans balance the threads)
_SPANS_PER_WORKER = 4
#: no span shorter than this many warm-ups (their cost stays a small share)
_SPAN_MIN_WARMUPS = 10
#: spans only for feeders of this many nodes or more: on small ones a step is mostly Python,
#: which the threads take turns at (IEEE 123, 8,760 controlled hours: 2.7 s in one sequence,
#: 3.3 s in spans; EPRI ckt7 and ckt5: 6.2 -> 4.7 s and 5.7 -> 4.1 s; 8500-node: 30.4 -> 22.4 s)
_SPAN_MIN_NODES = 1000


class _Progress:
    """Steps done, reported to ``callback(done, total)`` from whichever thread did them."""

    def __init__(
        self, callback: Callable[[int, int], None] | None, total: int, done: int = 0
    ) -> None:
        self.callback = callback
        self.total = total
        self.done = done
        self._lock = threading.Lock()

    def add(self, k: int) -> None:
        if self.callback is None or k <= 0:
            return
        with self._lock:
            self.done += k
            self.callback(min(self.done, self.total), self.total)


@dataclass
class _StepRun:
    """What every stretch of sequential steps of one run shares (read-only)."""

    power: PhasePower
    pv_all: _PVState | None
    step_h: float
    controls: str
    max_control_iter: int
    levels: _LevelResponse | None
    w_mean: FloatArray
    var_mean: FloatArray
    chunk: int
    progress: _Progress


@dataclass
class _StateTrail:
    """The control states a stretch of steps went through: after each step's control
    iterations, from step ``first`` to ``end - 1`` (taps and capacitor steps, and each
    capacitor's last opening in seconds). Kept as references to the states' tuples, one per
    step: a small feeder's step is a few hundred microseconds, and array rows cost 10 us."""

    first: int
    states: list[State]
    opened_s: list[tuple[float, ...]]

    @classmethod
    def empty(cls, first: int) -> _StateTrail:
        return cls(first=first, states=[], opened_s=[])

    @property
    def end(self) -> int:
        """One past the last step held."""
        return self.first + len(self.states)

    def set(self, cols: IntArray, state: State, last_open: FloatArray) -> None:
        """Steps ``cols`` (consecutive, following the last ones set) ended in ``state``."""
        if int(cols[0]) != self.end:
            raise ValueError(
                f"state trail: step {int(cols[0])} does not follow step {self.end - 1}"
            )
        k = int(cols.size)
        opened = tuple(last_open.tolist())
        self.states.extend([state] * k)
        self.opened_s.extend([opened] * k)

    def state_at(self, t: int) -> tuple[State, FloatArray]:
        """The control state after step ``t`` and the capacitors' last openings then."""
        r = t - self.first
        return self.states[r], np.asarray(self.opened_s[r], dtype=float)

    def cut(self, end: int) -> None:
        """Forget the steps from ``end`` on."""
        del self.states[end - self.first :]
        del self.opened_s[end - self.first :]

    def meets(
        self, other: _StateTrail, cols: IntArray, step_s: float, dead_time_s: FloatArray
    ) -> int:
        """The first step of ``cols`` after which both trails hold the same control state and
        the same capacitor memory (-1: none): from there on, both runs solve the same steps
        in the same states. A last opening counts only while the next step can still fall in
        its capacitor's dead time."""
        lo = max(self.first, other.first)
        hi = min(self.end, other.end)
        for c in cols:
            t = int(c)
            if not lo <= t < hi:
                continue
            a = t - self.first
            b = t - other.first
            if self.states[a] != other.states[b]:
                continue
            mine = _capacitor_memory(np.asarray(self.opened_s[a]), t, step_s, dead_time_s)
            theirs = _capacitor_memory(np.asarray(other.opened_s[b]), t, step_s, dead_time_s)
            if mine == theirs:
                return t
        return -1


def _capacitor_memory(
    opened_s: FloatArray, t: int, step_s: float, dead_time_s: FloatArray
) -> tuple[float, ...]:
    """The last openings that can still delay a closing after step ``t`` (others: -inf)."""
    next_s = (t + 1) * step_s
    live = next_s - opened_s < dead_time_s
    return tuple(float(x) for x in np.where(live, opened_s, -np.inf))


def _run_steps(
    prob: _Problem,
    run: _StepRun,
    queue: _RecordQueue,
    state: State,
    last_open: FloatArray,
    start: int,
    stop: int,
    record_from: int,
    meet: _StateTrail | None = None,
) -> _StateTrail:
    """Solve steps ``start`` to ``stop - 1`` in order, each from the control state the one
    before left (``controls="static"``: control iterations where a control wants to act),
    and record those from ``record_from`` on.

    With ``meet`` (the states another run of these steps went through), stop after the first
    step whose control state and capacitor memory equal ``meet``'s: the rest of that run is
    what this one would do. ``last_open`` (each capacitor's last opening, s) is updated in
    place. Returns the states this run went through.
    """
    power = run.power
    net = prob.net
    trail = _StateTrail.empty(start)
    step_s = run.step_h * 3600.0
    dead_time = np.asarray(net.capacitors.dead_time_s, dtype=float)
    v_prev: ComplexArray | None = None
    p_prev = 0.0
    t = start
    window = run.chunk if run.controls == "off" else min(run.chunk, 32)

    def keep(cols: IntArray, solved: _Solved, st: State, w: FloatArray, var: FloatArray) -> int:
        """Record ``cols`` (those from ``record_from``); the step where ``meet`` is met."""
        trail.set(cols, st, last_open)
        k0 = max(0, record_from - int(cols[0]))
        if k0 < cols.size:
            queue.record(cols[k0:], _slice(solved, slice(k0, None)), st, w[:, k0:], var[:, k0:])
            if meet is None:
                run.progress.add(int(cols.size - k0))
        return -1 if meet is None else trail.meets(meet, cols, step_s, dead_time)

    while t < stop:
        cols = np.arange(t, min(t + window, stop))
        w, var = power.cols(cols)
        pv_chunk = run.pv_all.sub(cols) if run.pv_all is not None else None
        if v_prev is None:
            v_prev, p_prev = _pilot(prob, state, run.w_mean, run.var_mean)
        if run.levels is not None:
            v0 = run.levels.shift(v_prev, p_prev, w.sum(axis=0))
        else:
            v0 = _guess(prob, state, v_prev, p_prev, w.sum(axis=0))
        if run.controls == "static" and cols.size == 1:
            solved = _probe(prob, state, w, var, v0, pv_chunk)
        else:
            solved = _solve_steps(prob, state, w, var, v0, pv_chunk)
        first = -1 if run.controls == "off" else _first_action(prob, state, solved.v)
        if first < 0:
            met = keep(cols, solved, state, w, var)
            v_prev = solved.v[:, -1].copy()
            p_prev = float(w[:, -1].sum())
            t = int(cols[-1]) + 1
            window = min(run.chunk, window * 2)
        else:
            met = -1
            if first > 0:  # the steps before it keep the present state
                met = keep(
                    cols[:first], _slice(solved, slice(0, first)), state, w[:, :first],
                    var[:, :first],
                )  # fmt: skip
            if met < 0:
                col = int(cols[first])
                w_j = w[:, [first]]
                var_j = var[:, [first]]
                pv_j = pv_chunk.sub(np.array([first])) if pv_chunk is not None else None
                state, sub, _ = _control_loop(
                    prob,
                    state,
                    w_j,
                    var_j,
                    solved.v[:, [first]],
                    float(col) * step_s,
                    last_open,
                    run.max_control_iter,
                    pv_j,
                )
                met = keep(np.array([col]), sub, state, w_j, var_j)
                v_prev = sub.v[:, 0].copy()
                p_prev = float(w_j[:, 0].sum())
                t = col + 1
                window = 1  # actions come in runs: probe the next step alone
        if met >= 0:
            trail.cut(met + 1)
            break
    return trail


def _warmup_steps(step_h: float) -> int:
    """Steps a span runs before its first recorded one (at least one: its state there is what
    :func:`_solve_spans` checks)."""
    return max(1, int(np.ceil(_SPAN_WARMUP_H / step_h)))


def _span_bounds(steps: int, step_h: float, workers: int, nodes: int) -> list[int]:
    """Where the spans of a controlled run begin (and the run ends); ``[]``: solve it in one
    sequence (one worker, a small feeder, or too few steps for spans worth their warm-up)."""
    warm = _warmup_steps(step_h)
    spans = min(workers * _SPANS_PER_WORKER, steps // (_SPAN_MIN_WARMUPS * warm))
    if workers < 2 or spans < 2 or nodes < _SPAN_MIN_NODES:
        return []
    return [int(x) for x in np.linspace(0, steps, spans + 1).round()]


def _solve_spans(
    prob: _Problem,
    run: _StepRun,
    rec: _Recorder,
    state0: State,
    bounds: list[int],
    workers: int,
) -> list[int]:
    """A controlled run as spans of steps on ``workers`` threads at once (time-parallel).

    The control state a step starts from is the one the step before left, so span ``s`` cannot
    know its first state until span ``s - 1`` is done. Each span therefore starts
    :data:`_SPAN_WARMUP_H` before its first recorded step, from the model's initial state, and
    its states are checked afterwards against the span before: if both hold the same control
    state (and capacitor memory) after the step before the boundary, the span solved exactly
    the steps the sequential run would. If not, the steps from the boundary are solved again
    in order, from the previous span's last state, until the two runs' states meet (a few
    hours; at worst the whole span). Each thread has its own LU caches and learned responses
    (:meth:`_Problem.fresh`); they change the starting voltages only, never a tolerance.

    Returns the first step of every span that had to be solved again (for measurements).
    """
    warm = _warmup_steps(run.step_h)
    n_spans = len(bounds) - 1
    local = threading.local()
    net = prob.net

    def solve(s: int) -> _StateTrail:
        here: _Problem | None = getattr(local, "prob", None)
        if here is None:
            here = local.prob = prob.fresh()
        queue = _RecordQueue(rec, run.chunk)
        start = 0 if s == 0 else max(0, bounds[s] - warm)
        last_open = np.full(len(net.capacitors), -np.inf)
        trail = _run_steps(here, run, queue, state0, last_open, start, bounds[s + 1], bounds[s])
        queue.flush()
        return trail

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gridflex-span") as ex:
        trails = list(ex.map(solve, range(n_spans)))
    redone: list[int] = []
    step_s = run.step_h * 3600.0
    dead_time = np.asarray(net.capacitors.dead_time_s, dtype=float)
    before = trails[0]  # the run that holds the true states up to the present boundary
    for s in range(1, n_spans):
        b = bounds[s]
        trail = trails[s]
        if before.meets(trail, np.array([b - 1]), step_s, dead_time) < 0:
            redone.append(b)
            state, last_open = before.state_at(b - 1)
            queue = _RecordQueue(rec, run.chunk)
            fix = _run_steps(prob, run, queue, state, last_open, b, bounds[s + 1], b, trail)
            queue.flush()
            if fix.end >= bounds[s + 1]:  # never met: the repair ran the whole span
                trail = fix
        before = trail
    return redone


@heavy_section()
def simulate(
    network: Network,
    *,
    start: datetime | None = None,
    steps: int,
    step: timedelta | None = None,
    controls: Literal["static", "off"] = "static",
    inverter: InverterSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    tolerance_pu: float = 1e-6,
    max_control_iter: int = 10,
) -> TimeSeriesResult:
    """Solve ``steps`` time steps of ``network`` as a batched unbalanced power flow.

    Parameters
    ----------
    network:
        From :func:`gridflex.network.load_network`.
    start:
        Timezone-aware start (default: 1 January 00:00 this year, local time zone).
    steps:
        Number of time steps.
    step:
        Step length (default: the model's profile step, hourly for OpenDSS yearly shapes).
    controls:
        ``"static"``: regulators and switched capacitors act per step (OpenDSS
        ``controlmode=static``). ``"off"``: the state one snapshot solve with controls leaves.
    inverter:
        PV volt/var and volt/watt settings; ``None`` = no inverter functions.
    progress:
        Called as ``progress(done_steps, total_steps)``.
    tolerance_pu:
        Convergence tolerance on the voltage change between iterations, per unit.
    max_control_iter:
        Control iterations per step (OpenDSS ``MaxControlIter``, default 10).

    Returns
    -------
    TimeSeriesResult
    """
    if controls not in ("static", "off"):
        raise InputError(f"controls must be 'static' or 'off', got {controls!r}", "use one of them")
    t_begin = _time.perf_counter()
    times, step_h = _resolve_time(start, steps, step, network)
    hours = np.asarray((np.arange(steps) + 1.0) * step_h, dtype=np.float64)
    inj = build_injectors(network)
    power, pv_avail = phase_power(network, inj, hours, snapshot=False)
    w_mean, var_mean = power.mean()
    prob = _build_problem(network, w_mean, var_mean, tolerance_pu)

    rec = _Recorder(prob, steps, pv_avail)
    failures: list[StepFailure] = []
    pv_all: _PVState | None = None
    if inverter is not None and len(network.pv) and (inverter.volt_watt or inverter.volt_var):
        pv_all = _PVState(pv_avail.copy(), pv_avail.copy(), np.zeros_like(pv_avail), inverter)
    n = prob.n
    chunk = int(max(8, min(2048, _CHUNK_BUDGET_BYTES / (16.0 * max(n, 1) * 8))))
    if controls == "off":
        state = snapshot_state(network, prob, max_control_iter)
    else:
        state = _initial_state(network)
    t = 0
    workers = int(nb.get_num_threads())
    if controls == "off" and workers > 1 and steps > 2 * chunk:
        frozen_chunk = chunk if pv_all is not None else max(chunk, _FROZEN_CHUNK)
        t = _solve_frozen_parallel(
            prob, state, power, pv_all, rec, frozen_chunk, workers, steps, progress
        )
    levels = None
    if controls == "static" and pv_all is None:
        levels = _level_response(prob, state, power)
    run = _StepRun(
        power=power,
        pv_all=pv_all,
        step_h=step_h,
        controls=controls,
        max_control_iter=max_control_iter,
        levels=levels,
        w_mean=w_mean,
        var_mean=var_mean,
        chunk=chunk,
        progress=_Progress(progress, steps, t),
    )
    spans = []
    if controls == "static" and pv_all is None:
        spans = _span_bounds(steps, step_h, workers, n)
    if t < steps and spans:
        _solve_spans(prob, run, rec, state, spans, workers)
    elif t < steps:
        queue = _RecordQueue(rec, chunk)
        last_open = np.full(len(network.capacitors), -np.inf)
        _run_steps(prob, run, queue, state, last_open, t, steps, t)
        queue.flush()
    for k in np.flatnonzero(~rec.converged):
        if not np.isfinite(rec.max_dv[k]):
            cause = "voltages diverged (no finite solution: overload or voltage collapse)"
        else:
            cause = (
                f"fixed-point and fallback iterations stalled at max |dV| = {rec.max_dv[k]:.3g} pu"
                + _boundary_note(prob, rec.v_pu[k])
            )
        failures.append(
            StepFailure(
                step=int(k),
                time=pd.Timestamp(times[int(k)]),
                cause=cause,
                max_dv_pu=float(rec.max_dv[k]),
            )
        )
        rec.v_pu[k] = np.where(np.isfinite(rec.v_pu[k]), rec.v_pu[k], np.nan)
    solve_s = _time.perf_counter() - t_begin
    curtailed = rec.pv_avail - rec.pv_p if len(network.pv) else np.zeros((steps, 0))
    curtailed = np.clip(curtailed, 0.0, None)
    return TimeSeriesResult(
        time=times,
        node_names=list(network.node_names),
        v_pu=rec.v_pu,
        branch_names=list(network.branches.names),
        branch_loading_pct=rec.load_pct,
        branch_loading_emerg_pct=None,
        branch_emerg_scale=_emerg_scale(network),
        source_p_kw=rec.src_p,
        source_q_kvar=rec.src_q,
        regulator_names=list(network.regulators.names),
        regulator_taps=rec.reg_taps,
        regulator_p_kw=rec.reg_p,
        capacitor_names=list(network.capacitors.names),
        capacitor_states=rec.cap_states,
        losses_kw=rec.losses,
        pv_names=list(network.pv.names),
        pv_available_kw=rec.pv_avail,
        pv_p_kw=rec.pv_p,
        pv_curtailed_kw=curtailed,
        e_curtailed_kwh=curtailed.sum(axis=0) * step_h,
        converged=rec.converged,
        iterations=rec.iterations,
        failures=failures,
        timings={"solve_s": solve_s},
        step_h=step_h,
        controls=controls,
    )


def _solve_frozen_parallel(
    prob: _Problem,
    state: State,
    power: PhasePower,
    pv_all: _PVState | None,
    rec: _Recorder,
    chunk: int,
    workers: int,
    steps: int,
    progress: Callable[[int, int], None] | None,
) -> int:
    """Frozen controls: chunks are independent, so solve them on ``workers`` threads.

    Without inverter functions, every step starts from the anchor spline of
    :mod:`gridflex.powerflow.guess` (see :func:`_anchor_spline`), evaluated inside the lane
    kernel; each thread reuses one voltage buffer for its chunks (fresh 35 MB arrays per chunk
    cost page faults: seconds of system time over a year of the 8500-node feeder). The Numba
    kernels release the GIL; each chunk records its own rows. Returns the number of steps done
    (all of them).
    """
    v_ref, p_ref = _pilot(prob, state, *power.mean())
    level = power.total_w()
    local = threading.local()

    def buffer(k: int) -> ComplexArray:
        # N x k voltages stored step-major (the transpose of a k x N array): the lane kernel
        # writes a finished step's voltages as one contiguous row and the recording reads
        # 16 rows side by side. Node-major, each of the N writes of a step touched its own
        # page (stride k x 16 B): 200 -> 70-90 us per step and iteration on the 8500-node
        # feeder, most of it TLB misses
        buf: ComplexArray | None = getattr(local, "v", None)
        if buf is None or buf.shape[1] != k:
            buf = result_array((k, prob.n), np.complex128).T
            if k == chunk:
                local.v = buf
        return buf

    with ThreadPoolExecutor(max_workers=workers) as ex:
        fac = prob.factor(state, chunk)
        spline = None
        if pv_all is None and isinstance(fac, Factor):
            spline = _anchor_spline(prob, state, fac, power, v_ref, level, ex, workers)

        def work(cols: IntArray) -> IntArray:
            w, var = power.cols(cols)
            if spline is not None and isinstance(fac, Factor):
                solved = _solve_from_spline(
                    prob, state, fac, w, var, spline, level[cols], buffer(cols.size)
                )
            else:
                pv_chunk = pv_all.sub(cols) if pv_all is not None else None
                v0 = _guess(prob, state, v_ref, p_ref, w.sum(axis=0))
                solved = _solve_steps(prob, state, w, var, v0, pv_chunk)
            # each chunk writes only its own rows: record it here, off the main thread
            rec.record_now(cols, solved, state, w, var)
            return cols

        # a step whose load vector equals an earlier step's has that step's solution (the
        # same start, the same arithmetic): it is copied, not solved (the 8500-node feeder's
        # LoadShape1 repeats 3,254 of its 8,760 hourly values)
        first = power.first_equal_step() if pv_all is None else np.arange(steps)
        solve = np.flatnonzero(first == np.arange(steps))
        copies = np.flatnonzero(first != np.arange(steps))

        def work_and_copy(cols: IntArray) -> int:
            work(cols)
            dst = copies[np.isin(first[copies], cols)]
            rec.copy_rows(dst, first[dst])
            return int(cols.size + dst.size)

        # with the spline, blocks of steps of neighbouring levels: a lane's start reads the two
        # knots around its level (values and slopes, 4 x N each), which the next steps then find
        # in cache, and lanes of one interval are started together (fused.py)
        if spline is not None:
            solve = solve[np.argsort(level[solve], kind="stable")]
        blocks = [solve[t : t + chunk] for t in range(0, solve.size, chunk)]
        done = 0
        for n_done in ex.map(work_and_copy, blocks):
            done += n_done
            if progress is not None:
                progress(done, steps)
    return steps


def _anchor_spline(
    prob: _Problem,
    state: State,
    fac: Factor,
    power: PhasePower,
    v_start: ComplexArray,
    level: FloatArray,
    pool: ThreadPoolExecutor,
    workers: int,
) -> SplineGuess | None:
    """The anchor spline of the frozen run's starts (``None``: one load level only).

    Its rows are in the solution order of ``fac`` (the LU of ``state``), as the lane kernel
    reads them: row ``perm_c[i]`` is node ``i``.

    :data:`_COARSE_ANCHORS` anchors are solved from ``v_start``; their spline starts the
    :data:`_ANCHORS` anchors (on ``workers`` threads), whose spline starts every step. An
    anchor that does not converge is left out of the spline (it still gets solved, and
    reported, as an ordinary step).
    """
    if not np.ptp(level) > 1e-9 * max(float(np.max(np.abs(level))), 1.0):
        return None
    coarse = anchor_steps(level, _COARSE_ANCHORS)
    first = _solve_steps(
        prob, state, *power.cols(coarse), np.repeat(v_start[:, None], coarse.size, axis=1)
    )
    if coarse.size < 2 or not first.converged.all():
        return None
    perm_c = fac.perm_c
    guess = SplineGuess.fit(level[coarse], first.v, perm_c)
    fine = anchor_steps(level, _ANCHORS)
    # the fine anchors start from the coarse spline inside the lane kernel and land in one
    # step-major array, which the fit reads as it is
    v = result_array((fine.size, prob.n), np.complex128).T
    bounds = np.linspace(0, fine.size, workers + 1).astype(np.int64)

    def solve(part: int) -> _Solved:
        sl = slice(int(bounds[part]), int(bounds[part + 1]))
        idx = fine[sl]
        return _solve_from_spline(prob, state, fac, *power.cols(idx), guess, level[idx], v[:, sl])

    parts = [p for p in range(workers) if bounds[p + 1] > bounds[p]]
    ok = np.concatenate([s.converged for s in pool.map(solve, parts)])
    if np.count_nonzero(ok) < 2:
        return guess
    if not ok.all():
        fine, v = fine[ok], v[:, ok]
    return SplineGuess.fit(level[fine], v, perm_c)


def _solve_from_spline(
    prob: _Problem,
    state: State,
    fac: Factor,
    w: FloatArray,
    var: FloatArray,
    spline: SplineGuess,
    level: FloatArray,
    v_out: ComplexArray,
) -> _Solved:
    """:func:`_solve_steps` for steps that start from ``spline`` at their ``level``.

    The starts are evaluated inside the lane kernel (``spline`` in the solution order of
    ``fac``, the LU of ``state``); steps that do not converge take :func:`_solve_steps` (fixed
    point, then the per-step fallback) from the same start.
    """
    k = level.size
    iters = np.zeros(k, dtype=np.int64)
    conv = np.zeros(k, dtype=bool)
    last_dv = np.full(k, np.inf)
    fixed_point_lanes(
        *fac.arrays(),
        *prob.inj.kernel_arrays(),
        *_kernel_inputs(prob, w, var, prob.y_nom),
        np.zeros((0, 0), dtype=np.complex128),
        spline.knots,
        spline.knot_data,
        np.ascontiguousarray(level, dtype=np.float64),
        float(prob.tol_pu),
        _MAX_ITER,
        _SPLINE_ANDERSON,
        v_out,
        iters,
        conv,
        last_dv,
    )
    solved = _Solved(v=v_out, iterations=iters, converged=conv, max_dv_pu=last_dv)
    bad = np.flatnonzero(~conv)
    if bad.size:
        start = spline.evaluate(level[bad])[fac.perm_c]  # back to node order
        redo = _solve_steps(prob, state, w[:, bad], var[:, bad], start)
        solved.v[:, bad] = redo.v
        solved.iterations[bad] = redo.iterations
        solved.converged[bad] = redo.converged
        solved.max_dv_pu[bad] = redo.max_dv_pu
    return solved


def _boundary_note(prob: _Problem, v_pu_row: FloatArray) -> str:
    """Name loads sitting on a Vminpu/Vmaxpu zone boundary (where OpenDSS's models jump)."""
    inj = prob.inj
    wye = inj.b >= prob.n  # phase-to-ground: |V_a| in pu of the node base is the load's voltage
    a = np.where(wye, inj.a, 0)
    v = np.where(wye, v_pu_row[a] * prob.vbase_v[a] / inj.v_base_v, np.nan)
    near = np.minimum(np.abs(v - inj.vminpu), np.abs(v - inj.vmaxpu)) < 2e-3
    near &= ~inj.is_pv & np.isin(inj.model, (3, 4, 6, 7))
    idx = np.flatnonzero(near)
    if idx.size == 0:
        return ""
    names = sorted({prob.net.loads.names[int(inj.element[j])] for j in idx})
    j = int(idx[0])
    return (
        f"; {len(names)} load(s) sit on a Vminpu/Vmaxpu zone boundary where their model "
        f"(model {int(inj.model[j])}) is discontinuous, as in OpenDSS, e.g. load.{names[0]} at "
        f"{v[j]:.4f} pu: the iteration oscillates between the two zones"
    )


def _slice(s: _Solved, sl: slice) -> _Solved:
    return _Solved(
        v=s.v[:, sl],
        iterations=s.iterations[sl],
        converged=s.converged[sl],
        max_dv_pu=s.max_dv_pu[sl],
    )


def _first_action(prob: _Problem, state: State, v: ComplexArray) -> int:
    """Index of the first column of ``v`` where any control wants to act (-1: none)."""
    net = prob.net
    taps, caps = state
    k = v.shape[1]
    first = k
    cap = net.capacitors
    if k <= 4:  # a few steps: the all-device samplers, step by step
        for j in range(k):
            vj = np.ascontiguousarray(v[:, j])
            if len(net.regulators) and any(ctl.regulators_pending(net, vj, taps)):
                return j
            if any(cap.control_type) and any(ctl.capacitors_pending(net, vj, list(caps))):
                return j
        return -1
    for r in range(len(net.regulators)):
        if first == 0:
            return 0
        acts = np.flatnonzero(ctl.regulator_pending_batch(net, r, v[:, :first], taps[r]) != 0)
        if acts.size:
            first = int(acts[0])
    if any(cap.control_type):
        for j in range(first):
            vj = np.ascontiguousarray(v[:, j])
            if any(ctl.capacitors_pending(net, vj, list(caps))):
                return j
    return first if first < k else -1
