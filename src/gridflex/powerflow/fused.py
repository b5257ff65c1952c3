"""The whole batched fixed point of one control state in one compiled kernel ("lanes").

:func:`gridflex.powerflow.timeseries._fixed_point` states the method in NumPy terms: per
iteration, the load currents of every step (``injection_rhs_for``), one triangular solve of
all steps (``Factor.solve_with_change``), depth-1 Anderson mixing with a real coefficient
(``accel.anderson_step``), converged steps drop out. This module runs exactly that iteration,
but inside one Numba function that holds ``LANES`` steps at a time in small (N x LANES)
real/imaginary work arrays (they stay in cache) and refills a lane with the next step as soon
as its step has converged, so no step pays for a slower neighbour and no Python runs between
iterations. ``LANES`` is a compile-time constant: the inner loops over the lanes unroll and
vectorise (a run-time width did not, and was 1.5-2x slower on the 8500-node feeder).

The arithmetic per step is the one of the NumPy path (same load models through
``injections._current``, same Anderson coefficient, same stopping rule), so both give the same
voltages to rounding; ``tests/powerflow/test_fused.py`` checks it.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from gridflex.powerflow.accel import _GAMMA_MAX
from gridflex.powerflow.guess import hermite_weights
from gridflex.powerflow.injections import _current, constant_power_current
from gridflex.powerflow.linsolve import FAST_MATH
from gridflex.powerflow.single_step import kernel_setup

#: steps solved side by side (compile-time constant, see the module docstring)
LANES = 16
#: the spline arguments of :func:`fixed_point_lanes` when the starts come from ``v0``
NO_SPLINE = (np.zeros(0), np.zeros((0, 4, 0)), np.zeros(0))


@nb.njit(cache=True, nogil=True, fastmath=FAST_MATH)
def fixed_point_lanes(
    l_ptr: np.ndarray,
    l_idx: np.ndarray,
    l_re: np.ndarray,
    l_im: np.ndarray,
    u_ptr: np.ndarray,
    u_idx: np.ndarray,
    u_re: np.ndarray,
    u_im: np.ndarray,
    ud_re: np.ndarray,
    ud_im: np.ndarray,
    perm_r: np.ndarray,
    perm_c: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    model: np.ndarray,
    vb: np.ndarray,
    vlow: np.ndarray,
    v95: np.ndarray,
    v105: np.ndarray,
    vminpu: np.ndarray,
    vmaxpu: np.ndarray,
    cvrw: np.ndarray,
    cvrv: np.ndarray,
    varbase: np.ndarray,
    w: np.ndarray,
    var: np.ndarray,
    y_nom: np.ndarray,
    i_src: np.ndarray,
    inv_vb: np.ndarray,
    v0: np.ndarray,
    g_knots: np.ndarray,
    g_data: np.ndarray,
    g_level: np.ndarray,
    tol: float,
    max_iter: int,
    accelerate: bool,
    v_out: np.ndarray,
    iters: np.ndarray,
    conv: np.ndarray,
    last_dv: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Solve ``k`` steps; results in ``v_out`` (N x k), ``iters``, ``conv``, ``last_dv``.

    A step's start is column ``t`` of ``v0`` (N x k) or, when ``g_knots`` holds two or more
    knots, the cubic spline of :class:`gridflex.powerflow.guess.SplineGuess` evaluated at
    ``g_level[t]`` (``g_data``: its ``knot_data``, K x 4 x N in the factor's solution order), so
    no N x k start array is ever built.

    A column stops when its largest voltage change is below ``tol`` (converged), after
    ``max_iter`` iterations, or when the change is not finite (diverged; ``last_dv`` = inf).
    """
    n = v_out.shape[0]
    k = iters.shape[0]
    nk = g_knots.shape[0]
    n_inj = a.shape[0]
    m = LANES
    # Everything runs in the factor's own orders, so no pass permutes: a node's voltage lives
    # at row perm_c[i] of the lane arrays (where the triangular solve leaves x_i), and its
    # right-hand side is assembled at row perm_r[i] (where the solve expects b_i).
    ra, rb, ca, cb, fast, lo2, hi2, zf, src_r, src_i, ivb = kernel_setup(
        perm_r, perm_c, a, b, model, vlow, v95, v105, vb, vmaxpu, i_src, inv_vb
    )
    # lane state (one extra zero row stands for ground): iterate, Anderson history, solve work
    vr = np.zeros((n + 1, m))
    vi = np.zeros((n + 1, m))
    gpr = np.zeros((n, m))
    gpi = np.zeros((n, m))
    fpr = np.zeros((n, m))
    fpi = np.zeros((n, m))
    wr = np.zeros((n + 1, m))
    wi = np.zeros((n + 1, m))
    col = np.full(m, -1, dtype=np.int64)  # step held by each lane (-1: idle)
    it = np.zeros(m, dtype=np.int64)
    have = np.zeros(m, dtype=np.bool_)
    dv = np.zeros(m)
    num = np.zeros(m)
    den = np.zeros(m)
    gam = np.zeros(m)
    tr = np.zeros(m)
    ti = np.zeros(m)
    wl = np.zeros(m)
    ql = np.zeros(m)
    for i in range(n):
        for c in range(m):
            wr[i, c] = src_r[i]
            wi[i, c] = src_i[i]
    fill = np.zeros(m, dtype=np.int64)  # lanes refilled (or finished) in this pass
    fq = np.zeros(m, dtype=np.int64)  # their spline interval
    fw = np.zeros((m, 4))  # and the Hermite weights of its knots' values and slopes
    ft = np.zeros(m, dtype=np.int64)  # their steps
    started = np.zeros(m, dtype=np.bool_)  # refilled lanes whose start is evaluated
    mask = np.zeros(m, dtype=np.bool_)
    hw = np.zeros((4, m))  # the weights of one interval's lanes, lane-contiguous
    nxt = 0
    busy = 0
    while True:
        # refill idle lanes with the next steps, all of them in one pass over the rows: a lane
        # is one value in each row of the (N x LANES) arrays, so one lane alone touches every
        # cache line of them (twice 8,531 lines on the 8500-node feeder); most lanes finish
        # in the same iteration, so most passes fill many lanes at once
        nf = 0
        for c in range(m):
            if col[c] < 0 and nxt < k:
                col[c] = nxt
                it[c] = 0
                have[c] = False
                fill[nf] = c
                ft[nf] = nxt
                if nk >= 2:
                    x = min(max(g_level[nxt], g_knots[0]), g_knots[nk - 1])
                    q = min(max(np.searchsorted(g_knots, x) - 1, 0), nk - 2)
                    fq[nf] = q
                    fw[nf, 0], fw[nf, 1], fw[nf, 2], fw[nf, 3] = hermite_weights(g_knots, q, x)
                nf += 1
                nxt += 1
                busy += 1
        if nf:
            if nk >= 2:
                # the steps come sorted by level, so the new lanes mostly share one or two
                # spline intervals: per interval, one pass over the rows evaluates all 16
                # lanes (the lane loop vectorises; lanes of other intervals keep their
                # values), 530 -> 77 us for 13 lanes on the 8500-node feeder against a pass
                # per lane
                for f in range(nf):
                    started[f] = False
                for f0 in range(nf):
                    if started[f0]:
                        continue
                    q = fq[f0]
                    for c in range(m):
                        mask[c] = False
                        for e in range(4):
                            hw[e, c] = 0.0
                    for f in range(f0, nf):
                        if fq[f] == q:
                            started[f] = True
                            mask[fill[f]] = True
                            for e in range(4):
                                hw[e, fill[f]] = fw[f, e]
                    for r in range(n):  # the two knots' values and slopes, weighted
                        y0r = g_data[q, 0, r]
                        y0i = g_data[q, 1, r]
                        s0r = g_data[q, 2, r]
                        s0i = g_data[q, 3, r]
                        y1r = g_data[q + 1, 0, r]
                        y1i = g_data[q + 1, 1, r]
                        s1r = g_data[q + 1, 2, r]
                        s1i = g_data[q + 1, 3, r]
                        for c in range(m):
                            xr = hw[0, c] * y0r + hw[1, c] * s0r + hw[2, c] * y1r
                            xi = hw[0, c] * y0i + hw[1, c] * s0i + hw[2, c] * y1i
                            xr += hw[3, c] * s1r
                            xi += hw[3, c] * s1i
                            vr[r, c] = xr if mask[c] else vr[r, c]
                            vi[r, c] = xi if mask[c] else vi[r, c]
            else:
                for i in range(n):
                    r = perm_c[i]
                    for f in range(nf):
                        z = v0[i, ft[f]]
                        vr[r, fill[f]] = z.real
                        vi[r, fill[f]] = z.imag
        if busy == 0:
            break
        # right-hand side I_src - C (i(V) - y_nom (V_a - V_b)), assembled in place (the
        # source term was put there by the previous iteration's last pass)
        for j in range(n_inj):
            ja = ca[j]
            jb = cb[j]
            pa = ra[j]
            pb = rb[j]
            ynr = y_nom[j].real
            yni = y_nom[j].imag
            for c in range(m):
                t = col[c]
                if t < 0:
                    t = 0
                wl[c] = w[j, t]
                ql[c] = var[j, t]
            for c in range(m):
                dr = vr[ja, c] - vr[jb, c]
                di = vi[ja, c] - vi[jb, c]
                v2 = dr * dr + di * di
                if fast[j] and v2 > lo2[j]:
                    pr, pi = constant_power_current(dr, di, v2, wl[c], ql[c], hi2[j], zf[j])
                    cr = pr - (ynr * dr - yni * di)
                    ci = pi - (ynr * di + yni * dr)
                else:
                    cur = _current(
                        complex(dr, di),
                        model[j],
                        vb[j],
                        vlow[j],
                        v95[j],
                        v105[j],
                        vminpu[j],
                        vmaxpu[j],
                        cvrw[j],
                        cvrv[j],
                        varbase[j],
                        wl[c],
                        ql[c],
                    )
                    cr = cur.real - (ynr * dr - yni * di)
                    ci = cur.imag - (ynr * di + yni * dr)
                wr[pa, c] -= cr
                wi[pa, c] -= ci
                wr[pb, c] += cr
                wi[pb, c] += ci
        # triangular solves in place (row n, ground, collects the injections to ground)
        for jj in range(n):
            for c in range(m):
                tr[c] = wr[jj, c]
                ti[c] = wi[jj, c]
            for p in range(l_ptr[jj], l_ptr[jj + 1]):
                i = l_idx[p]
                ar = l_re[p]
                ai = l_im[p]
                for c in range(m):
                    wr[i, c] -= ar * tr[c] - ai * ti[c]
                    wi[i, c] -= ar * ti[c] + ai * tr[c]
        for c in range(m):
            dv[c] = 0.0
            num[c] = 0.0
            den[c] = 0.0
        for jj in range(n - 1, -1, -1):
            dr = ud_re[jj]
            di = ud_im[jj]
            for c in range(m):
                xr = wr[jj, c]
                xi = wi[jj, c]
                tr[c] = dr * xr - di * xi
                ti[c] = dr * xi + di * xr
                wr[jj, c] = tr[c]
                wi[jj, c] = ti[c]
            if not accelerate:
                # row jj of the image is final here: its change is taken now, and the old
                # iterate's row, which becomes the next right-hand side (the swap below), is
                # reset to the source term while it is in cache (two passes over the N x LANES
                # arrays less per iteration)
                s = ivb[jj]
                sr = src_r[jj]
                si = src_i[jj]
                for c in range(m):
                    er = (tr[c] - vr[jj, c]) * s
                    ei = (ti[c] - vi[jj, c]) * s
                    e2 = er * er + ei * ei
                    dv[c] = max(dv[c], e2)
                    den[c] += e2  # only to show a NaN
                    vr[jj, c] = sr
                    vi[jj, c] = si
            for p in range(u_ptr[jj], u_ptr[jj + 1]):
                i = u_idx[p]
                ar = u_re[p]
                ai = u_im[p]
                for c in range(m):
                    wr[i, c] -= ar * tr[c] - ai * ti[c]
                    wi[i, c] -= ar * ti[c] + ai * tr[c]
        # the image g is now in wr/wi (solution order): change and Anderson coefficient (the
        # plain iteration took its change in the backward solve)
        if accelerate:
            for i in range(n):
                s = ivb[i]
                for c in range(m):
                    er = (wr[i, c] - vr[i, c]) * s
                    ei = (wi[i, c] - vi[i, c]) * s
                    dv[c] = max(dv[c], er * er + ei * ei)  # NaN shows in den (below)
                    dr_ = er - fpr[i, c]
                    di_ = ei - fpi[i, c]
                    num[c] += dr_ * er + di_ * ei
                    den[c] += dr_ * dr_ + di_ * di_
        stop_any = False
        for c in range(m):
            # a non-finite change makes the sum of squares non-finite
            dv[c] = np.sqrt(dv[c]) if np.isfinite(den[c]) else np.inf
            gam[c] = 0.0
            t = col[c]
            if t < 0:
                continue
            it[c] += 1
            d = dv[c]
            finite = d <= np.inf and d != np.inf
            done = finite and d < tol
            if accelerate and have[c] and not done and den[c] > 0.0:
                gm = num[c] / den[c]
                if gm != gm:
                    gm = 0.0
                gam[c] = min(max(gm, -_GAMMA_MAX), _GAMMA_MAX)
            if done or not finite or it[c] >= max_iter:
                stop_any = True
        # next iterate: Anderson mix (plain image for fresh or finished lanes)
        if accelerate:
            for i in range(n):
                s = ivb[i]
                for c in range(m):
                    gr = wr[i, c]
                    gi = wi[i, c]
                    g_ = gam[c]
                    fpr[i, c] = (gr - vr[i, c]) * s
                    fpi[i, c] = (gi - vi[i, c]) * s
                    vr[i, c] = gr - g_ * (gr - gpr[i, c])
                    vi[i, c] = gi - g_ * (gi - gpi[i, c])
                    gpr[i, c] = gr
                    gpi[i, c] = gi
                    wr[i, c] = src_r[i]  # the next right-hand side starts from the source
                    wi[i, c] = src_i[i]
        else:
            # the image is the next iterate: swap the arrays instead of copying (row n is
            # ground in vr, the ground injections' sink in wr; the other rows of the new wr
            # hold the source term already, put there by the backward solve)
            vr, wr = wr, vr
            vi, wi = wi, vi
            for c in range(m):
                vr[n, c] = 0.0
                vi[n, c] = 0.0
        for c in range(m):
            have[c] = True
        if stop_any:
            # finished lanes leave together, in one pass over the rows (see the refill)
            nf = 0
            for c in range(m):
                t = col[c]
                if t < 0:
                    continue
                d = dv[c]
                finite = d <= np.inf and d != np.inf
                done = finite and d < tol
                if done or not finite or it[c] >= max_iter:
                    fill[nf] = c
                    ft[nf] = t
                    nf += 1
                    iters[t] = it[c]
                    conv[t] = done
                    last_dv[t] = d if finite else np.inf
                    col[c] = -1
                    busy -= 1
            for i in range(n):
                r = perm_c[i]
                for f in range(nf):
                    c = fill[f]
                    v_out[i, ft[f]] = complex(vr[r, c], vi[r, c])
