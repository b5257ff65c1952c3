"""The fixed point of a few time steps, one after the other, in one compiled kernel.

The control iterations (:func:`gridflex.powerflow.timeseries._control_loop`) and the probes
after a control action solve one step at a time, usually through a low-rank (Woodbury) update
of an existing LU (:class:`gridflex.powerflow.linsolve.LowRankFactor`). Stated in NumPy
(``timeseries._fixed_point``), each of their ~8 fixed-point iterations crossed Python a dozen
times (load currents, triangular solve, correction, Anderson mixing, copies between them): most
of a controlled run's time. This kernel runs the whole iteration of a step without Python,
with scalar work vectors (the lane kernel :mod:`gridflex.powerflow.fused` holds 16 steps at a
time, 16x the work for one step).

Per iteration and step, the NumPy path's fixed point: the right-hand side
``I_src - C (i(V) - y_nom V)`` (same load models, ``injections._current``), the triangular
solves with the Woodbury correction ``x = y - Z (I + D Z_U)^-1 D y_U`` [1]_ between them
(``linsolve.woodbury_entries``), the change ``max |x - V| / V_base`` as the stopping test. The
mixing is Anderson acceleration of depth 2 [2]_ (real least squares over the last two residual
differences, depth 1 while the history is short or the two differences are nearly parallel,
coefficients bounded like the depth-1 one): one step at a time, the extra history costs little,
and it takes 7 % fewer iterations than depth 1 over a controlled 8500-node run. The answer is
the same fixed point to the tolerance; only the path to it differs from the lane kernel's. As in
the lane kernel, everything stays in the factor's own orders (a node's voltage at row
``perm_c[i]``, its right-hand side at row ``perm_r[i]``), so no pass permutes.

References
----------
.. [1] W. W. Hager, "Updating the inverse of a matrix", SIAM Review 31(2), 1989,
   doi:10.1137/1031049.
.. [2] H. F. Walker and P. Ni, "Anderson acceleration for fixed-point iterations", SIAM J.
   Numer. Anal. 49(4), 2011, doi:10.1137/10078356X.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from gridflex.powerflow.accel import _GAMMA_MAX
from gridflex.powerflow.injections import (
    _current,
    constant_power_current,
    constant_power_zones,
)
from gridflex.powerflow.linsolve import (
    FAST_MATH,
    backward_entries,
    forward_entries,
    woodbury_entries,
)

#: a depth-2 least-squares system this close to singular (relative to its diagonal) falls back
#: to depth 1: the two residual differences point the same way
_DET_MIN = 1e-8


@nb.njit(cache=True, nogil=True, fastmath=FAST_MATH)
def fixed_point_single(
    l_col: np.ndarray,
    l_row: np.ndarray,
    l_val: np.ndarray,
    ud: np.ndarray,
    u_col: np.ndarray,
    u_row: np.ndarray,
    u_val: np.ndarray,
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
    ra: np.ndarray,
    rb: np.ndarray,
    ca: np.ndarray,
    cb: np.ndarray,
    fast: np.ndarray,
    lo2: np.ndarray,
    hi2: np.ndarray,
    zf: np.ndarray,
    src_r: np.ndarray,
    src_i: np.ndarray,
    ivb: np.ndarray,
    s_ptr: np.ndarray,
    s_idx: np.ndarray,
    s_val: np.ndarray,
    r_ptr: np.ndarray,
    r_idx: np.ndarray,
    r_val: np.ndarray,
    z_cols: np.ndarray,
    md: np.ndarray,
    v_out: np.ndarray,
    iters: np.ndarray,
    conv: np.ndarray,
    last_dv: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Solve every column of ``v0`` (N x k) in turn; results in ``v_out``, ``iters``, ...

    ``l_col`` ... ``perm_c``: the factor as :meth:`~gridflex.powerflow.linsolve.Factor.
    single_arrays` gives it. ``ra`` ... ``ivb``: the factor's orders applied to the injectors,
    source and base voltages (:func:`kernel_setup`, made once per factor). The low-rank update
    (``LowRankFactor.update_arrays``): the basis columns ``z_cols`` of the sparse ``S``, ``R``
    and ``md = (I + D Z_U)^-1 D``, applied between the triangular solves; none (``z_cols``
    empty) for a plain LU. Stopping rules as the lane kernel: change below ``tol``
    (converged), ``max_iter`` iterations, or a non-finite change (diverged; ``last_dv`` = inf).
    """
    n, k = v0.shape
    n_inj = a.shape[0]
    v = np.zeros(n + 1, dtype=np.complex128)  # iterate (row n: ground)
    # right-hand side, then image (row n collects injections to ground)
    g = np.zeros(n + 1, dtype=np.complex128)
    src = np.empty(n, dtype=np.complex128)
    for i in range(n):
        src[i] = complex(src_r[i], src_i[i])
    # Anderson history: the last two images g and changes f (f_1, g_1 the newer)
    g1 = np.zeros(n, dtype=np.complex128)
    g2 = np.zeros(n, dtype=np.complex128)
    f1 = np.zeros(n, dtype=np.complex128)
    f2 = np.zeros(n, dtype=np.complex128)
    wl = np.empty(n_inj)
    ql = np.empty(n_inj)
    for t in range(k):
        for i in range(n):
            v[perm_c[i]] = v0[i, t]
        for j in range(n_inj):
            wl[j] = w[j, t]
            ql[j] = var[j, t]
        hist = 0  # iterations in the Anderson history (of this step)
        it = 0
        for i in range(n):  # the first right-hand side starts from the source
            g[i] = src[i]
        while True:
            it += 1
            for j in range(n_inj):
                vd = v[ca[j]] - v[cb[j]]
                dr = vd.real
                di = vd.imag
                v2 = dr * dr + di * di
                if fast[j] and v2 > lo2[j]:
                    pr, pi = constant_power_current(dr, di, v2, wl[j], ql[j], hi2[j], zf[j])
                    cur = complex(pr, pi)
                else:
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
                        wl[j],
                        ql[j],
                    )
                c = cur - y_nom[j] * vd
                g[ra[j]] -= c
                g[rb[j]] += c
            forward_entries(l_col, l_row, l_val, g)
            if z_cols.shape[0] > 0:
                woodbury_entries(s_ptr, s_idx, s_val, r_ptr, r_idx, r_val, z_cols, md, g)
            backward_entries(ud, u_col, u_row, u_val, g)
            # the image is in g: change f = (g - v) / V_base and the inner products of the
            # residual differences d1 = f - f_1, d2 = f_1 - f_2 (depth-2 Anderson)
            d2max = 0.0
            a11 = 0.0
            a12 = 0.0
            a22 = 0.0
            b1 = 0.0
            b2 = 0.0
            for i in range(n):
                s = ivb[i]
                e = (g[i] - v[i]) * s
                er = e.real
                ei = e.imag
                d2max = max(d2max, er * er + ei * ei)  # NaN shows in a11 (below)
                x1 = e - f1[i]
                x2 = f1[i] - f2[i]
                a11 += x1.real * x1.real + x1.imag * x1.imag
                a12 += x1.real * x2.real + x1.imag * x2.imag
                a22 += x2.real * x2.real + x2.imag * x2.imag
                b1 += x1.real * er + x1.imag * ei
                b2 += x2.real * er + x2.imag * ei
            d = np.sqrt(d2max) if np.isfinite(a11) else np.inf
            finite = d != np.inf
            done = finite and d < tol
            c1 = 0.0  # weights of (g - g_1) and (g_1 - g_2)
            c2 = 0.0
            if accelerate and hist >= 1 and not done and a11 > 0.0:
                det = a11 * a22 - a12 * a12
                if hist >= 2 and det > _DET_MIN * a11 * a22:
                    c1 = (a22 * b1 - a12 * b2) / det
                    c2 = (a11 * b2 - a12 * b1) / det
                else:
                    c1 = b1 / a11
                if not (np.isfinite(c1) and np.isfinite(c2)):
                    c1 = 0.0
                    c2 = 0.0
                c1 = min(max(c1, -_GAMMA_MAX), _GAMMA_MAX)
                c2 = min(max(c2, -_GAMMA_MAX), _GAMMA_MAX)
            for i in range(n):
                gi = g[i]
                fi = (gi - v[i]) * ivb[i]
                v[i] = gi - c1 * (gi - g1[i]) - c2 * (g1[i] - g2[i])
                f2[i] = f1[i]
                f1[i] = fi
                g2[i] = g1[i]
                g1[i] = gi
                g[i] = src[i]  # the next right-hand side starts from the source
            hist += 1
            if done or not finite or it >= max_iter:
                for i in range(n):
                    v_out[i, t] = v[perm_c[i]]
                iters[t] = it
                conv[t] = done
                last_dv[t] = d if finite else np.inf
                break


@nb.njit(cache=True, nogil=True)
def kernel_setup(
    perm_r: np.ndarray,
    perm_c: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    model: np.ndarray,
    vlow: np.ndarray,
    v95: np.ndarray,
    v105: np.ndarray,
    vb: np.ndarray,
    vmaxpu: np.ndarray,
    i_src: np.ndarray,
    inv_vb: np.ndarray,
) -> tuple[
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
]:  # pragma: no cover - compiled
    """The arrays :func:`fixed_point_single` takes in the factor's orders: injector rows of the
    right-hand side (``ra``, ``rb``; ``n`` = ground) and of the voltages (``ca``, ``cb``), the
    inline constant-PQ test, its zone bounds squared and the admittance per W above Vmaxpu
    (``zf``; :func:`~gridflex.powerflow.injections.constant_power_zones`), the source current
    (``src_r``,
    ``src_i``) and ``1 / V_base`` (``ivb``)."""
    n = perm_r.shape[0]
    n_inj = a.shape[0]
    ra = np.empty(n_inj, dtype=np.int64)
    rb = np.empty(n_inj, dtype=np.int64)
    ca = np.empty(n_inj, dtype=np.int64)
    cb = np.empty(n_inj, dtype=np.int64)
    for j in range(n_inj):
        ra[j] = perm_r[a[j]] if a[j] < n else n
        rb[j] = perm_r[b[j]] if b[j] < n else n
        ca[j] = perm_c[a[j]] if a[j] < n else n
        cb[j] = perm_c[b[j]] if b[j] < n else n
    fast, lo2, hi2, zf = constant_power_zones(model, vlow, v95, v105, vb, vmaxpu)
    src_r = np.zeros(n)
    src_i = np.zeros(n)
    ivb = np.empty(n)
    for i in range(n):
        src_r[perm_r[i]] = i_src[i].real
        src_i[perm_r[i]] = i_src[i].imag
        ivb[perm_c[i]] = inv_vb[i]
    return ra, rb, ca, cb, fast, lo2, hi2, zf, src_r, src_i, ivb
