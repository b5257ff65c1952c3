"""Anderson acceleration (depth 1, real mixing coefficient) for the batched fixed point.

The load currents depend on ``conj(V)``, so the fixed-point error map is real-linear, not
complex-linear: the mixing coefficient is fitted in the real inner product of (Re, Im) pairs.
One fused pass per column block, rows outer and the block's columns inner (contiguous).

References
----------
.. [1] H. F. Walker and P. Ni, "Anderson acceleration for fixed-point iterations", SIAM J.
   Numer. Anal. 49(4), 2011, doi:10.1137/10078356X.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt

#: bound on the mixing coefficient (a safeguard against a near-zero residual difference)
_GAMMA_MAX = 10.0
_BLOCK = 32


@nb.njit(cache=True, nogil=True)
def _block(
    va: np.ndarray,
    g: np.ndarray,
    gp: np.ndarray,
    fp: np.ndarray,
    hp: np.ndarray,
    done: np.ndarray,
    inv_vb: np.ndarray,
    nxt: np.ndarray,
    c0: int,
    c1: int,
) -> None:  # pragma: no cover - compiled
    n = va.shape[0]
    m = c1 - c0
    num = np.zeros(m)
    den = np.zeros(m)
    for i in range(n):
        s = inv_vb[i]
        for c in range(m):
            cc = c0 + c
            fr = (g[i, cc].real - va[i, cc].real) * s
            fi = (g[i, cc].imag - va[i, cc].imag) * s
            dr = fr - fp[i, cc].real
            di = fi - fp[i, cc].imag
            num[c] += dr * fr + di * fi
            den[c] += dr * dr + di * di
    gamma = np.zeros(m)
    for c in range(m):
        cc = c0 + c
        if hp[cc] and not done[cc] and den[c] > 0.0:
            gm = num[c] / den[c]
            if gm != gm:
                gm = 0.0
            gamma[c] = min(max(gm, -_GAMMA_MAX), _GAMMA_MAX)
    for i in range(n):
        s = inv_vb[i]
        for c in range(m):
            cc = c0 + c
            gi = g[i, cc]
            nxt[i, cc] = gi - gamma[c] * (gi - gp[i, cc])
            fp[i, cc] = (gi - va[i, cc]) * s
            gp[i, cc] = gi


@nb.njit(cache=True, parallel=True)
def _anderson_parallel(
    va: np.ndarray,
    g: np.ndarray,
    gp: np.ndarray,
    fp: np.ndarray,
    hp: np.ndarray,
    done: np.ndarray,
    inv_vb: np.ndarray,
    nxt: np.ndarray,
) -> None:  # pragma: no cover - compiled
    k = va.shape[1]
    nblocks = (k + _BLOCK - 1) // _BLOCK
    for blk in nb.prange(nblocks):
        c0 = blk * _BLOCK
        _block(va, g, gp, fp, hp, done, inv_vb, nxt, c0, min(k, c0 + _BLOCK))


@nb.njit(cache=True, nogil=True)
def _anderson_serial(
    va: np.ndarray,
    g: np.ndarray,
    gp: np.ndarray,
    fp: np.ndarray,
    hp: np.ndarray,
    done: np.ndarray,
    inv_vb: np.ndarray,
    nxt: np.ndarray,
) -> None:  # pragma: no cover - compiled
    _block(va, g, gp, fp, hp, done, inv_vb, nxt, 0, va.shape[1])


def anderson_step(
    va: npt.NDArray[np.complex128],
    g: npt.NDArray[np.complex128],
    g_prev: npt.NDArray[np.complex128],
    f_prev: npt.NDArray[np.complex128],
    have_prev: npt.NDArray[np.bool_],
    done: npt.NDArray[np.bool_],
    inv_vb: npt.NDArray[np.float64],
) -> npt.NDArray[np.complex128]:
    """Next iterate from ``va`` and its image ``g``; updates ``g_prev``/``f_prev`` in place.

    Columns without history, or already converged (``done``), take the plain image ``g``.
    """
    nxt = np.empty_like(g)
    kernel = _anderson_parallel if va.shape[1] > 2 * _BLOCK else _anderson_serial
    kernel(va, g, g_prev, f_prev, have_prev, done, inv_vb, nxt)
    return nxt
