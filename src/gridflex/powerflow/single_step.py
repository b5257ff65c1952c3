"""The fixed point of a few time steps, one after the other, in one compiled kernel.

The control iterations (:func:`gridflex.powerflow.timeseries._control_loop`) and the probes
after a control action solve one step at a time, usually through a low-rank (Woodbury) update
of an existing LU (:class:`gridflex.powerflow.linsolve.LowRankFactor`). Stated in NumPy
(``timeseries._fixed_point``), each of their ~8 fixed-point iterations crossed Python a dozen
times (load currents, triangular solve, correction, Anderson mixing, copies between them): most
of a controlled run's time. This kernel runs the whole iteration of a step without Python,
with scalar work vectors (the lane kernel :mod:`gridflex.powerflow.fused` holds 16 steps at a
time, 16x the work for one step).

Per iteration and step, exactly the NumPy path's arithmetic: the right-hand side
``I_src - C (i(V) - y_nom V)`` (same load models, ``injections._current``), the triangular
solves with the Woodbury correction ``x = y - Z (I + D Z_U)^-1 D y_U`` [1]_ between them
(``linsolve.woodbury_one``),
the change ``max |x - V| / V_base``, depth-1 Anderson mixing with a real coefficient [2]_. As in
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
from gridflex.powerflow.injections import _current
from gridflex.powerflow.linsolve import backward_one, forward_one, woodbury_one

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

    The low-rank update (``LowRankFactor.update_arrays``): the basis columns ``z_cols`` of the
    sparse ``S``, ``R`` and ``md = (I + D Z_U)^-1 D``, applied between the triangular solves;
    none (``z_cols`` empty) for a plain LU. Stopping rules as the lane kernel: change below
    ``tol`` (converged), ``max_iter`` iterations, or a non-finite change (diverged; ``last_dv``
    = inf).
    """
    n, k = v0.shape
    n_inj = a.shape[0]
    ra = np.empty(n_inj, dtype=np.int64)
    rb = np.empty(n_inj, dtype=np.int64)
    ca = np.empty(n_inj, dtype=np.int64)
    cb = np.empty(n_inj, dtype=np.int64)
    fast = np.empty(n_inj, dtype=np.bool_)
    lo2 = np.empty(n_inj)
    hi2 = np.empty(n_inj)
    for j in range(n_inj):
        ra[j] = perm_r[a[j]] if a[j] < n else n
        rb[j] = perm_r[b[j]] if b[j] < n else n
        ca[j] = perm_c[a[j]] if a[j] < n else n
        cb[j] = perm_c[b[j]] if b[j] < n else n
        fast[j] = model[j] == 1 or model[j] == 101
        lo = max(v95[j], vlow[j])
        lo2[j] = lo * lo
        hi2[j] = v105[j] * v105[j]
    src_r = np.zeros(n)
    src_i = np.zeros(n)
    ivb = np.empty(n)
    for i in range(n):
        src_r[perm_r[i]] = i_src[i].real
        src_i[perm_r[i]] = i_src[i].imag
        ivb[perm_c[i]] = inv_vb[i]
    vr = np.zeros(n + 1)  # iterate (row n: ground)
    vi = np.zeros(n + 1)
    wr = np.zeros(n + 1)  # right-hand side, then image (row n collects injections to ground)
    wi = np.zeros(n + 1)
    gpr = np.zeros(n)
    gpi = np.zeros(n)
    fpr = np.zeros(n)
    fpi = np.zeros(n)
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
        have = False
        it = 0
        while True:
            it += 1
            for i in range(n):
                wr[i] = src_r[i]
                wi[i] = src_i[i]
            for j in range(n_inj):
                ja = ca[j]
                jb = cb[j]
                dr = vr[ja] - vr[jb]
                di = vi[ja] - vi[jb]
                v2 = dr * dr + di * di
                ynr = y_nom[j].real
                yni = y_nom[j].imag
                if fast[j] and v2 > lo2[j] and v2 <= hi2[j]:
                    inv = 1.0 / v2
                    cr = (wl[j] * dr + ql[j] * di) * inv - (ynr * dr - yni * di)
                    ci = (wl[j] * di - ql[j] * dr) * inv - (ynr * di + yni * dr)
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
            # the image g is in wr/wi: change and Anderson coefficient
            d2 = 0.0
            num = 0.0
            den = 0.0
            for i in range(n):
                s = ivb[i]
                er = (wr[i] - vr[i]) * s
                ei = (wi[i] - vi[i]) * s
                d2 = max(d2, er * er + ei * ei)  # NaN shows in den (below)
                dr_ = er - fpr[i]
                di_ = ei - fpi[i]
                num += dr_ * er + di_ * ei
                den += dr_ * dr_ + di_ * di_
            d = np.sqrt(d2) if np.isfinite(den) else np.inf
            finite = d != np.inf
            done = finite and d < tol
            gam = 0.0
            if accelerate and have and not done and den > 0.0:
                gm = num / den
                if gm != gm:
                    gm = 0.0
                gam = min(max(gm, -_GAMMA_MAX), _GAMMA_MAX)
            for i in range(n):
                s = ivb[i]
                gr = wr[i]
                gi = wi[i]
                fpr[i] = (gr - vr[i]) * s
                fpi[i] = (gi - vi[i]) * s
                vr[i] = gr - gam * (gr - gpr[i])
                vi[i] = gi - gam * (gi - gpi[i])
                gpr[i] = gr
                gpi[i] = gi
            have = True
            if done or not finite or it >= max_iter:
                for i in range(n):
                    r = perm_c[i]
                    v_out[i, t] = complex(vr[r], vi[r])
                iters[t] = it
                conv[t] = done
                last_dv[t] = d if finite else np.inf
                break
