"""Sparse LU factorisation of the complex node admittance, solved for many right-hand sides.

One factorisation serves every time step of a control state. SuperLU
(``scipy.sparse.linalg.splu``, minimum-degree ordering on ``A^T + A``, which suits radial
feeders: little fill) computes the factors; the triangular solves run in a small Numba kernel
that sweeps each factor column once for *all* right-hand sides, with the time axis contiguous in
memory. SuperLU's own multi-RHS solve handles the tiny supernodes of a radial feeder one BLAS
call at a time and is 20-50x slower here.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from gridflex.errors import InputError

ComplexArray = npt.NDArray[np.complex128]

#: columns per parallel block of the triangular solves
_BLOCK = 32


@nb.njit(cache=True, nogil=True)
def _lu_block(
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
    b: np.ndarray,
    x: np.ndarray,
    v_old: np.ndarray,
    inv_vb: np.ndarray,
    dv: np.ndarray,
    c0: int,
    c1: int,
) -> None:  # pragma: no cover - compiled
    """``x = Pc U^-1 L^-1 Pr b`` for columns ``c0:c1``; with ``v_old``, ``dv`` = max |dx| pu.

    Real and imaginary parts live in separate arrays so the inner loops over the block's
    columns are plain float64 multiply-adds. L is passed without its unit diagonal, U without
    its diagonal (applied as the inverse diagonal ``ud``).
    """
    n = b.shape[0]
    with_dv = v_old.shape[0] == n
    m = c1 - c0
    # block-local copies keep the working set (n x block) in cache; Pr applied on the way in
    wr = np.empty((n, m))
    wi = np.empty((n, m))
    for i in range(n):
        r = perm_r[i]
        for c in range(m):
            z = b[i, c0 + c]
            wr[r, c] = z.real
            wi[r, c] = z.imag
    for j in range(n):  # forward: unit lower L, column oriented
        for p in range(l_ptr[j], l_ptr[j + 1]):
            i = l_idx[p]
            ar = l_re[p]
            ai = l_im[p]
            for c in range(m):
                xr = wr[j, c]
                xi = wi[j, c]
                wr[i, c] -= ar * xr - ai * xi
                wi[i, c] -= ar * xi + ai * xr
    for j in range(n - 1, -1, -1):  # backward: upper U
        dr = ud_re[j]
        di = ud_im[j]
        for c in range(m):
            xr = wr[j, c]
            xi = wi[j, c]
            wr[j, c] = dr * xr - di * xi
            wi[j, c] = dr * xi + di * xr
        for p in range(u_ptr[j], u_ptr[j + 1]):
            i = u_idx[p]
            ar = u_re[p]
            ai = u_im[p]
            for c in range(m):
                xr = wr[j, c]
                xi = wi[j, c]
                wr[i, c] -= ar * xr - ai * xi
                wi[i, c] -= ar * xi + ai * xr
    for c in range(m):
        dv[c0 + c] = 0.0
    for i in range(n):  # Pc applied on the way out
        r = perm_c[i]
        for c in range(m):
            val = complex(wr[r, c], wi[r, c])
            x[i, c0 + c] = val
            if with_dv:
                dd = abs(val - v_old[i, c0 + c]) * inv_vb[i]
                if dd > dv[c0 + c] or dd != dd:
                    dv[c0 + c] = dd


@nb.njit(cache=True, parallel=True)
def _lu_solve_parallel(
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
    b: np.ndarray,
    x: np.ndarray,
    v_old: np.ndarray,
    inv_vb: np.ndarray,
    dv: np.ndarray,
    block: int,
) -> None:  # pragma: no cover - compiled
    k = b.shape[1]
    nblocks = (k + block - 1) // block
    for blk in nb.prange(nblocks):
        c0 = blk * block
        _lu_block(
            l_ptr,
            l_idx,
            l_re,
            l_im,
            u_ptr,
            u_idx,
            u_re,
            u_im,
            ud_re,
            ud_im,
            perm_r,
            perm_c,
            b,
            x,
            v_old,
            inv_vb,
            dv,
            c0,
            min(k, c0 + block),
        )


@nb.njit(cache=True, nogil=True)
def _lu_solve_serial(
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
    b: np.ndarray,
    x: np.ndarray,
    v_old: np.ndarray,
    inv_vb: np.ndarray,
    dv: np.ndarray,
    block: int,
) -> None:  # pragma: no cover - compiled
    # a few columns run on the calling thread: waking workers on a busy machine costs ms
    k = b.shape[1]
    nblocks = (k + block - 1) // block
    for blk in range(nblocks):
        c0 = blk * block
        _lu_block(
            l_ptr,
            l_idx,
            l_re,
            l_im,
            u_ptr,
            u_idx,
            u_re,
            u_im,
            ud_re,
            ud_im,
            perm_r,
            perm_c,
            b,
            x,
            v_old,
            inv_vb,
            dv,
            c0,
            min(k, c0 + block),
        )


@nb.njit(cache=True, nogil=True)
def _lu_solve_one(
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
    b: np.ndarray,
    x: np.ndarray,
    v_old: np.ndarray,
    inv_vb: np.ndarray,
    dv: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """:func:`_lu_block` for one right-hand side (the control iterations' single steps):
    scalar work vectors instead of an (N x block) tile."""
    n = b.shape[0]
    with_dv = v_old.shape[0] == n
    wr = np.empty(n)
    wi = np.empty(n)
    for i in range(n):
        r = perm_r[i]
        z = b[i, 0]
        wr[r] = z.real
        wi[r] = z.imag
    for j in range(n):
        xr = wr[j]
        xi = wi[j]
        for p in range(l_ptr[j], l_ptr[j + 1]):
            i = l_idx[p]
            wr[i] -= l_re[p] * xr - l_im[p] * xi
            wi[i] -= l_re[p] * xi + l_im[p] * xr
    for j in range(n - 1, -1, -1):
        ar = wr[j]
        ai = wi[j]
        xr = ud_re[j] * ar - ud_im[j] * ai
        xi = ud_re[j] * ai + ud_im[j] * ar
        wr[j] = xr
        wi[j] = xi
        for p in range(u_ptr[j], u_ptr[j + 1]):
            i = u_idx[p]
            wr[i] -= u_re[p] * xr - u_im[p] * xi
            wi[i] -= u_re[p] * xi + u_im[p] * xr
    d = 0.0
    for i in range(n):
        r = perm_c[i]
        x[i, 0] = complex(wr[r], wi[r])
        if with_dv:
            er = wr[r] - v_old[i, 0].real
            ei = wi[r] - v_old[i, 0].imag
            dd = (er * er + ei * ei) * inv_vb[i] * inv_vb[i]
            if dd > d or dd != dd:
                d = dd
    dv[0] = np.sqrt(d)


class Factor:
    """A factorised admittance matrix; :meth:`solve` takes (N,) or (N, k) right-hand sides."""

    def __init__(self, lu: sla.SuperLU) -> None:
        l_mat = sp.csc_matrix(sp.tril(sp.csc_matrix(lu.L), k=-1))
        u_full = sp.csc_matrix(lu.U)
        u_mat = sp.csc_matrix(sp.triu(u_full, k=1))
        l_mat.sort_indices()
        u_mat.sort_indices()
        self._l = (
            l_mat.indptr.astype(np.int64),
            l_mat.indices.astype(np.int64),
            np.ascontiguousarray(l_mat.data.real),
            np.ascontiguousarray(l_mat.data.imag),
        )
        self._u = (
            u_mat.indptr.astype(np.int64),
            u_mat.indices.astype(np.int64),
            np.ascontiguousarray(u_mat.data.real),
            np.ascontiguousarray(u_mat.data.imag),
        )
        inv_d = 1.0 / u_full.diagonal()
        self._u_inv_diag = (np.ascontiguousarray(inv_d.real), np.ascontiguousarray(inv_d.imag))
        self._perm_r = np.ascontiguousarray(lu.perm_r, dtype=np.int64)
        # x = Pc y: x[i] = y[perm_c[i]]
        self._perm_c = np.ascontiguousarray(lu.perm_c, dtype=np.int64)
        self.n = int(lu.shape[0])

    def solve(self, rhs: ComplexArray) -> ComplexArray:
        """Solve ``Y x = rhs`` for every column of ``rhs``."""
        b = np.asarray(rhs, dtype=np.complex128)
        vec = b.ndim == 1
        x, _ = self.solve_with_change(b[:, None] if vec else b, None, None)
        return x[:, 0] if vec else x

    def arrays(
        self,
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
        np.ndarray,
    ]:
        """The factors as the compiled kernels take them: L (ptr, idx, re, im) without its unit
        diagonal, U likewise without its diagonal, U's inverse diagonal (re, im), Pr, Pc."""
        return (*self._l, *self._u, *self._u_inv_diag, self._perm_r, self._perm_c)

    def solve_with_change(
        self,
        rhs: ComplexArray,
        v_old: ComplexArray | None,
        inv_vbase: npt.NDArray[np.float64] | None,
    ) -> tuple[ComplexArray, npt.NDArray[np.float64]]:
        """Solve, and give per column the largest ``|x - v_old| * inv_vbase`` (NaN-aware)."""
        b = np.ascontiguousarray(rhs, dtype=np.complex128)
        x = np.empty_like(b)
        dv = np.zeros(b.shape[1])
        if v_old is None or inv_vbase is None:
            vo = np.zeros((0, 0), dtype=np.complex128)
            ivb = np.zeros(0)
        else:
            vo = np.ascontiguousarray(v_old, dtype=np.complex128)
            ivb = np.ascontiguousarray(inv_vbase, dtype=np.float64)
        if b.shape[1] == 1:
            _lu_solve_one(*self.arrays(), b, x, vo, ivb, dv)
            return x, dv
        kernel = _lu_solve_parallel if b.shape[1] > 2 * _BLOCK else _lu_solve_serial
        kernel(
            *self._l,
            *self._u,
            *self._u_inv_diag,
            self._perm_r,
            self._perm_c,
            b,
            x,
            vo,
            ivb,
            dv,
            _BLOCK,
        )
        return x, dv


def factorize(y: sp.spmatrix) -> Factor:
    """Factorise ``y``; a singular matrix (an island, a floating node) raises ``InputError``."""
    try:
        lu = sla.splu(sp.csc_matrix(y, dtype=np.complex128), permc_spec="MMD_AT_PLUS_A")
    except RuntimeError as exc:
        raise InputError(
            f"the network admittance matrix is singular ({exc})",
            "check for nodes with no path to the source (open switches, missing lines)",
        ) from exc
    return Factor(lu)


@nb.njit(cache=True, nogil=True, fastmath={"contract", "reassoc", "nsz", "arcp"})
def _apply_correction(
    y: np.ndarray,
    z_re: np.ndarray,
    z_im: np.ndarray,
    corr: np.ndarray,
    v_old: np.ndarray,
    inv_vb: np.ndarray,
    dv: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """In place ``y -= z @ corr`` and, with ``v_old``, ``dv`` = max |y - v_old| pu per column.

    ``z`` comes as real and imaginary parts so the sum over the changed nodes vectorises
    (reassociation allowed; NaN/inf stay IEEE).
    """
    n, k = y.shape
    m = z_re.shape[1]
    with_dv = v_old.shape[0] == n
    c_re = np.empty(m)
    c_im = np.empty(m)
    for c in range(k):
        for j in range(m):
            c_re[j] = corr[j, c].real
            c_im[j] = corr[j, c].imag
        d = 0.0
        for i in range(n):
            sr = 0.0
            si = 0.0
            for j in range(m):
                zr = z_re[i, j]
                zi = z_im[i, j]
                sr += zr * c_re[j] - zi * c_im[j]
                si += zr * c_im[j] + zi * c_re[j]
            val = y[i, c] - complex(sr, si)
            y[i, c] = val
            if with_dv:
                e = val - v_old[i, c]
                dd = (e.real * e.real + e.imag * e.imag) * inv_vb[i] * inv_vb[i]
                if dd > d or dd != dd:
                    d = dd
        dv[c] = np.sqrt(d)


class LowRankFactor:
    """``(Y0 + E D E^T)^-1`` through an existing factor of ``Y0`` (Sherman-Morrison-Woodbury).

    A control action changes the admittance only at the few nodes of a regulator or capacitor,
    so a new control state needs no new factorisation: with ``Z = Y0^-1 E`` (one column per
    changed node, solved once and reused),

        ``x = y - Z (I + D Z_U)^-1 D y_U``,   ``y = Y0^-1 b``,

    where ``U`` are the changed nodes and ``Z_U`` the rows of ``Z`` at them.

    References
    ----------
    .. [1] W. W. Hager, "Updating the inverse of a matrix", SIAM Review 31(2), 1989,
       doi:10.1137/1031049.
    """

    def __init__(
        self, base: Factor, nodes: npt.NDArray[np.int64], d: ComplexArray, z: ComplexArray
    ):
        self.base = base
        self.nodes = nodes
        self.d = d
        self.z = np.ascontiguousarray(z)
        self._z_re = np.ascontiguousarray(self.z.real)
        self._z_im = np.ascontiguousarray(self.z.imag)
        m = nodes.size
        self._m = np.eye(m, dtype=np.complex128) + d @ z[nodes, :]
        # (I + D Z_U)^-1 D, formed once: the control iterations apply it every fixed-point
        # iteration, and a LAPACK solve per call cost more than the correction itself
        self._md = np.ascontiguousarray(np.linalg.solve(self._m, d))

    def solve_with_change(
        self,
        rhs: ComplexArray,
        v_old: ComplexArray | None,
        inv_vbase: npt.NDArray[np.float64] | None,
    ) -> tuple[ComplexArray, npt.NDArray[np.float64]]:
        """Solve, and give per column the largest ``|x - v_old| * inv_vbase``."""
        y, _ = self.base.solve_with_change(rhs, None, None)
        corr = np.ascontiguousarray(self._md @ y[self.nodes, :])
        dv = np.zeros(y.shape[1])
        if v_old is None or inv_vbase is None:
            _apply_correction(
                y, self._z_re, self._z_im, corr, np.zeros((0, 0), np.complex128), np.zeros(0), dv
            )
        else:
            _apply_correction(
                y,
                self._z_re,
                self._z_im,
                corr,
                np.ascontiguousarray(v_old, dtype=np.complex128),
                np.ascontiguousarray(inv_vbase, dtype=np.float64),
                dv,
            )
        return y, dv

    def solve(self, rhs: ComplexArray) -> ComplexArray:
        """Solve ``Y x = rhs`` for every column of ``rhs``."""
        b = np.asarray(rhs, dtype=np.complex128)
        vec = b.ndim == 1
        x, _ = self.solve_with_change(b[:, None] if vec else b, None, None)
        return x[:, 0] if vec else x
