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
from gridflex.powerflow.injections import _current

#: steps solved side by side (compile-time constant, see the module docstring)
LANES = 16
#: reassociation and fused multiply-add only: NaN/inf stay IEEE (divergence is detected by them)
_FAST = {"contract", "reassoc", "nsz", "arcp"}


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
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
    tol: float,
    max_iter: int,
    accelerate: bool,
    v_out: np.ndarray,
    iters: np.ndarray,
    conv: np.ndarray,
    last_dv: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Solve every column of ``v0`` (N x k); results in ``v_out``, ``iters``, ``conv``, ``last_dv``.

    A column stops when its largest voltage change is below ``tol`` (converged), after
    ``max_iter`` iterations, or when the change is not finite (diverged; ``last_dv`` = inf).
    """
    n, k = v0.shape
    n_inj = a.shape[0]
    m = LANES
    # lane state: present iterate, Anderson history, work arrays of the triangular solve
    vr = np.zeros((n, m))
    vi = np.zeros((n, m))
    gpr = np.zeros((n, m))
    gpi = np.zeros((n, m))
    fpr = np.zeros((n, m))
    fpi = np.zeros((n, m))
    wr = np.zeros((n, m))
    wi = np.zeros((n, m))
    br = np.zeros((n, m))
    bi = np.zeros((n, m))
    col = np.full(m, -1, dtype=np.int64)  # step held by each lane (-1: idle)
    it = np.zeros(m, dtype=np.int64)
    have = np.zeros(m, dtype=np.bool_)
    dv = np.zeros(m)
    num = np.zeros(m)
    den = np.zeros(m)
    gam = np.zeros(m)
    tr = np.zeros(m)
    ti = np.zeros(m)
    nxt = 0
    busy = 0
    while True:
        # refill idle lanes with the next steps
        for c in range(m):
            if col[c] < 0 and nxt < k:
                col[c] = nxt
                it[c] = 0
                have[c] = False
                for i in range(n):
                    z = v0[i, nxt]
                    vr[i, c] = z.real
                    vi[i, c] = z.imag
                nxt += 1
                busy += 1
        if busy == 0:
            break
        # right-hand side: I_src - C (i(V) - y_nom (V_a - V_b)), per lane
        for i in range(n):
            s = i_src[i]
            for c in range(m):
                br[i, c] = s.real
                bi[i, c] = s.imag
        for j in range(n_inj):
            ia = a[j]
            ib = b[j]
            yn = y_nom[j]
            for c in range(m):
                t = col[c]
                if t < 0:
                    continue
                vd = 0j
                if ia < n:
                    vd += complex(vr[ia, c], vi[ia, c])
                if ib < n:
                    vd -= complex(vr[ib, c], vi[ib, c])
                cur = _current(
                    vd,
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
                    w[j, t],
                    var[j, t],
                )
                net_i = cur - yn * vd
                if ia < n:
                    br[ia, c] -= net_i.real
                    bi[ia, c] -= net_i.imag
                if ib < n:
                    br[ib, c] += net_i.real
                    bi[ib, c] += net_i.imag
        # triangular solves, Pr on the way in
        for i in range(n):
            r = perm_r[i]
            for c in range(m):
                wr[r, c] = br[i, c]
                wi[r, c] = bi[i, c]
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
            for p in range(u_ptr[jj], u_ptr[jj + 1]):
                i = u_idx[p]
                ar = u_re[p]
                ai = u_im[p]
                for c in range(m):
                    wr[i, c] -= ar * tr[c] - ai * ti[c]
                    wi[i, c] -= ar * ti[c] + ai * tr[c]
        # image g (Pc on the way out, into br/bi), change, Anderson coefficient
        for c in range(m):
            dv[c] = 0.0
            num[c] = 0.0
            den[c] = 0.0
        for i in range(n):
            r = perm_c[i]
            s = inv_vb[i]
            for c in range(m):
                gr = wr[r, c]
                gi = wi[r, c]
                br[i, c] = gr
                bi[i, c] = gi
                er = gr - vr[i, c]
                ei = gi - vi[i, c]
                dd = np.sqrt(er * er + ei * ei) * s
                if dd > dv[c] or dd != dd:
                    dv[c] = dd
                fr = er * s
                fi = ei * s
                dr_ = fr - fpr[i, c]
                di_ = fi - fpi[i, c]
                num[c] += dr_ * fr + di_ * fi
                den[c] += dr_ * dr_ + di_ * di_
        stop_any = False
        for c in range(m):
            gam[c] = 0.0
            t = col[c]
            if t < 0:
                continue
            it[c] += 1
            d = dv[c]
            done = d < tol
            bad = not (d <= np.inf)  # NaN
            if d == np.inf:
                bad = True
            if accelerate and have[c] and not done and den[c] > 0.0:
                gm = num[c] / den[c]
                if gm != gm:
                    gm = 0.0
                gam[c] = min(max(gm, -_GAMMA_MAX), _GAMMA_MAX)
            if done or bad or it[c] >= max_iter:
                stop_any = True
        # next iterate: Anderson mix (plain image for fresh or finished lanes)
        for i in range(n):
            s = inv_vb[i]
            for c in range(m):
                gr = br[i, c]
                gi = bi[i, c]
                g_ = gam[c]
                nr = gr - g_ * (gr - gpr[i, c])
                ni = gi - g_ * (gi - gpi[i, c])
                fpr[i, c] = (gr - vr[i, c]) * s
                fpi[i, c] = (gi - vi[i, c]) * s
                gpr[i, c] = gr
                gpi[i, c] = gi
                vr[i, c] = nr
                vi[i, c] = ni
        for c in range(m):
            have[c] = True
        if stop_any:
            for c in range(m):
                t = col[c]
                if t < 0:
                    continue
                d = dv[c]
                finite = d <= np.inf and d != np.inf
                done = finite and d < tol
                if done or not finite or it[c] >= max_iter:
                    for i in range(n):
                        v_out[i, t] = complex(vr[i, c], vi[i, c])
                    iters[t] = it[c]
                    conv[t] = done
                    last_dv[t] = d if finite else np.inf
                    col[c] = -1
                    busy -= 1
