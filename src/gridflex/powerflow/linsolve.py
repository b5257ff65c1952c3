"""Sparse LU factorisation of the complex node admittance, solved for many right-hand sides.

One factorisation serves every time step of a control state. SuperLU
(``scipy.sparse.linalg.splu``, minimum-degree ordering on ``A^T + A``, which suits radial
feeders: little fill) computes the factors; the triangular solves run in a small Numba kernel
that sweeps each factor column once for *all* right-hand sides, with the time axis contiguous in
memory. SuperLU's own multi-RHS solve handles the tiny supernodes of a radial feeder one BLAS
call at a time and is 20-50x slower here.
"""

from __future__ import annotations

from typing import Any

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
def forward_one(
    l_ptr: np.ndarray,
    l_idx: np.ndarray,
    l_re: np.ndarray,
    l_im: np.ndarray,
    wr: np.ndarray,
    wi: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """In place ``w = L^-1 w`` (unit lower L without its diagonal, column oriented)."""
    for j in range(l_ptr.shape[0] - 1):
        xr = wr[j]
        xi = wi[j]
        for p in range(l_ptr[j], l_ptr[j + 1]):
            i = l_idx[p]
            wr[i] -= l_re[p] * xr - l_im[p] * xi
            wi[i] -= l_re[p] * xi + l_im[p] * xr


#: The fast-math flags of every solver and recording kernel: reassociation and fused
#: multiply-add only, so NaN and inf stay IEEE (a diverging iteration is detected by them, and
#: a diverged step's NaN voltages must give NaN loading).
FAST_MATH = {"contract", "reassoc", "nsz", "arcp"}


@nb.njit(cache=True, nogil=True, fastmath=FAST_MATH)
def forward_entries(
    l_col: np.ndarray, l_row: np.ndarray, l_val: np.ndarray, w: np.ndarray
) -> None:  # pragma: no cover - compiled
    """In place ``w = L^-1 w`` for one complex column, L unit lower as a flat entry list.

    One loop over the entries in column order (:meth:`Factor.single_arrays`), no loop per
    column: L of a radial feeder holds about 2.4 entries a column, and the short inner loops of
    the column-oriented form (:func:`forward_one`), with real and imaginary parts in separate
    arrays, took 1.9x as long for the two triangular solves on the 8500-node feeder.
    """
    for p in range(l_row.shape[0]):
        w[l_row[p]] -= l_val[p] * w[l_col[p]]


@nb.njit(cache=True, nogil=True, fastmath=FAST_MATH)
def backward_entries(
    ud: np.ndarray, u_col: np.ndarray, u_row: np.ndarray, u_val: np.ndarray, w: np.ndarray
) -> None:  # pragma: no cover - compiled
    """In place ``w = U^-1 w`` for one complex column, as ``(D^-1 U)^-1 D^-1 w``.

    ``ud`` is U's inverse diagonal; the entries are those of the unit upper ``D^-1 U`` (row
    ``i`` scaled by ``ud[i]``) in descending column order, so the diagonal is one pass first
    and the rest one flat loop like :func:`forward_entries`.
    """
    for i in range(ud.shape[0]):
        w[i] = ud[i] * w[i]
    for p in range(u_row.shape[0]):
        w[u_row[p]] -= u_val[p] * w[u_col[p]]


@nb.njit(cache=True, nogil=True, fastmath=FAST_MATH)
def woodbury_entries(
    s_ptr: np.ndarray,
    s_idx: np.ndarray,
    s_val: np.ndarray,
    r_ptr: np.ndarray,
    r_idx: np.ndarray,
    r_val: np.ndarray,
    cols: np.ndarray,
    md: np.ndarray,
    w: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Between the two triangular solves: ``w -= S[:, cols] (md (R[:, cols]^T w))``.

    With ``w = L^-1 Pr b`` on entry, ``R^T w`` are the changed nodes' entries of ``Y0^-1 b``
    and subtracting ``S c`` makes the backward solve give ``Y0^-1 (b - E c)``: the Woodbury
    solution of :class:`LowRankFactor`. ``S``, ``R`` columns are sparse (the elimination-tree
    paths of the changed nodes), stored as CSC with complex values.
    """
    m = cols.shape[0]
    y = np.empty(m, dtype=np.complex128)
    for q in range(m):
        c = cols[q]
        acc = 0j
        for p in range(r_ptr[c], r_ptr[c + 1]):
            acc += r_val[p] * w[r_idx[p]]
        y[q] = acc
    for q in range(m):
        acc = 0j
        for j in range(m):
            acc += md[q, j] * y[j]
        c = cols[q]
        for p in range(s_ptr[c], s_ptr[c + 1]):
            w[s_idx[p]] -= s_val[p] * acc


@nb.njit(cache=True, nogil=True)
def _lu_solve_one(
    l_col: np.ndarray,
    l_row: np.ndarray,
    l_val: np.ndarray,
    ud: np.ndarray,
    u_col: np.ndarray,
    u_row: np.ndarray,
    u_val: np.ndarray,
    perm_r: np.ndarray,
    perm_c: np.ndarray,
    b: np.ndarray,
    x: np.ndarray,
    v_old: np.ndarray,
    inv_vb: np.ndarray,
    dv: np.ndarray,
    s_ptr: np.ndarray,
    s_idx: np.ndarray,
    s_val: np.ndarray,
    r_ptr: np.ndarray,
    r_idx: np.ndarray,
    r_val: np.ndarray,
    cols: np.ndarray,
    md: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """:func:`_lu_block` one column at a time with a scalar work vector (the control
    iterations' few steps), with the low-rank update ``cols``/``md`` (none: ``cols`` empty)."""
    n, k = b.shape
    with_dv = v_old.shape[0] == n
    w = np.empty(n, dtype=np.complex128)
    for c in range(k):
        for i in range(n):
            w[perm_r[i]] = b[i, c]
        forward_entries(l_col, l_row, l_val, w)
        if cols.shape[0] > 0:
            woodbury_entries(s_ptr, s_idx, s_val, r_ptr, r_idx, r_val, cols, md, w)
        backward_entries(ud, u_col, u_row, u_val, w)
        d = 0.0
        for i in range(n):
            val = w[perm_c[i]]
            x[i, c] = val
            if with_dv:
                dd = abs(val - v_old[i, c]) * inv_vb[i]
                if dd > d or dd != dd:
                    d = dd
        dv[c] = d


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
        n_col = l_mat.shape[1]
        # the single-column kernels' flat entry lists: L in column order; the unit upper
        # D^-1 U in descending column order (CSC reversed: the entries of one column update
        # distinct rows, so their order within it is free)
        u_row = u_mat.indices[::-1].astype(np.int64)
        self._single = (
            np.repeat(np.arange(n_col, dtype=np.int64), np.diff(l_mat.indptr)),
            l_mat.indices.astype(np.int64),
            np.ascontiguousarray(l_mat.data, dtype=np.complex128),
            np.ascontiguousarray(inv_d, dtype=np.complex128),
            np.repeat(np.arange(n_col, dtype=np.int64), np.diff(u_mat.indptr))[::-1].copy(),
            u_row,
            np.ascontiguousarray(u_mat.data[::-1] * inv_d[u_row], dtype=np.complex128),
        )
        self._perm_r = np.ascontiguousarray(lu.perm_r, dtype=np.int64)
        # x = Pc y: x[i] = y[perm_c[i]]
        self._perm_c = np.ascontiguousarray(lu.perm_c, dtype=np.int64)
        self.n = int(lu.shape[0])
        #: arrays derived from this factor by its users (e.g. the single-step kernel's setup)
        self.memo: dict[str, Any] = {}

    def solve(self, rhs: ComplexArray) -> ComplexArray:
        """Solve ``Y x = rhs`` for every column of ``rhs``."""
        b = np.asarray(rhs, dtype=np.complex128)
        vec = b.ndim == 1
        x, _ = self.solve_with_change(b[:, None] if vec else b, None, None)
        return x[:, 0] if vec else x

    @property
    def perm_r(self) -> npt.NDArray[np.int64]:
        """Row order: node ``i``'s right-hand side goes to row ``perm_r[i]`` of the solve."""
        return self._perm_r

    @property
    def perm_c(self) -> npt.NDArray[np.int64]:
        """Column order: node ``i``'s voltage is row ``perm_c[i]`` of the solve's result."""
        return self._perm_c

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

    def single_arrays(
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
    ]:
        """The factors as the single-column kernels take them (:func:`forward_entries`,
        :func:`backward_entries`): L's entries (column, row, value) without its unit diagonal,
        U's inverse diagonal, the unit upper ``D^-1 U``'s entries, Pr, Pc."""
        return (*self._single, self._perm_r, self._perm_c)

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
            _lu_solve_one(*self.single_arrays(), b, x, vo, ivb, dv, *NO_UPDATE)
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


@nb.njit(cache=True, nogil=True)
def _unit_paths(
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
    rows_l: np.ndarray,
    rows_u: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Dense ``L^-1 e_i`` (i in ``rows_l``) and ``U^-T e_i`` (i in ``rows_u``), (m x n) each."""
    n = l_ptr.shape[0] - 1
    m = rows_l.shape[0]
    sr = np.zeros((m, n))
    si = np.zeros((m, n))
    rr = np.zeros((m, n))
    ri = np.zeros((m, n))
    for q in range(m):
        sr[q, rows_l[q]] = 1.0
        forward_one(l_ptr, l_idx, l_re, l_im, sr[q], si[q])
        # U^T r = e: r_j = (e_j - sum_{i<j} U_ij r_i) / U_jj, U column j holding U_ij
        e = rows_u[q]
        for j in range(n):
            ar = 1.0 if j == e else 0.0
            ai = 0.0
            for p in range(u_ptr[j], u_ptr[j + 1]):
                i = u_idx[p]
                ar -= u_re[p] * rr[q, i] - u_im[p] * ri[q, i]
                ai -= u_re[p] * ri[q, i] + u_im[p] * rr[q, i]
            rr[q, j] = ud_re[j] * ar - ud_im[j] * ai
            ri[q, j] = ud_re[j] * ai + ud_im[j] * ar
    return sr, si, rr, ri


def _sparse_rows(
    re: npt.NDArray[np.float64], im: npt.NDArray[np.float64]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of a dense (m x n) complex matrix as CSC-like (ptr, idx, value) of its nonzeros."""
    nz = (re != 0.0) | (im != 0.0)
    ptr = np.zeros(re.shape[0] + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(nz.sum(axis=1))
    q, idx = np.nonzero(nz)
    return ptr, idx.astype(np.int64), np.ascontiguousarray(re[q, idx] + 1j * im[q, idx])


class WoodburyBasis:
    """The low-rank updates' columns for a fixed set of nodes (every controlled device's),
    prepared once per LU ``Pr Y0 Pc = L U``.

    For each node ``u``: ``s_u = L^-1 Pr e_u`` and ``r_u = U^-T Pc^T e_u``. Both are sparse: their
    nonzeros lie on the path from ``u`` to the root of the elimination tree (on the 8500-node
    feeder 75-350 of 8,531 entries), so a correction costs a few hundred multiply-adds per
    changed node instead of a dense ``Z = Y0^-1 E`` column. ``Z_U = R^T S`` among the basis
    nodes is kept for the small ``(I + D Z_U)`` systems.
    """

    def __init__(self, base: Factor, nodes: npt.NDArray[np.int64]) -> None:
        self.base = base
        self.nodes = np.asarray(nodes, dtype=np.int64)
        sr, si, rr, ri = _unit_paths(
            *base.arrays()[:10],
            np.ascontiguousarray(base.perm_r[self.nodes]),
            np.ascontiguousarray(base.perm_c[self.nodes]),
        )
        self.s = _sparse_rows(sr, si)
        self.r = _sparse_rows(rr, ri)
        n = base.n
        s_mat = sp.csr_matrix((self.s[2], self.s[1], self.s[0]), shape=(self.nodes.size, n))
        r_mat = sp.csr_matrix((self.r[2], self.r[1], self.r[0]), shape=(self.nodes.size, n))
        # z_uu[a, b] = Z[node_a, b] = r_a^T s_b (sparse: the dense product cost 0.3 s)
        self.z_uu = np.asarray((r_mat @ s_mat.T).toarray(), dtype=np.complex128)
        self.position = {int(x): j for j, x in enumerate(self.nodes)}


#: the low-rank arguments of the single-column kernels for a plain LU (an empty update)
NO_UPDATE = (
    np.zeros(1, dtype=np.int64),
    np.zeros(0, dtype=np.int64),
    np.zeros(0, dtype=np.complex128),
    np.zeros(1, dtype=np.int64),
    np.zeros(0, dtype=np.int64),
    np.zeros(0, dtype=np.complex128),
    np.zeros(0, dtype=np.int64),
    np.zeros((0, 0), dtype=np.complex128),
)


class LowRankFactor:
    """``(Y0 + E D E^T)^-1`` through an existing factor of ``Y0`` (Sherman-Morrison-Woodbury).

    A control action changes the admittance only at the few nodes of a regulator or capacitor,
    so a new control state needs no new factorisation: with ``Z = Y0^-1 E`` (one column per
    changed node),

        ``x = y - Z (I + D Z_U)^-1 D y_U``,   ``y = Y0^-1 b``,

    where ``U`` are the changed nodes and ``Z_U`` the rows of ``Z`` at them. Applied inside the
    triangular solves (:func:`woodbury_entries`, with the sparse columns of a
    :class:`WoodburyBasis`): ``y_U = R^T (L^-1 Pr b)``, then ``L^-1 Pr b - S c`` goes through the
    backward solve.

    References
    ----------
    .. [1] W. W. Hager, "Updating the inverse of a matrix", SIAM Review 31(2), 1989,
       doi:10.1137/1031049.
    """

    def __init__(
        self,
        base: Factor,
        nodes: npt.NDArray[np.int64],
        d: ComplexArray,
        basis: WoodburyBasis | None = None,
        cols: npt.NDArray[np.int64] | None = None,
    ):
        """``basis``: one holding ``nodes`` (default: a basis of ``nodes`` alone); ``cols``:
        their positions in it, if known."""
        if basis is None:
            basis = WoodburyBasis(base, nodes)
        self.base = base
        self.basis = basis
        self.nodes = np.asarray(nodes, dtype=np.int64)
        self.d = d
        if cols is None:
            cols = np.array([basis.position[int(x)] for x in self.nodes], dtype=np.int64)
        self.cols = np.ascontiguousarray(cols, dtype=np.int64)
        m = self.nodes.size
        z_u = basis.z_uu[np.ix_(self.cols, self.cols)]
        self._m = d @ z_u
        self._m.flat[:: m + 1] += 1.0  # I + D Z_U
        # (I + D Z_U)^-1 D, formed once: the control iterations apply it every fixed-point
        # iteration, and a LAPACK solve per call cost more than the correction itself
        self._md = np.ascontiguousarray(np.linalg.solve(self._m, d))

    def update_arrays(
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
    ]:
        """The update as :func:`woodbury_entries` takes it: S and R (ptr, idx, value each), the
        basis columns in use and ``(I + D Z_U)^-1 D``."""
        return (*self.basis.s, *self.basis.r, self.cols, self._md)

    def solve_with_change(
        self,
        rhs: ComplexArray,
        v_old: ComplexArray | None,
        inv_vbase: npt.NDArray[np.float64] | None,
    ) -> tuple[ComplexArray, npt.NDArray[np.float64]]:
        """Solve, and give per column the largest ``|x - v_old| * inv_vbase``."""
        b = np.ascontiguousarray(rhs, dtype=np.complex128)
        x = np.empty_like(b)
        dv = np.zeros(b.shape[1])
        if v_old is None or inv_vbase is None:
            vo = np.zeros((0, 0), np.complex128)
            ivb = np.zeros(0)
        else:
            vo = np.ascontiguousarray(v_old, dtype=np.complex128)
            ivb = np.ascontiguousarray(inv_vbase, dtype=np.float64)
        _lu_solve_one(*self.base.single_arrays(), b, x, vo, ivb, dv, *self.update_arrays())
        return x, dv

    def solve(self, rhs: ComplexArray) -> ComplexArray:
        """Solve ``Y x = rhs`` for every column of ``rhs``."""
        b = np.asarray(rhs, dtype=np.complex128)
        vec = b.ndim == 1
        x, _ = self.solve_with_change(b[:, None] if vec else b, None, None)
        return x[:, 0] if vec else x
