"""Compiled recording of solved voltage blocks: per-unit voltages and branch loading.

Turning a block of solved node voltages (N x k, time contiguous) into the time-major result
arrays is as much arithmetic as a triangular solve (every branch's terminal currents, their
magnitudes, the largest per branch, two ratings). These kernels do it in one pass per block,
release the GIL, and write only the rows of their own time steps, so the solver's worker
threads record their chunks themselves, in parallel, right after they converge.

The branch currents use one dense ``Yprim`` row block per branch (phase conductors of every
terminal x the branch's non-ground nodes, each terminal's rows divided by its rating scale), in
a CSR layout built here so that the rows of a regulator's transformer can be replaced by the
``Yprim`` of the present tap position.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt

from gridflex.network.model import Network
from gridflex.powerflow.injections import (
    _current,
    constant_power_w,
    constant_power_zones,
)
from gridflex.powerflow.linsolve import FAST_MATH

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ComplexArray = npt.NDArray[np.complex128]


class BranchCurrents:
    """CSR rows of terminal phase currents per branch (amperes / terminal rating scale).

    ``row_start[b]:row_start[b + 1]`` are branch ``b``'s rows; the entries of row ``r`` are
    ``data[ptr[r]:ptr[r + 1]]`` against nodes ``idx[...]``. Regulator transformers' blocks are
    stored by position (``block_start``) so :meth:`data_for` can swap in another tap's Yprim.
    """

    def __init__(self, net: Network) -> None:
        br = net.branches
        nb_ = len(br)
        n_terms = np.asarray(br.n_terms, dtype=np.int64)
        n_conds = np.asarray(br.n_conds, dtype=np.int64)
        n_phases = np.asarray(br.n_phases, dtype=np.int64)
        # branches of one shape and one pattern of grounded conductors are gathered together
        # (a dozen groups on the 8500-node feeder): one branch at a time, this build took
        # 0.057 s of every run's start
        groups: dict[tuple[int, int, int, bytes], list[int]] = {}
        for k in range(nb_):
            key = (int(n_terms[k]), int(n_conds[k]), int(n_phases[k]),
                   (br.node_idx[k] >= 0).tobytes())  # fmt: skip
            groups.setdefault(key, []).append(k)
        rows = n_terms * n_phases  # each terminal's phase conductors
        kept = np.zeros(nb_, dtype=np.int64)  # conductors not grounded
        for (_, _, _, mask), members in groups.items():
            kept[members] = np.count_nonzero(np.frombuffer(mask, dtype=bool))
        row_start = np.zeros(nb_ + 1, dtype=np.int64)
        row_start[1:] = np.cumsum(rows)
        self.block_start = np.zeros(nb_, dtype=np.int64)
        self.block_start[1:] = np.cumsum(rows * kept)[:-1]
        self.ptr = np.zeros(int(row_start[-1]) + 1, dtype=np.int64)
        self.ptr[1:] = np.cumsum(np.repeat(kept, rows))
        nnz = int(self.ptr[-1])
        self.idx = np.zeros(nnz, dtype=np.int64)
        self.data = np.zeros(nnz, dtype=complex)
        for (nt, nc, nph, mask), members in groups.items():
            ks = np.asarray(members, dtype=np.int64)
            sel = _phase_rows(nt, nc, nph)
            keep = np.flatnonzero(np.frombuffer(mask, dtype=bool))
            y = np.stack([br.y_prim[k] for k in members])
            refs = np.stack([br.node_idx[k] for k in members])
            scale = np.stack([np.repeat(br.rating_scale(k), nph) for k in members])
            blk = y[:, sel][:, :, keep] / scale[:, :, None]
            at = self.block_start[ks][:, None] + np.arange(sel.size * keep.size)
            self.data[at] = blk.reshape(ks.size, -1)
            self.idx[at] = np.repeat(refs[:, None, keep], sel.size, axis=1).reshape(ks.size, -1)
        self.row_start = row_start
        self.rating_normal_a = np.ascontiguousarray(br.rating_normal_a, dtype=np.float64)
        self._net = net
        self._memo: dict[tuple[int, ...], ComplexArray] = {}
        self._tap_memo: dict[tuple[int, int], tuple[int, int, ComplexArray]] = {}
        # the regulator branches' blocks, gathered: position reg_off[b] for branch b (-1: not
        # a regulator's), so steps at different taps can be recorded in one call
        self.reg_off = np.full(nb_, -1, dtype=np.int64)
        sel_parts: list[IntArray] = []
        off = 0
        for b in sorted({int(x) for x in net.regulators.branch_idx}):
            size = int(self.ptr[row_start[b + 1]] - self.ptr[row_start[b]])
            self.reg_off[b] = off
            sel_parts.append(np.arange(self.block_start[b], self.block_start[b] + size))
            off += size
        self.reg_sel = np.concatenate(sel_parts) if sel_parts else np.zeros(0, np.int64)
        #: the argument of record_block's regulator branches when all steps share their taps
        self.no_reg_off = np.full(nb_, -1, dtype=np.int64)

    def _tap_block(self, r: int, pos: int) -> tuple[int, int, ComplexArray]:
        """Regulator ``r``'s CSR values at tap position ``pos``: where they start in ``data``
        and in a row of :meth:`variants`, and the values (made once per regulator and tap)."""
        got = self._tap_memo.get((r, pos))
        if got is None:
            reg = self._net.regulators
            br = self._net.branches
            b = int(reg.branch_idx[r])
            sel = _phase_rows(int(br.n_terms[b]), int(br.n_conds[b]), int(br.n_phases[b]))
            keep = np.flatnonzero(br.node_idx[b] >= 0)
            y = reg.y_prim_by_tap[r][pos - int(reg.tap_min[r])]
            scale = np.repeat(br.rating_scale(b), int(br.n_phases[b]))
            blk = np.ascontiguousarray((y[np.ix_(sel, keep)] / scale[:, None]).ravel())
            got = self._tap_memo[(r, pos)] = (int(self.block_start[b]), int(self.reg_off[b]), blk)
        return got

    def data_for(self, taps: tuple[int, ...]) -> ComplexArray:
        """The CSR values with every regulator's rows at its tap position in ``taps``."""
        got = self._memo.get(taps)
        if got is not None:
            return got
        data = self.data.copy()
        for r, pos in enumerate(taps):
            s, _, blk = self._tap_block(r, pos)
            data[s : s + blk.size] = blk
        if len(self._memo) >= 64:
            self._memo.clear()
        self._memo[taps] = data
        return data

    def variants(self, taps: list[tuple[int, ...]]) -> tuple[FloatArray, FloatArray]:
        """The regulator branches' CSR values (real, imaginary), one row per tap tuple.

        Built from the regulators' blocks alone: a full copy of ``data`` per tap tuple
        (:meth:`data_for`) was 0.3-0.5 ms each, a tenth of a controlled run's recording.
        """
        rows = np.repeat(self.data[self.reg_sel][None, :], len(taps), axis=0)
        for i, t in enumerate(taps):
            for r, pos in enumerate(t):
                _, o, blk = self._tap_block(r, pos)
                rows[i, o : o + blk.size] = blk
        return np.ascontiguousarray(rows.real), np.ascontiguousarray(rows.imag)


def _phase_rows(n_terms: int, n_conds: int, n_phases: int) -> IntArray:
    """Rows of a branch's Yprim that carry its phase currents: each terminal's first
    ``n_phases`` conductors (terminal-major, as :class:`~gridflex.network.model.BranchTable`)."""
    return (np.arange(n_terms)[:, None] * n_conds + np.arange(n_phases)).reshape(-1)


#: steps recorded side by side (compile-time constant: the inner loops unroll and vectorise)
_W = 16
#: nodes per tile of the magnitude pass (16 lanes x 512 x 8 B = 64 KB: stays in L2)
_TILE = 512


@nb.njit(cache=True, nogil=True, fastmath=FAST_MATH)
def record_block(
    v: np.ndarray,
    inv_vb: np.ndarray,
    ptr: np.ndarray,
    idx: np.ndarray,
    data: np.ndarray,
    row_start: np.ndarray,
    norm_a: np.ndarray,
    cols: np.ndarray,
    v_pu: np.ndarray,
    load_pct: np.ndarray,
    block_start: np.ndarray,
    reg_off: np.ndarray,
    var_re: np.ndarray,
    var_im: np.ndarray,
    step_var: np.ndarray,
    inj: tuple[np.ndarray, ...],
    w: np.ndarray,
    var: np.ndarray,
    pv_slot: np.ndarray,
    p_load_w: np.ndarray,
    p_pv_w: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Write ``|V|`` pu and branch loading of block ``v`` into rows ``cols``, and the active
    power the injectors absorb.

    ``v`` is (N, k); ``v_pu`` (T, N), ``load_pct`` (T, B). A branch's loading is the largest
    magnitude of its rows' currents over phases and terminals against its normal rating; NaN
    where the rating is 0 (unrated) and where a current is not finite. (The emergency loading
    is this times normal / emergency rating: ``TimeSeriesResult.branch_emerg_scale``.)

    Steps at different regulator taps: a branch ``b`` with ``reg_off[b] >= 0`` takes its CSR
    values for step ``j`` from row ``step_var[j]`` of ``var_re``/``var_im`` (its block starting
    at column ``reg_off[b]``, see :meth:`BranchCurrents.variants`) instead of ``data``.

    Injectors (``inj``: the load-model arrays of ``Injectors.kernel_arrays``, as one tuple;
    nominal ``w``/``var`` per
    phase and step of the block, n_inj x k): ``p_load_w[j]`` (k,) is the active power all
    phases with ``pv_slot < 0`` absorb at step ``j`` (summed in injector order), ``p_pv_w[s,
    j]`` that of the phase with ``pv_slot == s`` (PV: negative). Taken here, from the lanes'
    voltages side by side, instead of one step at a time from the block, whose W/var rows a
    step reads with a stride (43 -> a few us per step on the 8500-node feeder).
    """
    n, k = v.shape
    n_br = row_start.shape[0] - 1
    d_re = data.real.copy()
    d_im = data.imag.copy()
    vr = np.zeros((n, _W))
    vi = np.zeros((n, _W))
    imax2 = np.zeros((n_br, _W))
    tile = np.zeros((_W, _TILE))  # |V| pu of a tile of nodes, lane-major
    lane_var = np.zeros(_W, dtype=np.int64)
    vsum = np.zeros(_W)  # per lane: a NaN or inf voltage shows in the sum
    inv_norm = np.empty(n_br)  # 100 / rating, NaN for unrated elements
    # inj: a, b, model, vb, vlow, v95, v105, vminpu, vmaxpu, ... (Injectors.kernel_arrays)
    zones = constant_power_zones(inj[2], inj[4], inj[5], inj[6], inj[3], inj[8])
    for b in range(n_br):
        inv_norm[b] = 100.0 / norm_a[b] if norm_a[b] > 0.0 else np.nan
    for g0 in range(0, k, _W):
        kk = min(_W, k - g0)
        for c in range(_W):
            vsum[c] = 0.0
            lane_var[c] = step_var[g0 + c] if c < kk else 0
        # node tiles: the lanes' values are split and their magnitudes taken in one node-major
        # pass, then written row by row (a branch-free inner loop: about 25 % faster than
        # writing each lane's row straight from vr/vi with a finiteness test per value)
        for i0 in range(0, n, _TILE):
            i1 = min(n, i0 + _TILE)
            for i in range(i0, i1):
                s = inv_vb[i]
                for c in range(_W):
                    z = v[i, g0 + c] if c < kk else 0j
                    vr[i, c] = z.real
                    vi[i, c] = z.imag
                    tile[c, i - i0] = np.sqrt(z.real * z.real + z.imag * z.imag) * s
            for c in range(kk):
                t = cols[g0 + c]
                acc = 0.0
                for i in range(i0, i1):
                    x = tile[c, i - i0]
                    v_pu[t, i] = x
                    acc += x
                vsum[c] += acc
        _branch_max(vr, vi, ptr, idx, d_re, d_im, row_start, reg_off, imax2)
        _injector_powers(vr, vi, g0, kk, inj, zones, w, var, pv_slot, p_load_w, p_pv_w)
        if var_re.shape[0]:
            _regulator_max(
                vr, vi, ptr, idx, row_start, block_start, reg_off, var_re, var_im, lane_var, imax2
            )
        for c in range(kk):  # row by row: contiguous writes
            t = cols[g0 + c]
            ok = np.isfinite(vsum[c])
            for b in range(n_br):
                im = np.sqrt(imax2[b, c]) if ok else np.nan
                load_pct[t, b] = im * inv_norm[b]


@nb.njit(cache=True, nogil=True)
def _injector_powers(
    vr: np.ndarray,
    vi: np.ndarray,
    g0: int,
    kk: int,
    inj: tuple[np.ndarray, ...],
    zones: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    w: np.ndarray,
    var: np.ndarray,
    pv_slot: np.ndarray,
    p_load_w: np.ndarray,
    p_pv_w: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Active power absorbed per injector phase for lanes ``0:kk`` (steps ``g0 + c``).

    ``Re(V conj(I))`` of each phase: a constant-P+jQ phase (load model 1, PV) in or above its
    band as :func:`~gridflex.powerflow.injections.constant_power_w` gives it, in one pass over
    the lanes (``zones``: :func:`~gridflex.powerflow.injections.constant_power_zones`), every
    other zone and model through ``_current``. With every phase through the general
    model, its zone tests set the pace: 40 us per step on the 8500-node feeder, whose frozen
    year puts most loads above their band.
    """
    a, b, model, vb, vlow, v95, v105, vminpu, vmaxpu, cvrw, cvrv, varbase = inj
    fast, lo2, hi2, zf = zones
    n = vr.shape[0]
    p = np.empty(_W)
    other = np.empty(_W, dtype=np.bool_)
    for c in range(kk):
        p_load_w[g0 + c] = 0.0
    for j in range(a.shape[0]):
        ia = a[j]
        ib = b[j]
        any_other = False
        for c in range(kk):
            dr = vr[ia, c] if ia < n else 0.0
            di = vi[ia, c] if ia < n else 0.0
            if ib < n:
                dr -= vr[ib, c]
                di -= vi[ib, c]
            v2 = dr * dr + di * di
            p[c] = constant_power_w(v2, w[j, g0 + c], hi2[j], zf[j])
            other[c] = not (fast[j] and v2 > lo2[j])
            any_other |= other[c]
        if any_other:
            for c in range(kk):
                if other[c]:
                    vd = complex(vr[ia, c] if ia < n else 0.0, vi[ia, c] if ia < n else 0.0)
                    if ib < n:
                        vd -= complex(vr[ib, c], vi[ib, c])
                    cur = _current(
                        vd, model[j], vb[j], vlow[j], v95[j], v105[j], vminpu[j], vmaxpu[j],
                        cvrw[j], cvrv[j], varbase[j], w[j, g0 + c], var[j, g0 + c],
                    )  # fmt: skip
                    p[c] = (vd * cur.conjugate()).real
        slot = pv_slot[j]
        if slot < 0:
            for c in range(kk):
                p_load_w[g0 + c] += p[c]
        else:
            for c in range(kk):
                p_pv_w[slot, g0 + c] = p[c]


@nb.njit(cache=True, nogil=True, fastmath=FAST_MATH)
def _branch_max(
    vr: np.ndarray,
    vi: np.ndarray,
    ptr: np.ndarray,
    idx: np.ndarray,
    d_re: np.ndarray,
    d_im: np.ndarray,
    row_start: np.ndarray,
    reg_off: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """``out[b, c]`` = largest squared row current of branch ``b`` in lane ``c``.

    Branches with ``reg_off[b] >= 0`` are left to :func:`_regulator_max`.
    """
    n_br = row_start.shape[0] - 1
    ar = np.zeros(_W)
    ai = np.zeros(_W)
    mx = np.zeros(_W)  # hoisted: an allocation per branch cost a third of the kernel
    for b in range(n_br):
        if reg_off[b] >= 0:
            continue
        for c in range(_W):
            mx[c] = 0.0
        for r in range(row_start[b], row_start[b + 1]):
            for c in range(_W):
                ar[c] = 0.0
                ai[c] = 0.0
            for p in range(ptr[r], ptr[r + 1]):
                j = idx[p]
                yr = d_re[p]
                yi = d_im[p]
                for c in range(_W):
                    ar[c] += yr * vr[j, c] - yi * vi[j, c]
                    ai[c] += yr * vi[j, c] + yi * vr[j, c]
            for c in range(_W):
                mx[c] = max(mx[c], ar[c] * ar[c] + ai[c] * ai[c])
        for c in range(_W):
            out[b, c] = mx[c]


@nb.njit(cache=True, nogil=True, fastmath=FAST_MATH)
def _regulator_max(
    vr: np.ndarray,
    vi: np.ndarray,
    ptr: np.ndarray,
    idx: np.ndarray,
    row_start: np.ndarray,
    block_start: np.ndarray,
    reg_off: np.ndarray,
    var_re: np.ndarray,
    var_im: np.ndarray,
    lane_var: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """:func:`_branch_max` of the regulator branches, each lane with its own taps' values."""
    n_br = row_start.shape[0] - 1
    for b in range(n_br):
        if reg_off[b] < 0:
            continue
        shift = reg_off[b] - block_start[b]
        for c in range(_W):
            q = lane_var[c]
            mx = 0.0
            for r in range(row_start[b], row_start[b + 1]):
                ar = 0.0
                ai = 0.0
                for p in range(ptr[r], ptr[r + 1]):
                    j = idx[p]
                    yr = var_re[q, p + shift]
                    yi = var_im[q, p + shift]
                    ar += yr * vr[j, c] - yi * vi[j, c]
                    ai += yr * vi[j, c] + yi * vr[j, c]
                mx = max(mx, ar * ar + ai * ai)
            out[b, c] = mx
