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
(``linsolve.woodbury_one``), the change ``max |x - V| / V_base`` as the stopping test. The
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
from gridflex.powerflow.linsolve import backward_one, forward_one, woodbury_one

#: a depth-2 least-squares system this close to singular (relative to its diagonal) falls back
#: to depth 1: the two residual differences point the same way
_DET_MIN = 1e-8
#: reassociation and fused multiply-add only: NaN/inf stay IEEE (divergence is detected by them)
_FAST = {"contract", "reassoc", "nsz", "arcp"}


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def fixed_point_single(
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
    s_re: np.ndarray,
    s_im: np.ndarray,
    r_ptr: np.ndarray,
    r_idx: np.ndarray,
    r_re: np.ndarray,
    r_im: np.ndarray,
    z_cols: np.ndarray,
    md: np.ndarray,
    v_out: np.ndarray,
    iters: np.ndarray,
    conv: np.ndarray,
    last_dv: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Solve every column of ``v0`` (N x k) in turn; results in ``v_out``, ``iters``, ...

    ``ra`` ... ``ivb``: the factor's orders applied to the injectors, source and base voltages
    (:func:`kernel_setup`, made once per factor). The low-rank update
    (``LowRankFactor.update_arrays``): the basis columns ``z_cols`` of the
    sparse ``S``, ``R`` and ``md = (I + D Z_U)^-1 D``, applied between the triangular solves;
    none (``z_cols`` empty) for a plain LU. Stopping rules as the lane kernel: change below
    ``tol`` (converged), ``max_iter`` iterations, or a non-finite change (diverged; ``last_dv``
    = inf).
    """
    n, k = v0.shape
    n_inj = a.shape[0]
    vr = np.zeros(n + 1)  # iterate (row n: ground)
    vi = np.zeros(n + 1)
    wr = np.zeros(n + 1)  # right-hand side, then image (row n collects injections to ground)
    wi = np.zeros(n + 1)
    # Anderson history: the last two images g and changes f (f_1, g_1 the newer)
    g1r = np.zeros(n)
    g1i = np.zeros(n)
    g2r = np.zeros(n)
    g2i = np.zeros(n)
    f1r = np.zeros(n)
    f1i = np.zeros(n)
    f2r = np.zeros(n)
    f2i = np.zeros(n)
    wl = np.empty(n_inj)
    ql = np.empty(n_inj)
    for t in range(k):
        for i in range(n):
            z = v0[i, t]
            vr[perm_c[i]] = z.real
            vi[perm_c[i]] = z.imag
        for j in range(n_inj):
            wl[j] = w[j, t]
            ql[j] = var[j, t]
        hist = 0  # iterations in the Anderson history (of this step)
        it = 0
        for i in range(n):  # the first right-hand side starts from the source
            wr[i] = src_r[i]
            wi[i] = src_i[i]
        while True:
            it += 1
            for j in range(n_inj):
                ja = ca[j]
                jb = cb[j]
                dr = vr[ja] - vr[jb]
                di = vi[ja] - vi[jb]
                v2 = dr * dr + di * di
                ynr = y_nom[j].real
                yni = y_nom[j].imag
                if fast[j] and v2 > lo2[j]:
                    pr, pi = constant_power_current(dr, di, v2, wl[j], ql[j], hi2[j], zf[j])
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
                        wl[j],
                        ql[j],
                    )
                    cr = cur.real - (ynr * dr - yni * di)
                    ci = cur.imag - (ynr * di + yni * dr)
                wr[ra[j]] -= cr
                wi[ra[j]] -= ci
                wr[rb[j]] += cr
                wi[rb[j]] += ci
            forward_one(l_ptr, l_idx, l_re, l_im, wr, wi)
            if z_cols.shape[0] > 0:
                woodbury_one(s_ptr, s_idx, s_re, s_im, r_ptr, r_idx, r_re, r_im, z_cols, md, wr, wi)
            backward_one(u_ptr, u_idx, u_re, u_im, ud_re, ud_im, wr, wi)
            # the image g is in wr/wi: change f = (g - v) / V_base and the inner products of
            # the residual differences d1 = f - f_1, d2 = f_1 - f_2 (depth-2 Anderson)
            d2max = 0.0
            a11 = 0.0
            a12 = 0.0
            a22 = 0.0
            b1 = 0.0
            b2 = 0.0
            for i in range(n):
                s = ivb[i]
                er = (wr[i] - vr[i]) * s
                ei = (wi[i] - vi[i]) * s
                d2max = max(d2max, er * er + ei * ei)  # NaN shows in a11 (below)
                x1r = er - f1r[i]
                x1i = ei - f1i[i]
                x2r = f1r[i] - f2r[i]
                x2i = f1i[i] - f2i[i]
                a11 += x1r * x1r + x1i * x1i
                a12 += x1r * x2r + x1i * x2i
                a22 += x2r * x2r + x2i * x2i
                b1 += x1r * er + x1i * ei
                b2 += x2r * er + x2i * ei
            d = np.sqrt(d2max) if np.isfinite(a11) else np.inf
            finite = d != np.inf
            done = finite and d < tol
            g1 = 0.0  # weights of (g - g_1) and (g_1 - g_2)
            g2 = 0.0
            if accelerate and hist >= 1 and not done and a11 > 0.0:
                det = a11 * a22 - a12 * a12
                if hist >= 2 and det > _DET_MIN * a11 * a22:
                    g1 = (a22 * b1 - a12 * b2) / det
                    g2 = (a11 * b2 - a12 * b1) / det
                else:
                    g1 = b1 / a11
                if not (np.isfinite(g1) and np.isfinite(g2)):
                    g1 = 0.0
                    g2 = 0.0
                g1 = min(max(g1, -_GAMMA_MAX), _GAMMA_MAX)
                g2 = min(max(g2, -_GAMMA_MAX), _GAMMA_MAX)
            for i in range(n):
                s = ivb[i]
                gr = wr[i]
                gi = wi[i]
                fr = (gr - vr[i]) * s
                fi = (gi - vi[i]) * s
                vr[i] = gr - g1 * (gr - g1r[i]) - g2 * (g1r[i] - g2r[i])
                vi[i] = gi - g1 * (gi - g1i[i]) - g2 * (g1i[i] - g2i[i])
                f2r[i] = f1r[i]
                f2i[i] = f1i[i]
                f1r[i] = fr
                f1i[i] = fi
                g2r[i] = g1r[i]
                g2i[i] = g1i[i]
                g1r[i] = gr
                g1i[i] = gi
                wr[i] = src_r[i]  # the next right-hand side starts from the source
                wi[i] = src_i[i]
            hist += 1
            if done or not finite or it >= max_iter:
                for i in range(n):
                    r = perm_c[i]
                    v_out[i, t] = complex(vr[r], vi[r])
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
